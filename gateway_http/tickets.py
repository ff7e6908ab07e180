"""Short-lived, single-use tickets for the observer socket: no token in the dashboard's URLs.

A browser cannot set headers on a WebSocket, so `/ws?token=` puts the token in
the URL (proxy logs, history). Instead the dashboard asks `POST /api/ws-ticket`
(any valid token, in `Authorization: Bearer`) for `{"ticket", "expires_in_s"}`
and opens `/ws?ticket=<ticket>`: the ticket stands for that token once, within
TICKET_TTL_S. `/ws?token=` keeps working for published observers (PROTOCOL §5).
Tickets live in this process's memory, bounded by TICKETS_MAX (the oldest
outstanding ticket gives way); the hub runs one HTTP gateway.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

from aiohttp import web

from .auth import authenticate

TICKET_TTL_S = 30.0
TICKETS_MAX = 10_000
TICKET_PREFIX = "wst_"
TICKET_RANDOM_BYTES = 24


class TicketStore:
    """Ticket -> token, each redeemable once before it expires."""

    def __init__(
        self,
        ttl_s: float = TICKET_TTL_S,
        max_tickets: int = TICKETS_MAX,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_tickets = max_tickets
        self.clock = clock
        self._tickets: OrderedDict[str, tuple[str, float]] = OrderedDict()  # oldest first

    def __len__(self) -> int:
        return len(self._tickets)

    def issue(self, token: str) -> str:
        now = self.clock()
        self._expire(now)
        while len(self._tickets) >= self.max_tickets:
            self._tickets.popitem(last=False)
        ticket = TICKET_PREFIX + secrets.token_urlsafe(TICKET_RANDOM_BYTES)
        self._tickets[ticket] = (token, now + self.ttl_s)
        return ticket

    def redeem(self, ticket: str) -> str | None:
        """The token a ticket stands for, once; None if unknown, used or expired."""
        entry = self._tickets.pop(ticket, None)
        if entry is None or entry[1] <= self.clock():
            return None
        return entry[0]

    def _expire(self, now: float) -> None:
        # Every ticket lives ttl_s, so insertion order is expiry order.
        while self._tickets:
            _, (_, expires) = next(iter(self._tickets.items()))
            if expires > now:
                break
            self._tickets.popitem(last=False)


TICKETS = web.AppKey("tickets", TicketStore)


async def ws_ticket(request: web.Request) -> web.Response:
    scope = await authenticate(request)
    store = request.app[TICKETS]
    return web.json_response(
        {"ticket": store.issue(scope.token), "expires_in_s": int(store.ttl_s)},
        headers={"Cache-Control": "no-store"},
    )


def setup(app: web.Application) -> None:
    app[TICKETS] = TicketStore()
    app.router.add_post("/api/ws-ticket", ws_ticket)
