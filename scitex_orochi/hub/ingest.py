"""Posting messages to the persister until they are durable: the republish-until-acked loop.

Every process that accepts messages (WebSocket and HTTP gateways, bridges) hands
them to an `Ingest`. It publishes on `in.<workspace>|`, keeps each one until the
persister's ack arrives on `ack.<origin>|`, and republishes what is still
unacked, so a persister or broker restart loses nothing. The persister dedupes
by (workspace, id), so republishing never stores twice.

Each submission gets a ticket (`tk`) generated here, which the persister echoes
in its ack: acks are matched by ticket, never by the sender's id, so nothing one
workspace (or one connection) sends can settle, or answer, another's message.
The same id sent twice while the first is in flight is two tickets and two acks
(the second says `dup`), and one stored message.

Republishing backs off: after `republish_after_s`, then doubling with jitter up
to `republish_max_s`; a persister that (re)starts announces itself and every
pending message is republished at once. What is held is bounded in bytes.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scitex_orochi.hub.bus import AsyncBus, pack
from scitex_orochi.hub.bus_bodies import AckBody, AckItem, InboundBody
from scitex_orochi.hub.errors import IngestFull, IngestTimeout
from scitex_orochi.protocol import topics
from scitex_orochi.protocol.mentions import extract_mentions

log = logging.getLogger("orochi.ingest")

AckCallback = Callable[[AckItem], None]
JITTER = 0.25  # each backoff step is +-25% so republishers do not move in lockstep
MAX_AGE_S = 3600.0


@dataclass(slots=True)
class _Pending:
    topic: bytes
    data: bytes
    first_sent: float
    next_due: float
    delay: float
    on_ack: AckCallback


class Ingest:
    def __init__(
        self,
        bus: AsyncBus,
        republish_after_s: float,
        max_age_s: float = MAX_AGE_S,
        *,
        republish_max_s: float | None = None,
        max_pending_bytes: int | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.bus = bus
        self.republish_after_s = republish_after_s
        self.republish_max_s = max(republish_after_s, republish_max_s or republish_after_s * 30)
        self.max_age_s = max_age_s
        self.max_pending_bytes = max_pending_bytes
        self.pending: dict[int, _Pending] = {}
        self.pending_bytes = 0
        self.republished = 0
        self._tickets = itertools.count(1)
        self._rng = rng or random.Random()

    @property
    def origin(self) -> str:
        return self.bus.origin

    def subscriptions(self) -> tuple[bytes, ...]:
        return (topics.ack(self.origin), topics.PERSISTER_READY)

    def submit(
        self,
        workspace: str,
        envelope: dict[str, Any],
        sender_type: str,
        on_ack: AckCallback,
        now: float | None = None,
        *,
        admin: bool = False,
        mentions: list[str] | None = None,
    ) -> int:
        """Publish one validated message envelope (or change: react, edit, delete);
        `on_ack(body)` runs once it is durable (or refused). Returns the ticket. Raises
        IngestFull over the byte bound. `admin`: the submitter holds the admin token."""
        if self.max_pending_bytes is not None and self.pending_bytes > self.max_pending_bytes:
            raise IngestFull(self.pending_bytes, self.max_pending_bytes)
        tk = next(self._tickets)
        body: InboundBody = {
            "origin": self.origin,
            "tk": tk,
            "ws": workspace,
            "sender_type": sender_type,
            "mentions": (
                extract_mentions(envelope.get("payload", {}).get("content"))
                if mentions is None
                else mentions
            ),
            "frame": envelope,
        }
        if admin:
            body["admin"] = True
        topic, data = topics.inbound(workspace), pack(body)
        now = time.monotonic() if now is None else now
        delay = self.republish_after_s
        self.pending[tk] = _Pending(topic, data, now, now + delay, delay, on_ack)
        self.pending_bytes += len(data)
        self.bus.publish_raw(topic, data)
        return tk

    async def post(
        self,
        workspace: str,
        envelope: dict[str, Any],
        sender_type: str,
        timeout_s: float,
        *,
        admin: bool = False,
    ) -> AckItem:
        """Submit and wait for the durable ack (`{"id","seq","channel",...}` or error)."""
        future: asyncio.Future[AckItem] = asyncio.get_running_loop().create_future()

        def done(body: AckItem) -> None:
            if not future.done():
                future.set_result(body)

        self.submit(workspace, envelope, sender_type, done, admin=admin)
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            raise IngestTimeout(
                f"message {envelope['id']} not confirmed within {timeout_s:.1f}s"
            ) from None

    def on_ack_frame(self, body: AckBody) -> int:
        """Feed an `ack.<origin>|` body (`{"items": [ack, ...]}`); how many it settled."""
        return sum(1 for item in body.get("items") or () if self.on_ack(item))

    def on_ack(self, body: AckItem) -> bool:
        """Feed one ack item; True if it settled a pending message."""
        tk = body.get("tk")
        pending = self.pending.pop(tk, None) if type(tk) is int else None
        if pending is None:
            return False
        self.pending_bytes -= len(pending.data)
        try:
            pending.on_ack(body)
        except Exception:  # noqa: BLE001 - one caller's failure must not stop acks
            log.exception("ack callback for %s failed", body.get("id"))
        return True

    def republish_due(self, now: float | None = None, everything: bool = False) -> int:
        """Republish what is due (each on its own backoff), or `everything` pending now;
        drop messages unacked for longer than max_age_s."""
        now = time.monotonic() if now is None else now
        count = 0
        for tk, pending in list(self.pending.items()):
            if now - pending.first_sent > self.max_age_s:
                log.warning("giving up on a message unacked for %.0fs", self.max_age_s)
                del self.pending[tk]
                self.pending_bytes -= len(pending.data)
                continue
            if everything or now >= pending.next_due:
                self.bus.publish_raw(pending.topic, pending.data)
                if everything:
                    pending.delay = self.republish_after_s
                else:
                    pending.delay = min(self.republish_max_s, pending.delay * 2)
                spread = 1.0 + self._rng.uniform(-JITTER, JITTER)
                pending.next_due = now + pending.delay * spread
                count += 1
        self.republished += count
        return count

    def on_persister_ready(self, now: float | None = None) -> int:
        """A persister announced itself: republish every pending message now."""
        count = self.republish_due(now, everything=True)
        if count:
            log.info("persister is back: republished %d unacked messages", count)
        return count

    def on_bus(self, topic: bytes, body: Any) -> bool:
        """Handle this Ingest's own bus topics; False for anything else."""
        if topic.startswith(topics.ACK):
            self.on_ack_frame(body)
            return True
        if topic == topics.PERSISTER_READY:
            self.on_persister_ready()
            return True
        return False

    async def republish_loop(self) -> None:
        tick = min(self.republish_after_s / 2, 0.5)
        while True:
            await asyncio.sleep(tick)
            try:
                count = self.republish_due()
            except Exception:  # noqa: BLE001 - the loop must outlive a bad entry
                log.exception("republish failed")
                continue
            if count:
                log.info("republished %d unacked messages", count)
