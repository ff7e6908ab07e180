"""Posting messages to the persister until they are durable: the republish-until-acked loop.

Every process that accepts messages (WebSocket and HTTP gateways, bridges) hands
them to an `Ingest`. It publishes on `in.<ws>|`, keeps each one until the
persister's ack arrives on `ack.<origin>|`, and republishes what is still
unacked, so a persister or broker restart loses nothing. The persister dedupes
by id, so republishing never stores twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import topics
from .bus import AsyncBus, pack
from .mentions import extract_mentions

log = logging.getLogger("orochi.ingest")

AckCallback = Callable[[dict[str, Any]], None]


class IngestTimeout(TimeoutError):
    """The persister did not confirm the message in time (it stays queued for republish)."""


@dataclass
class _Pending:
    topic: bytes
    data: bytes
    last_sent: float
    first_sent: float
    on_ack: AckCallback


class Ingest:
    def __init__(self, bus: AsyncBus, republish_after_s: float,
                 max_age_s: float = 3600.0) -> None:
        self.bus = bus
        self.republish_after_s = republish_after_s
        self.max_age_s = max_age_s
        self.pending: dict[str, _Pending] = {}
        self.republished = 0

    @property
    def origin(self) -> str:
        return self.bus.origin

    def subscriptions(self) -> tuple[bytes, ...]:
        return (topics.ack(self.origin),)

    def submit(self, workspace: str, envelope: dict[str, Any], sender_type: str,
               on_ack: AckCallback) -> None:
        """Publish one validated message envelope; `on_ack(body)` runs once it is durable.

        A re-submit of a pending id replaces the callback (the newest caller hears the ack).
        """
        msg_id = envelope["id"]
        body = {"origin": self.origin, "ws": workspace, "sender_type": sender_type,
                "mentions": extract_mentions(envelope.get("payload", {}).get("content")),
                "frame": envelope}
        topic, data, now = topics.inbound(workspace), pack(body), time.monotonic()
        self.pending[msg_id] = _Pending(topic, data, now, now, on_ack)
        self.bus.publish_raw(topic, data)

    async def post(self, workspace: str, envelope: dict[str, Any], sender_type: str,
                   timeout_s: float) -> dict[str, Any]:
        """Submit and wait for the durable ack body (`{"id","seq","channel",...}` or error)."""
        future: asyncio.Future = asyncio.get_running_loop().create_future()

        def done(body: dict[str, Any]) -> None:
            if not future.done():
                future.set_result(body)

        self.submit(workspace, envelope, sender_type, done)
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            raise IngestTimeout(f"message {envelope['id']} not confirmed within "
                                f"{timeout_s:.1f}s") from None

    def on_ack_frame(self, body: dict[str, Any]) -> int:
        """Feed an `ack.<origin>|` body (`{"items": [ack, ...]}`); how many it settled."""
        return sum(1 for item in body.get("items") or () if self.on_ack(item))

    def on_ack(self, body: dict[str, Any]) -> bool:
        """Feed one ack item; True if it settled a pending message."""
        pending = self.pending.pop(body.get("id"), None)
        if pending is None:
            return False
        try:
            pending.on_ack(body)
        except Exception:  # noqa: BLE001 - one caller's failure must not stop acks
            log.exception("ack callback for %s failed", body.get("id"))
        return True

    def republish_due(self, now: float | None = None) -> int:
        """Republish every message unacked for republish_after_s; drop ones older than max_age."""
        now = time.monotonic() if now is None else now
        count = 0
        for msg_id, pending in list(self.pending.items()):
            if now - pending.first_sent > self.max_age_s:
                log.warning("giving up on %s after %.0fs unacked", msg_id, self.max_age_s)
                del self.pending[msg_id]
                continue
            if now - pending.last_sent >= self.republish_after_s:
                self.bus.publish_raw(pending.topic, pending.data)
                pending.last_sent = now
                count += 1
        self.republished += count
        return count

    async def republish_loop(self) -> None:
        while True:
            await asyncio.sleep(self.republish_after_s / 2)
            count = self.republish_due()
            if count:
                log.info("republished %d unacked messages", count)
