"""One bus peer: what every gateway and bridge does on the bus, written once.

A `BusPeer` owns its process's one `AsyncBus` and everything done with it:

- a dispatch table, topic -> handler: a key is an exact topic (`ctl.revoke|`,
  `rpc.gitea|`) or a family prefix (`dlv.`, `pres.`); an exact key wins.
  `route` subscribes as it adds, and `start` proves every subscription live (a
  probe round trip) before the process relies on it;
- request/reply: `request` sends `rpc.<service>|` with a request id made here
  and waits, bounded, for `rep.<origin>|`; `serve` is the worker side, each
  request answered from its own kept task;
- republish-until-acked: with `ingest=True` the peer owns the process's `Ingest`
  (its acks, the persister's restart notice and the republish loop);
- presence: with `replica=True`, a `PresenceReplica` of the other gateways
  (deltas, snapshots, stop notices, expiry), changes handed to `on_presence`;
  a process that holds agents adds `own_agents(records)`: its snapshots, its
  answers to `ctl.sync|` and, on the way out, its own stop notice;
- stopping: `stop_on_signals` (SIGTERM, SIGINT -> `stopping`), then `stop`;
- background tasks, kept in one `TaskSet` and cancelled by `stop`.

What a process does with a frame stays in the process: it routes a topic to
one of its own handlers.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, TypeVar

from scitex_orochi.hub.bus import AsyncBus, new_origin, pack
from scitex_orochi.hub.bus_bodies import (
    AgentRecord,
    ErrorBody,
    GatewayNotice,
    PersisterReady,
    PresenceDelta,
    RpcHeader,
    RpcReply,
    Snapshot,
)
from scitex_orochi.hub.config import Config
from scitex_orochi.hub.errors import RpcError, RpcTimeout
from scitex_orochi.hub.ingest import Ingest
from scitex_orochi.hub.loops import ErrorOnce, TaskSet, every
from scitex_orochi.hub.presence import Change, PresenceReplica
from scitex_orochi.protocol import topics

log = logging.getLogger("orochi.peer")

BUS_BURST = 2000
READY_TIMEOUT_S = 30.0

# A handler takes the body of its topic (hub/bus_bodies.py); the table pairs them.
Handler = Callable[[Any], object]
PresenceHandler = Callable[[list[Change], "PresenceDelta | None"], None]
R = TypeVar("R", bound=RpcHeader)  # the request body of one served service
_DEFAULT = object()


class BusPeer:
    def __init__(
        self,
        cfg: Config,
        kind: str,
        *,
        ingest: bool = False,
        ingest_max_bytes: int | None = None,
        replica: bool = False,
        on_presence: PresenceHandler | None = None,
        burst: int = BUS_BURST,
    ) -> None:
        self.cfg = cfg
        self.origin = new_origin(kind)
        self.bus = AsyncBus.from_config(cfg, self.origin)
        self.burst = burst
        self.tasks = TaskSet()
        self.routes: dict[bytes, Handler] = {}
        self.stopping = asyncio.Event()
        self.unrouted = 0
        self.served = 0
        self._waiters: dict[str, asyncio.Future[RpcReply]] = {}
        self._serving = TaskSet()
        self._accepting = True
        self._own_records: Callable[[], list[AgentRecord]] | None = None
        self._snapshot_errors = ErrorOnce(log, "presence snapshot")
        self.route(topics.reply(self.origin), self._on_reply)
        self.ingest: Ingest | None = None
        if ingest:
            self.ingest = Ingest(
                self.bus,
                cfg.ingest.republish_after_s,
                republish_max_s=cfg.ingest.republish_max_s,
                max_pending_bytes=ingest_max_bytes,
            )
            self.route(topics.ack(self.origin), self.ingest.on_ack_frame)
            self.route(topics.PERSISTER_READY, self._on_persister_ready)
        self.replica: PresenceReplica | None = None
        self._on_presence = on_presence
        if replica:
            self.replica = PresenceReplica(expiry_s=cfg.presence.expiry_s)
            self.route(topics.PRESENCE, self._on_delta)
            self.route(topics.SNAPSHOT, self._on_snapshot)
            self.route(topics.STOP, self._on_stop)

    # ---- the dispatch table ------------------------------------------------------
    def route(self, key: bytes, handler: Handler, subscribe: Any = _DEFAULT) -> None:
        """Send frames whose topic is `key` (or whose family is `key`) to `handler(body)`.

        Subscribes to `key`, or to `subscribe` (one prefix or several; None: the
        owner subscribes later, with `subscribe`, and proves it with `ready`).
        """
        self.routes[key] = handler
        if subscribe is _DEFAULT:
            subscribe = key
        if subscribe is not None:
            self.subscribe(*((subscribe,) if isinstance(subscribe, bytes) else subscribe))

    def subscribe(self, *prefixes: bytes) -> None:
        self.bus.subscribe(*prefixes)

    def unsubscribe(self, *prefixes: bytes) -> None:
        self.bus.unsubscribe(*prefixes)

    def dispatch(self, topic: bytes, body: Any) -> None:
        handler = self.routes.get(topic) or self.routes.get(topics.family(topic))
        if handler is None:
            self.unrouted += 1
            return
        if type(body) is not dict:
            log.warning("dropped a bus frame on %r: its body is not a map", topic[:60])
            return
        handler(body)

    def publish(self, topic: bytes, body: Mapping[str, object]) -> None:
        self.bus.publish(topic, body)

    async def barrier(self, timeout_s: float) -> bool:
        """True once everything published so far has passed the broker."""
        return await self.bus.barrier(timeout_s)

    # ---- lifecycle ---------------------------------------------------------------
    async def start(self, ready_timeout_s: float = READY_TIMEOUT_S) -> None:
        """Prove the subscriptions live, then run the dispatch loop and the peer's own loops."""
        await self.ready(ready_timeout_s)
        if self.replica is not None:
            self.publish(topics.SYNC_REQUEST, GatewayNotice(gw=self.origin))
        self.spawn(self.bus.dispatch_forever(self.dispatch, self.burst), "bus")
        if self.ingest is not None:
            self.spawn(self.ingest.republish_loop(), "republish")
        if self._own_records is not None:
            self.every(
                self.cfg.presence.snapshot_s,
                self.publish_snapshot,
                "presence snapshot",
                first_delay_s=0.0,
            )
        if self.replica is not None:
            self.every(self.cfg.presence.snapshot_s, self._expire, "presence expiry")

    async def ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Prove every subscription made so far (raises BusError on timeout)."""
        await self.bus.wait_ready(timeout_s=timeout_s)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """A background task with a kept reference, cancelled by `stop`."""
        return self.tasks.spawn(coro, name)

    def every(
        self,
        interval_s: float,
        step: Callable[[], object],
        what: str,
        *,
        first_delay_s: float | None = None,
    ) -> asyncio.Task[Any]:
        return self.spawn(every(interval_s, step, log, what, first_delay_s=first_delay_s), what)

    def stop_on_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)

    def announce_stop(self) -> None:
        """Tell every replica to drop this process's agents now (`ctl.stop|`)."""
        self.publish(topics.STOP, GatewayNotice(gw=self.origin))

    async def stop(self, drain_s: float = 0.0) -> None:
        """Stop taking requests, let those in hand finish for `drain_s`, cancel every task
        and close the bus."""
        self._accepting = False
        if drain_s > 0:
            await self._serving.wait(drain_s)
        await self._serving.cancel_all()
        await self.tasks.cancel_all()
        for future in self._waiters.values():
            if not future.done():
                future.cancel()
        self.bus.close()

    # ---- request / reply ---------------------------------------------------------
    async def request(self, service: str, body: Mapping[str, object], timeout_s: float) -> RpcReply:
        """Ask `service` (`body`: its `bus_bodies.*Ask`) and wait for its reply body
        (`result` or `error`); RpcTimeout."""
        rid = uuid.uuid4().hex
        future: asyncio.Future[RpcReply] = asyncio.get_running_loop().create_future()
        self._waiters[rid] = future
        try:
            self.publish(topics.rpc(service), {**body, "rid": rid, "reply_to": self.origin})
            async with asyncio.timeout(timeout_s):
                return await future
        except TimeoutError:
            raise RpcTimeout(f"no answer from {service} within {timeout_s:.1f}s") from None
        finally:
            self._waiters.pop(rid, None)

    def _on_reply(self, body: RpcReply) -> None:
        rid = body.get("rid")
        future = self._waiters.get(rid) if isinstance(rid, str) else None
        if future is not None and not future.done():
            future.set_result(body)

    def serve(
        self, service: str, answer: Callable[[R], Awaitable[object]], crash_error: ErrorBody
    ) -> None:
        """Answer `rpc.<service>|` requests with `await answer(request)`: its result, the
        error of an `RpcError` it raises, or `crash_error` for anything else."""

        def on_request(request: R) -> None:
            if self._accepting:
                self._serving.spawn(
                    self._answer(service, answer, request, crash_error), f"rpc-{service}"
                )

        self.route(topics.rpc(service), on_request)

    async def _answer(
        self,
        service: str,
        answer: Callable[[R], Awaitable[object]],
        request: R,
        crash_error: ErrorBody,
    ) -> None:
        try:
            result = await answer(request)
        except RpcError as exc:
            self.reply(request, error=exc.error)
        except Exception:  # noqa: BLE001 - the requester must hear back
            log.exception("%s request %s failed", service, request.get("rid"))
            self.reply(request, error=crash_error)
        else:
            self.reply(request, result=result)
        self.served += 1

    def reply(
        self, request: RpcHeader, *, result: object = None, error: ErrorBody | None = None
    ) -> None:
        """Answer one request on its requester's reply topic."""
        reply_to = request.get("reply_to")
        if not isinstance(reply_to, str) or not reply_to:
            log.warning("request %s has no reply_to; dropped", request.get("rid"))
            return
        body: RpcReply = {"rid": request.get("rid")}
        if error is not None:
            body["error"] = error
        else:
            body["result"] = result
        self.publish(topics.reply(reply_to), body)

    # ---- ingest ------------------------------------------------------------------
    def _on_persister_ready(self, _body: PersisterReady) -> None:
        assert self.ingest is not None
        self.ingest.on_persister_ready()

    # ---- presence ----------------------------------------------------------------
    def own_agents(self, records: Callable[[], list[AgentRecord]]) -> None:
        """This process holds agents: publish `records()` as its snapshot on start, every
        snapshot interval and whenever another process asks (`ctl.sync|`)."""
        self._own_records = records
        self.route(topics.SYNC_REQUEST, self._on_sync_request)

    def _on_sync_request(self, body: GatewayNotice) -> None:
        if body.get("gw") != self.origin:
            self.publish_snapshot()

    def publish_snapshot(self) -> None:
        assert self._own_records is not None
        records = self._own_records()
        body = Snapshot(gw=self.origin, agents=records, interval_s=self.cfg.presence.snapshot_s)
        try:
            self.publish(topics.SNAPSHOT, body)
        except (TypeError, ValueError, OverflowError) as exc:
            # One record the bus cannot carry must not hide every other agent.
            self._snapshot_errors(exc)
            body["agents"] = [r for r in records if _packable(r)]
            self.publish(topics.SNAPSHOT, body)

    def _notify(self, changes: list[Change], body: PresenceDelta | None) -> None:
        if self._on_presence is not None:
            self._on_presence(changes, body)

    def _on_delta(self, body: PresenceDelta) -> None:
        if body.get("gw") != self.origin:  # our own agents are in the replica already
            assert self.replica is not None
            self._notify(self.replica.apply_delta(body, time.time()), body)

    def _on_snapshot(self, body: Snapshot) -> None:
        if body.get("gw") != self.origin:
            assert self.replica is not None
            self._notify(
                self.replica.apply_snapshot(body["gw"], body.get("agents") or [], time.time()), None
            )

    def _on_stop(self, body: GatewayNotice) -> None:
        gw = body.get("gw", "")
        if gw != self.origin:
            assert self.replica is not None
            self._notify(self.replica.drop_gateway(gw), None)

    def _expire(self) -> None:
        assert self.replica is not None
        self._notify(self.replica.expire(time.time(), keep=self.origin), None)


def _packable(record: AgentRecord) -> bool:
    try:
        pack(record)
        return True
    except (TypeError, ValueError, OverflowError):
        return False
