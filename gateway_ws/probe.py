"""The hub's liveness probe of every agent socket: protocol pings, and ghosts.

Every connection gets a WebSocket ping frame each PING_INTERVAL_S (the gateway's own,
instead of the WebSocket library's keepalive, so that a late pong can be seen before
the socket is given up). Every WebSocket client library answers pings from its read
loop, so a client whose loop is stuck (or whose host vanished) stops answering while
its socket stays open: dialect A's equivalent of dialect B's `echo {nonce}`, which
the sidecar answers with `echo_pong` (dialect_b.py keeps the nonces it sent).

Once the oldest unanswered probe of a registered agent (its ping, or for dialect B
its oldest unanswered echo) is GHOST_AFTER_S old, its presence record is marked
`probe_unanswered_since` (the probe's send time) and published; the mark goes as
soon as nothing is that late any more. Presence is published only on those
transitions, so a healthy fleet costs no bus traffic. A ping unanswered for
PING_TIMEOUT_S closes the socket (1011), and the agent is dead. Classes: health.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from websockets.exceptions import ConnectionClosed

from scitex_orochi.hub.bus_bodies import PresenceDelta

from .actions import Close
from .connection import AgentConnection
from .dialect_b import DialectB
from .session import fleet_record

log = logging.getLogger("orochi.gateway.probe")

CLOSE_PING_TIMEOUT = 1011  # as the WebSocket library's keepalive closes
PROBE_MARK = "probe_unanswered_since"  # gateway_http/health.py reads it

Presence = Callable[[AgentConnection, str], tuple[bytes, PresenceDelta]]
Spawn = Callable[[Coroutine[Any, Any, Any]], object]


class Probes:
    """Per-connection ping state; `step()` runs on the gateway's liveness tick."""

    def __init__(
        self,
        interval_s: float,
        ghost_after_s: float,
        timeout_s: float,
        spawn: Spawn,
        *,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval_s, self.ghost_after_s, self.timeout_s = interval_s, ghost_after_s, timeout_s
        self._spawn, self._wall, self._mono = spawn, wall, mono
        self.due: dict[AgentConnection, float] = {}  # monotonic time of the next ping
        self.sent: dict[AgentConnection, float] = {}  # wall time of the unanswered ping
        self.pings = self.pongs = 0

    def opened(self, conn: AgentConnection) -> None:
        self.due[conn] = self._mono() + self.interval_s

    def closed(self, conn: AgentConnection) -> None:
        self.due.pop(conn, None)
        self.sent.pop(conn, None)

    def step(self, presence: Presence) -> tuple[list[tuple[bytes, PresenceDelta]], list[Close]]:
        """Send the pings due; mark or unmark ghosts (the presence updates to publish);
        the sockets whose ping went unanswered for `timeout_s` (to close)."""
        mono, wall = self._mono(), self._wall()
        publishes: list[tuple[bytes, PresenceDelta]] = []
        closes: list[Close] = []
        for conn, due in self.due.items():
            if conn.closing:
                continue
            sent = self.sent.get(conn)
            if sent is None and mono >= due:
                self.due[conn] = mono + self.interval_s
                self.sent[conn] = wall
                self.pings += 1
                self._spawn(self._ping(conn, wall))
            elif sent is not None and wall - sent >= self.timeout_s:
                log.info("closing %s: no pong for %.0fs", conn, wall - sent)
                closes.append(Close(conn, CLOSE_PING_TIMEOUT, "no pong to the hub's ping"))
                continue
            if conn.session.name is not None and self._mark(conn, sent, wall):
                publishes.append(presence(conn, "status"))
        return publishes, closes

    def _mark(self, conn: AgentConnection, sent: float | None, wall: float) -> bool:
        """Set or clear the record's ghost mark; whether it changed."""
        late = _oldest(sent, conn.dialect)
        want = late if late is not None and wall - late >= self.ghost_after_s else None
        record = fleet_record(conn.session.record)
        have = record.get(PROBE_MARK)
        if (want is None) == (have is None):
            return False
        if want is None:
            del record[PROBE_MARK]
        else:
            record[PROBE_MARK] = want
        return True

    async def _ping(self, conn: AgentConnection, wall: float) -> None:
        try:
            waiter = await conn.ws.ping()
        except (ConnectionClosed, RuntimeError, OSError):
            return  # closing: the handler's finally forgets the connection
        asyncio.ensure_future(waiter).add_done_callback(lambda f: self._pong(conn, wall, f))

    def _pong(self, conn: AgentConnection, wall: float, answer: asyncio.Future[Any]) -> None:
        if answer.cancelled() or answer.exception() is not None:
            return
        self.pongs += 1
        if self.sent.get(conn) == wall:
            del self.sent[conn]


def _oldest(sent: float | None, dialect: object) -> float | None:
    times: Iterable[float] = ()
    if isinstance(dialect, DialectB) and dialect.echoes:
        times = dialect.echoes.values()
    oldest = min(times, default=None)
    if sent is None:
        return oldest
    return sent if oldest is None else min(sent, oldest)
