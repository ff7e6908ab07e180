"""The push worker: a bus client (`BusPeer`) that reads every stored message (`dlv.`)
and sends a web push to the subscriptions (`push_subscriptions`, store_push.py) of each
person it mentions (`@name`) or DMs (`human:<name>` participant of a `dm:` channel),
never to the sender. Payload `{channel, sender, text (truncated), url: /m/<num>}`.
A subscription the push service calls gone (404/410) is deleted: a `push` remove
in-item to the persister (the one writer), republished until acked.

Why a worker and not the HTTP gateway: the gateway decodes deliveries only while
observers watch (it stays cheap when nobody does), and sending a push is a blocking
HTTPS call per subscription; here it runs in a bounded thread pool of its own, and a
slow push service delays nobody's dashboard.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from scitex_orochi.hub import store_push, webpush
from scitex_orochi.hub.bus_bodies import AckItem, Delivery, DeliveryBody
from scitex_orochi.hub.config import Config
from scitex_orochi.hub.errors import IngestFull
from scitex_orochi.hub.peer import BusPeer
from scitex_orochi.hub.store import Store
from scitex_orochi.protocol import topics
from scitex_orochi.protocol.channels import is_internal
from scitex_orochi.protocol.conversations import dm_participants, is_dm

log = logging.getLogger("orochi.push")

MAX_CONCURRENT_SENDS = 8
QUEUE_MAX = 10_000  # deliveries waiting to be looked at; beyond it new ones are dropped
HUMAN = "human:"


def recipients(delivery: Delivery) -> list[str]:
    """The people a stored message notifies: its mentions and its DM's other human."""
    sender = delivery.get("sender") or ""
    people = {m for m in delivery.get("mentions") or [] if isinstance(m, str)}
    channel = delivery["channel"]
    if is_dm(channel):
        people |= {p[len(HUMAN) :] for p in dm_participants(channel) if p.startswith(HUMAN)}
    people.discard(sender)
    return sorted(people)


def message_text(delivery: Delivery) -> str:
    try:
        frame = json.loads(delivery["frame"])
    except ValueError:
        return ""
    content = (frame.get("payload") or {}).get("content")
    return content if isinstance(content, str) else ""


class PushWorker:
    def __init__(self, cfg: Config, store: Store, subject: str | None = None) -> None:
        self.cfg = cfg
        self.store = store
        self.key = webpush.load_or_create(cfg.data_dir)
        self.subject = subject or cfg.push.subject
        self.peer = BusPeer(cfg, "push", ingest=True)
        self.peer.route(topics.DELIVER, self._on_deliveries, subscribe=topics.DELIVER)
        self.queue: asyncio.Queue[Delivery] = asyncio.Queue(QUEUE_MAX)
        self.limit = asyncio.Semaphore(MAX_CONCURRENT_SENDS)
        self.sent = 0
        self.removed = 0

    def _on_deliveries(self, body: DeliveryBody) -> None:
        for item in body["items"]:
            if item.get("event") or is_internal(item["channel"]):
                continue
            try:
                self.queue.put_nowait(item)
            except asyncio.QueueFull:
                log.warning("push queue full: a message of %s notifies nobody", item["channel"])

    async def notify(self, delivery: Delivery) -> int:
        """Push one stored message to its recipients' subscriptions; how many were sent."""
        people = recipients(delivery)
        if not people:
            return 0
        subs = await asyncio.to_thread(
            store_push.of_people, self.store.engine, delivery["ws"], people
        )
        if not subs:
            return 0
        data = webpush.payload(
            delivery["channel"],
            delivery.get("sender") or "",
            message_text(delivery),
            delivery.get("num"),
        )
        results = await asyncio.gather(*(self._send(s, data) for s in subs))
        return sum(results)

    async def _send(self, sub: store_push.PushSubscription, data: dict[str, Any]) -> int:
        async with self.limit:
            try:
                status = await asyncio.to_thread(webpush.send, self.key, sub, data, self.subject)
            except Exception as exc:  # noqa: BLE001 - one bad endpoint must not stop the rest
                log.warning("push to %s failed: %s", sub["endpoint"][:60], exc)
                return 0
        if status in webpush.GONE:
            self._remove(sub, status)
            return 0
        if status >= 400:
            log.warning("push service answered %d for %s", status, sub["person"])
            return 0
        self.sent += 1
        return 1

    def _remove(self, sub: store_push.PushSubscription, status: int) -> None:
        """Ask the persister to delete a gone subscription (acked: counted in `removed`)."""

        def done(ack: AckItem) -> None:
            if ack.get("outcome") == "removed":
                self.removed += 1
                log.info("push subscription of %s is gone (%d): removed", sub["person"], status)

        envelope = store_push.envelope(store_push.REMOVE, sub["endpoint"])
        assert self.peer.ingest is not None
        try:
            self.peer.ingest.submit(sub["workspace_id"], envelope, "human", done, admin=True)
        except IngestFull:
            log.warning("gone push subscription of %s kept: the persister lags", sub["person"])

    async def _loop(self) -> None:
        while True:
            delivery = await self.queue.get()
            try:
                await self.notify(delivery)
            except Exception:  # noqa: BLE001 - the worker goes on with the next message
                log.exception("push for %s failed", delivery["channel"])

    async def run(self) -> int:
        self.peer.stop_on_signals()
        await self.peer.start()
        log.info("push worker on the bus: pushing mentions and DMs")
        loop = self.peer.spawn(self._loop(), "push loop")
        try:
            await self.peer.stopping.wait()
        finally:
            loop.cancel()
            await self.peer.stop()
        log.info("push worker stopped: %d sent, %d gone removed", self.sent, self.removed)
        return 0
