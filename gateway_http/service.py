"""The HTTP gateway's bus side: presence replica, durable posting, fan-out to observers.

One `HttpHub` per process, stored on the aiohttp app, around the process's one
`BusPeer` (`scitex_orochi.hub.peer`): the peer keeps the `PresenceReplica` the
agent routes read, the `Ingest` that posts REST/observer messages until the
persister confirms them, and the request/reply the Gitea routes and the
Telegram webhook use (`hub.peer.request`). HttpHub routes deliveries (subscribed
only while observers watch) and revocations to its own handlers, and turns
replica changes and delivered messages into observer events.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from scitex_orochi.hub.bus import AsyncBus
from scitex_orochi.hub.bus_bodies import (
    AckItem,
    AgentRecord,
    AuthChanged,
    Delivery,
    DeliveryBody,
    GoneRecord,
    Kick,
    PresenceDelta,
    Revocation,
    RpcReply,
)
from scitex_orochi.hub.config import Config
from scitex_orochi.hub.ingest import Ingest
from scitex_orochi.hub.peer import BusPeer
from scitex_orochi.hub.presence import Change, PresenceReplica
from scitex_orochi.hub.store import Store
from scitex_orochi.hub.tokens import TokenCache
from scitex_orochi.protocol import codec, topics
from scitex_orochi.protocol.channels import is_internal
from scitex_orochi.protocol.conversations import is_dm

from .uploads import MediaStore

if TYPE_CHECKING:
    from .observers import Observer

log = logging.getLogger("orochi.gateway_http")

BUS_BURST = 2000
BUS_READY_TIMEOUT_S = 30.0
GONE_KEEP_S = 600.0  # disconnected agents stay listed (as dead) this long
GONE_MAX = 500
BARRIER_TIMEOUT_S = 1.0
# Presence reads wait at most this for their bus round trip, then answer what they have.
READ_BARRIER_TIMEOUT_S = 0.5


class Counters:
    """Process counters exported by /metrics."""

    def __init__(self) -> None:
        self.messages_in = 0  # messages accepted from REST and observers
        self.messages_rejected = 0
        self.messages_timed_out = 0
        self.deliveries = 0  # delivered messages seen on the bus
        self.observer_frames_out = 0
        self.observer_slow_closes = 0
        self.seq_gaps = 0  # delivered seqs never seen here (dropped on the bus)
        self.duplicates = 0
        self.ack_seconds_sum = 0.0
        self.ack_count = 0


class HttpHub:
    def __init__(
        self, cfg: Config, store: Store | None = None, admin_store: Store | None = None
    ) -> None:
        self.cfg = cfg
        self.peer = BusPeer(
            cfg,
            "http",
            ingest=True,
            ingest_max_bytes=cfg.ingest.pending_max_bytes,
            replica=True,
            on_presence=self._on_presence,
            burst=BUS_BURST,
        )
        # Deliveries are subscribed only while observers are connected (add_observer):
        # decoding every message for nobody would cost every message CPU.
        self.peer.route(topics.DELIVER, self._on_deliveries, subscribe=None)
        self.peer.route(topics.REVOKE, self._on_revoke)
        self.store = store or Store(cfg.db.url, readonly=True)
        self.admin_store = admin_store or Store(cfg.db.url, sqlite_sync=cfg.db.sqlite_sync)
        self.media = MediaStore(cfg.http.media_root, cfg.http.media_max_bytes)
        self.observers: set[Observer] = set()
        self.counters = Counters()
        self.gone: OrderedDict[tuple[str, str], GoneRecord] = OrderedDict()
        self.last_seq: dict[tuple[str, str], int] = {}
        self.auth_cache: TokenCache[Any] = TokenCache(
            cfg.auth.token_cache_max, cfg.auth.token_cache_s
        )
        self._deliveries: asyncio.Event | None = None  # set once the dlv. subscription is live

    # The peer's parts, under the names the routes and /metrics read.
    @property
    def origin(self) -> str:
        return self.peer.origin

    @property
    def bus(self) -> AsyncBus:
        return self.peer.bus

    @property
    def ingest(self) -> Ingest:
        assert self.peer.ingest is not None
        return self.peer.ingest

    @property
    def replica(self) -> PresenceReplica:
        assert self.peer.replica is not None
        return self.peer.replica

    # ---- lifecycle -------------------------------------------------------
    async def start(self) -> None:
        await self.peer.start(BUS_READY_TIMEOUT_S)
        self.peer.every(
            self.cfg.auth.revocation_sweep_s, self._revocation_sweep, "revocation sweep"
        )
        log.info("http gateway %s joined the bus", self.origin)

    async def stop(self) -> None:
        await asyncio.gather(
            *(o.close(codec.CLOSE_GOING_AWAY) for o in list(self.observers)), return_exceptions=True
        )
        pending = len(self.ingest.pending)
        await self.peer.stop()
        if pending:
            log.warning("stopping with %d messages not yet confirmed by the persister", pending)
        self.store.close()
        self.admin_store.close()

    async def add_observer(self, observer: Observer) -> None:
        """Register an observer; the first one turns deliveries on, proven live before return."""
        self.observers.add(observer)
        if self._deliveries is None:
            self._deliveries = asyncio.Event()
            self.last_seq.clear()  # what passed while nobody watched is not a gap
            self.peer.subscribe(topics.DELIVER)
            try:
                await self.peer.ready(BUS_READY_TIMEOUT_S)
            finally:
                self._deliveries.set()  # waiters go on; a broken bus shows in its own logs
        await self._deliveries.wait()

    def remove_observer(self, observer: Observer) -> None:
        self.observers.discard(observer)
        if not self.observers and self._deliveries is not None and self._deliveries.is_set():
            self.peer.unsubscribe(topics.DELIVER)
            self._deliveries = None

    async def run_blocking(self, fn: Any, *args: Any) -> Any:
        """A store call in the default executor (the stores are blocking)."""
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def caught_up(self) -> None:
        """Our own probe through the broker: it comes back after every frame the broker
        passed us before, in order, so a change another process saw acked is applied.
        (An agent's register is acked once its presence passed the broker.)"""
        if not await self.peer.barrier(READ_BARRIER_TIMEOUT_S):
            log.warning(
                "bus probe not back within %.1fs; answering with the presence at hand",
                READ_BARRIER_TIMEOUT_S,
            )

    async def request(self, service: str, body: Mapping[str, object], timeout_s: float) -> RpcReply:
        """Ask a bus service (the Gitea worker, the Telegram bridge); RpcTimeout."""
        return await self.peer.request(service, body, timeout_s)

    # ---- posting ---------------------------------------------------------
    async def post(
        self,
        workspace: str,
        envelope: dict[str, Any],
        timeout_s: float,
        *,
        sender_type: str = "human",
        admin: bool = False,
    ) -> AckItem:
        """Publish one validated envelope (a message or a change) and wait until it is
        durable; the ack body. `sender_type` "agent" when a workspace token acts as one
        of its agents; `admin` when the admin token asked (it may edit anyone's).

        Raises `IngestTimeout` (the message stays queued for republish).
        """
        started = time.monotonic()
        try:
            body = await self.ingest.post(
                workspace, envelope, sender_type, timeout_s=timeout_s, admin=admin
            )
        except TimeoutError:
            self.counters.messages_timed_out += 1
            raise
        if body.get("error"):
            self.counters.messages_rejected += 1
        else:
            self.counters.messages_in += 1
            self.counters.ack_seconds_sum += time.monotonic() - started
            self.counters.ack_count += 1
        return body

    def persist_lag_s(self) -> float:
        """Age of the oldest message this process still waits to see confirmed."""
        if not self.ingest.pending:
            return 0.0
        oldest = min(p.first_sent for p in self.ingest.pending.values())
        return max(0.0, time.monotonic() - oldest)

    # ---- bus side --------------------------------------------------------
    def _on_deliveries(self, body: DeliveryBody) -> None:
        for item in body["items"]:
            self.on_deliver(item)

    def _on_presence(self, changes: list[Change], delta: PresenceDelta | None) -> None:
        self.on_changes(changes, delta.get("event") if delta is not None else None)

    def _on_revoke(self, body: Revocation) -> None:
        self.revoke(set(body.get("tokens") or ()), set(body.get("workspaces") or ()))

    # ---- revocation ------------------------------------------------------
    def publish_revocation(self, tokens: set[str], workspaces: set[str]) -> None:
        """Tell every process that these tokens (or every token of these workspaces) are
        gone, and act on it here at once; the periodic sweeps are the backstop."""
        self.peer.publish(
            topics.REVOKE, Revocation(tokens=sorted(tokens), workspaces=sorted(workspaces))
        )
        self.revoke(tokens, workspaces)

    async def publish_kick(self, workspace: str, names: list[str]) -> None:
        """Tell every agent gateway to close these agents' sockets (4005); returns once the
        notice has passed the broker."""
        self.peer.publish(topics.KICK, Kick(ws=workspace, names=names))
        await self.peer.barrier(BARRIER_TIMEOUT_S)

    def forget_gone(self, workspace: str, names: set[str]) -> None:
        """Drop forgotten agents from the recently-disconnected list."""
        for key in [k for k in self.gone if k[0] == workspace and k[1] in names]:
            del self.gone[key]

    async def publish_policy_change(self, workspace: str) -> None:
        """A workspace's policies changed: every gateway forgets its cached token lookups
        (at the latest when they expire, SCITEX_OROCHI_TOKEN_CACHE_S). Returns once the
        notice has passed the broker, so it is on its way to every gateway."""
        self.auth_cache.clear()
        self.peer.publish(topics.AUTH_CHANGED, AuthChanged(workspaces=[workspace]))
        await self.peer.barrier(BARRIER_TIMEOUT_S)

    def revoke(self, tokens: set[str], workspaces: set[str]) -> int:
        self.auth_cache.clear()
        closed = 0
        for observer in list(self.observers):
            scope = observer.scope
            if scope.is_admin or observer.closing:
                continue
            if scope.token in tokens or scope.workspace in workspaces:
                log.info("closing an observer of %s: its token was revoked", scope.workspace)
                observer.close_soon(codec.CLOSE_AUTH_FAILED)
                closed += 1
        return closed

    async def _revocation_sweep(self) -> None:
        held = {o.scope.token for o in self.observers if not o.scope.is_admin}
        if not held:
            return
        live = await self.run_blocking(self.store.live_tokens, list(held))
        if held - live:
            self.revoke(held - live, set())

    def on_deliver(self, body: Delivery) -> None:
        if is_internal(body["channel"]):
            return  # internal channels (#.doctor) are never shown to observers
        key = (body["ws"], body["channel"])
        seq = int(body["seq"])
        last = self.last_seq.get(key)
        if last is not None and seq <= last:
            self.counters.duplicates += 1  # a republished delivery: already sent on
            return
        if last is not None and seq > last + 1:
            self.counters.seq_gaps += seq - last - 1
        self.last_seq[key] = seq
        self.counters.deliveries += 1
        self.broadcast(body["ws"], observer_frame(body), body["channel"])

    def on_changes(self, changes: list[Change], event: str | None) -> None:
        now = time.time()
        for change in changes:
            record = change.record
            key = (record.get("ws", ""), record.get("name", ""))
            if change.event == "connected":
                self.gone.pop(key, None)
                self.broadcast(key[0], presence_frame(record, "connected"))
            elif change.event == "disconnected":
                self._remember_gone(key, record, now)
                self.broadcast(key[0], presence_frame(record, "disconnected"))
            elif change.event == "updated" and event == "status":
                self.broadcast(key[0], status_frame(record))

    def _remember_gone(self, key: tuple[str, str], record: AgentRecord, now: float) -> None:
        if record.get("transient"):
            return  # a one-shot CLI command is not a dead agent: nothing to list
        self.gone[key] = {**record, "disconnected_at": now}
        self.gone.move_to_end(key)
        while len(self.gone) > GONE_MAX:
            self.gone.popitem(last=False)

    def gone_records(self, workspace: str | None, now: float) -> list[GoneRecord]:
        for key, record in list(self.gone.items()):
            if now - record["disconnected_at"] > GONE_KEEP_S:
                del self.gone[key]
        return [r for (owner, _), r in self.gone.items() if workspace is None or owner == workspace]

    def broadcast(self, workspace: str, text: str, channel: str | None = None) -> None:
        """Queue one frame for every observer of `workspace` (of a DM `channel`: those
        that may read it, observers.py); never awaits a socket."""
        dm = is_dm(channel)
        for observer in list(self.observers):
            if observer.workspace is None or observer.workspace == workspace:
                if dm and not observer.viewer.may_read(channel):
                    continue
                observer.enqueue(text)


def observer_frame(body: Delivery) -> str:
    """A delivery as observers get it: a message carries its hub number `num` in its
    payload (the dashboard's permalinks, reactions and edits name it), spliced into the
    text: the envelope's first keys are type, sender, id and ts, all JSON strings, so the
    first `"payload":{` is the envelope's own."""
    num = body.get("num")
    text = body["frame"]
    if body.get("event") or not isinstance(num, int):
        return text
    return text.replace('"payload":{', f'"payload":{{"num":{num},', 1)


def presence_frame(record: AgentRecord, event: str) -> str:
    return codec.server_frame(
        "presence_change",
        {
            "agent": record.get("name"),
            "event": event,
            "channels": list(record.get("channels") or []),
            "agent_id": record.get("agent_id") or record.get("name"),
            "project": record.get("project") or "",
            "workspace": record.get("ws"),
        },
    )


def status_frame(record: AgentRecord) -> str:
    return codec.server_frame(
        "status_update",
        {
            "agent": record.get("name"),
            "status": record.get("status") or "",
            "current_task": record.get("current_task") or "",
            "orochi_current_task": record.get("current_task") or "",
            "agent_id": record.get("agent_id") or record.get("name"),
            "machine": record.get("machine") or "",
            "role": record.get("role") or "",
            "project": record.get("project") or "",
            "workspace": record.get("ws"),
        },
    )
