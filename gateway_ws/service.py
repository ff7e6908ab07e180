"""The agents' WebSocket gateway: protocol in, bus topics out, deliveries fanned out locally.

Any number of these run at once (SO_REUSEPORT on one port). Each owns its
connections, publishes presence deltas and snapshots, keeps a replica of the
others, holds every inbound message until the persister's durable ack arrives
(republishing it meanwhile), and releases each channel's deliveries in `seq`
order, filling gaps from the database.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from scitex_orochi import codec, topics
from scitex_orochi.bus import AsyncBus, new_origin
from scitex_orochi.config import SHUTDOWN_DEADLINE_S, Config
from scitex_orochi.ingest import Ingest
from scitex_orochi.presence import PresenceReplica

from .connection import AgentConnection, Framed, text_frame
from .routing import ChannelSequencer, Roster

log = logging.getLogger("orochi.gateway_ws")

Outbox = dict[AgentConnection, list[Framed]]  # what one bus frame delivers, per recipient

AUTH_CACHE_S = 2.0
GAP_FILL_RETRIES = 5
GAP_FILL_RETRY_S = 0.1
GITEA_TIMEOUT_S = 30.0
BUS_BURST = 2000


class Gateway:
    def __init__(self, cfg: Config, store: Any) -> None:
        self.cfg = cfg
        self.store = store
        self.origin = new_origin("gw")
        self.bus = AsyncBus.from_config(cfg, self.origin)
        self.roster: Roster[AgentConnection] = Roster()
        self.replica = PresenceReplica(expiry_s=cfg.presence_expiry_s)
        self.conns: set[AgentConnection] = set()
        self.ingest = Ingest(self.bus, cfg.republish_after_s)
        self.sequencers: dict[tuple[str, str], ChannelSequencer] = {}
        self.filling: set[tuple[str, str]] = set()
        self.rpc_waiters: dict[str, asyncio.Future] = {}
        self._auth_cache: dict[str, tuple[Any, float]] = {}
        self._admin_token: str | None = cfg.admin_token
        self._tasks: list[asyncio.Task] = []
        self.stopping = asyncio.Event()

    # ---- lifecycle -------------------------------------------------------
    async def start_bus(self) -> None:
        self.bus.subscribe(topics.DELIVER, topics.PRESENCE, topics.SNAPSHOT, topics.CONTROL,
                           topics.reply(self.origin), *self.ingest.subscriptions())
        await self.bus.wait_ready(timeout_s=30.0)
        self.bus.publish(topics.SYNC_REQUEST, {"gw": self.origin})
        for coro in (self.bus.dispatch_forever(self._on_bus, BUS_BURST),
                     self.ingest.republish_loop(), self._snapshot_loop(),
                     self._reaper_loop()):
            self._tasks.append(asyncio.create_task(coro))

    async def run(self) -> None:
        await self.start_bus()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        async with serve(
            self.handle, self.cfg.host, self.cfg.port,
            max_size=self.cfg.max_frame_bytes,
            ping_interval=self.cfg.ping_interval_s, ping_timeout=self.cfg.ping_timeout_s,
            reuse_port=True, max_queue=64, compression=None,
        ) as server:
            log.info("gateway %s listening on ws://%s:%d", self.origin, self.cfg.host,
                     self.cfg.port)
            await self.stopping.wait()
            log.info("stopping: closing %d connections", len(self.conns))
            self.bus.publish(b"ctl.stop|", {"gw": self.origin})
            server.close(close_connections=False)
            await asyncio.wait_for(self._close_all(codec.CLOSE_GOING_AWAY),
                                   SHUTDOWN_DEADLINE_S / 2)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.bus.close()
        log.info("gateway stopped")

    async def _close_all(self, code: int) -> None:
        await asyncio.gather(*(c.close(code) for c in list(self.conns)), return_exceptions=True)

    # ---- auth ------------------------------------------------------------
    def _admin(self) -> str:
        if not self._admin_token:
            try:
                self._admin_token = self.cfg.admin_token_file.read_text().strip() or None
            except OSError:
                return ""
        return self._admin_token or ""

    async def authenticate(self, path: str) -> tuple[str, bool] | None:
        query = parse_qs(urlsplit(path).query)
        token = (query.get("token") or [""])[0]
        if not token:
            return None
        now = time.monotonic()
        cached = self._auth_cache.get(token)
        if cached is not None and cached[1] > now:
            auth = cached[0]
        else:
            admin = self._admin()
            auth = await asyncio.get_running_loop().run_in_executor(
                None, self.store.authenticate, token, admin)
            self._auth_cache[token] = (auth, now + AUTH_CACHE_S)
        if auth is None:
            return None
        workspace = auth.workspace_id
        if auth.is_admin and query.get("workspace"):
            workspace = query["workspace"][0]
        return workspace, auth.is_admin

    # ---- per connection --------------------------------------------------
    async def handle(self, ws: ServerConnection) -> None:
        try:
            auth = await self.authenticate(ws.request.path if ws.request else "")
        except Exception:  # noqa: BLE001 - a broken store must not crash the gateway
            log.exception("authentication failed with an error")
            auth = None
        if auth is None:
            try:
                await ws.send(codec.server_frame(
                    "error", {"code": "AUTH_FAILED", "detail": "Invalid or missing token"}))
                await ws.close(codec.CLOSE_AUTH_FAILED,
                               codec.CLOSE_REASONS[codec.CLOSE_AUTH_FAILED])
            except ConnectionClosed:
                pass
            return
        conn = AgentConnection(ws, auth[0], auth[1], self.origin, self.cfg.send_queue_max)
        self.conns.add(conn)
        try:
            async for raw in ws:
                if conn.closing:
                    break
                await self.handle_frame(conn, raw)
        except ConnectionClosed:
            pass
        finally:
            self.conns.discard(conn)
            self._forget(conn)
            await conn.stop_writer()

    def _forget(self, conn: AgentConnection) -> None:
        if conn.name is None:
            return
        self.roster.leave_all(conn.workspace, conn.channels, conn)
        if self.roster.by_name.get((conn.workspace, conn.name)) is conn:
            self.roster.unbind(conn.workspace, conn.name, conn)
            self.replica.remove(conn.record)
            self.bus.publish(topics.presence(conn.workspace),
                             {"gw": self.origin, "event": "disconnected", "agent": conn.record})

    async def handle_frame(self, conn: AgentConnection, raw: str | bytes) -> None:
        try:
            frame = codec.parse_frame(raw)
            conn.session.check(frame)
        except codec.ProtocolError as exc:
            conn.enqueue(codec.error(exc.code, exc.detail, exc.ref))
            if exc.ref is not None:
                conn.enqueue(codec.error_ack(exc.ref, exc.code))
            return
        conn.session.seen(time.time())
        handler = getattr(self, f"on_{frame.type}")
        try:
            await handler(conn, frame)
        except codec.ProtocolError as exc:
            conn.enqueue(codec.error(exc.code, exc.detail, frame.id))
            conn.enqueue(codec.error_ack(frame.id, exc.code))
        except Exception:  # noqa: BLE001 - never let one frame take the gateway down
            log.exception("frame %s of %s failed", frame.type, conn)
            conn.enqueue(codec.error("SERVER_ERROR", "internal error handling this frame",
                                     frame.id))
            conn.enqueue(codec.error_ack(frame.id, "SERVER_ERROR"))

    # ---- frame handlers --------------------------------------------------
    async def on_register(self, conn: AgentConnection, frame: codec.Frame) -> None:
        ws, now = conn.workspace, time.time()
        if conn.name is not None and conn.name != frame.sender:
            self._forget(conn)
        left, _previous = conn.session.register(frame, now)
        self.roster.leave_all(ws, left, conn)
        replaced = self.roster.bind(ws, conn.name or "", conn)
        for channel in conn.channels:
            self.roster.join(ws, channel, conn)
        if replaced is not None:
            self.roster.leave_all(ws, replaced.channels, replaced)
            replaced.name = None  # its close must not unbind the new holder
            replaced.close_soon(codec.CLOSE_REPLACED)
        self.replica.upsert(conn.record, now)
        self._publish_presence(conn, "connected")
        conn.enqueue(codec.ack(frame.id, gateway=self.origin))

    async def on_message(self, conn: AgentConnection, frame: codec.Frame) -> None:
        frame.sender = conn.name
        self.ingest.submit(conn.workspace, frame.envelope(), "agent",
                           lambda body: self._acked(conn, body))

    def _acked(self, conn: AgentConnection, body: dict[str, Any]) -> None:
        ref = body["id"]
        if body.get("error"):
            code = body["error"].get("code", "INVALID_MESSAGE")
            conn.enqueue(codec.error(code, str(body["error"].get("detail", "")), ref))
            conn.enqueue(codec.error_ack(ref, code))
        else:
            conn.enqueue(codec.ack(ref, seq=body.get("seq"), channel=body.get("channel")))

    async def on_subscribe(self, conn: AgentConnection, frame: codec.Frame) -> None:
        channel = frame.payload["channel"]
        if conn.session.subscribe(channel):
            self.roster.join(conn.workspace, channel, conn)
            self._publish_presence(conn, "channels")
        conn.enqueue(codec.ack(frame.id))

    async def on_unsubscribe(self, conn: AgentConnection, frame: codec.Frame) -> None:
        channel = frame.payload["channel"]
        if conn.session.unsubscribe(channel):
            self.roster.leave(conn.workspace, channel, conn)
            self._publish_presence(conn, "channels")
        conn.enqueue(codec.ack(frame.id))

    async def on_query(self, conn: AgentConnection, frame: codec.Frame) -> None:
        p = frame.payload
        try:
            rows = await asyncio.get_running_loop().run_in_executor(
                None, lambda: self.store.history(
                    conn.workspace, p["channel"], since=p.get("since"),
                    limit=p.get("limit") or codec.DEFAULT_QUERY_LIMIT,
                    after_seq=p.get("after_seq")))
        except ValueError as exc:
            raise codec.ProtocolError("INVALID_FIELD", str(exc), frame.id) from None
        conn.enqueue(codec.history_reply(p["channel"], rows, frame.id))
        conn.enqueue(codec.ack(frame.id))

    async def on_presence(self, conn: AgentConnection, frame: codec.Frame) -> None:
        conn.enqueue(codec.presence_reply(self.replica.channel_map(conn.workspace)))
        conn.enqueue(codec.ack(frame.id))

    async def on_heartbeat(self, conn: AgentConnection, frame: codec.Frame) -> None:
        conn.session.heartbeat(frame.payload)
        self._publish_presence(conn, "heartbeat")
        conn.enqueue(codec.ack(frame.id))

    async def on_status_update(self, conn: AgentConnection, frame: codec.Frame) -> None:
        conn.session.status(frame.payload)
        self._publish_presence(conn, "status")
        conn.enqueue(codec.ack(frame.id))

    async def on_gitea(self, conn: AgentConnection, frame: codec.Frame) -> None:
        """Request/reply over the bus to the Gitea worker; answered from a task."""
        rid = frame.id
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self.rpc_waiters[rid] = future
        self.bus.publish(topics.rpc("gitea"), {
            "rid": rid, "reply_to": self.origin, "ws": conn.workspace, "sender": conn.name,
            "action": frame.payload["action"], "params": frame.payload.get("params") or {}})

        async def answer() -> None:
            try:
                reply = await asyncio.wait_for(future, GITEA_TIMEOUT_S)
            except TimeoutError:
                reply = {"error": {"code": "GITEA_API_ERROR",
                                   "detail": "the Gitea worker did not answer in time"}}
            finally:
                self.rpc_waiters.pop(rid, None)
            if reply.get("error"):
                err = reply["error"]
                extra = {"status": err["status"]} if "status" in err else {}
                conn.enqueue(codec.error(err.get("code", "GITEA_API_ERROR"),
                                         str(err.get("detail", "")), rid, **extra))
            else:
                conn.enqueue(codec.server_frame("gitea_result", {
                    "action": frame.payload["action"], "result": reply.get("result"),
                    "ref": rid}))
            conn.enqueue(codec.ack(rid))

        asyncio.create_task(answer())

    def _publish_presence(self, conn: AgentConnection, event: str) -> None:
        self.bus.publish(topics.presence(conn.workspace), {
            "gw": self.origin, "event": event, "agent": conn.session.presence_record()})

    # ---- bus side ----------------------------------------------------------
    def _on_bus(self, topic: bytes, body: Any) -> None:
        fam = topics.family(topic)
        if fam == topics.DELIVER:
            self.on_deliver(body["items"])
        elif fam == topics.ACK:
            self.ingest.on_ack_frame(body)
        elif fam == topics.PRESENCE:
            if body.get("gw") != self.origin:
                self._on_remote_presence(body)
        elif fam == topics.SNAPSHOT:
            if body.get("gw") != self.origin:
                self.replica.apply_snapshot(body["gw"], body.get("agents") or [], time.time())
        elif fam == topics.REPLY:
            future = self.rpc_waiters.get(body.get("rid"))
            if future is not None and not future.done():
                future.set_result(body)
        elif topic == topics.SYNC_REQUEST:
            if body.get("gw") != self.origin:
                self._publish_snapshot()
        elif topic == b"ctl.stop|" and body.get("gw") != self.origin:
            self.replica.drop_gateway(body["gw"])

    def _on_remote_presence(self, body: dict[str, Any]) -> None:
        changes = self.replica.apply_delta(body, time.time())
        record = body.get("agent") or {}
        if body.get("event") != "connected":
            return
        local = self.roster.by_name.get((record.get("ws"), record.get("name")))
        if local is None or local.closing:
            return
        if any(c.event == "connected" and c.record is record for c in changes):
            log.info("%s registered on %s: closing the older local connection",
                     record.get("name"), record.get("gw"))
            self.roster.unbind(local.workspace, local.name or "", local)
            self.roster.leave_all(local.workspace, local.channels, local)
            local.name = None
            local.close_soon(codec.CLOSE_REPLACED)

    def on_deliver(self, items: list[dict[str, Any]]) -> None:
        """The deliveries of one `dlv.` frame: sequenced per channel, then each recipient
        gets everything the frame holds for it in one socket write."""
        out: Outbox = {}
        sequencers = self.sequencers
        for body in items:
            key = (body["ws"], body["channel"])
            sequencer = sequencers.get(key)
            if sequencer is None:
                sequencer = sequencers[key] = ChannelSequencer()
            for item in sequencer.offer(int(body["seq"]), body):
                self._route(item, out)
            if sequencer.gap() is not None and key not in self.filling:
                self.filling.add(key)
                asyncio.create_task(self._fill_gap(key, sequencer))
        for conn, frames in out.items():
            conn.deliver(frames)

    def _route(self, body: dict[str, Any], out: Outbox) -> None:
        recipients = self.roster.recipients(body["ws"], body["channel"],
                                            body.get("mentions") or (), body.get("sender", ""))
        if recipients:
            # Encoded and framed once: server frames are unmasked, the same bytes serve all.
            payload = body["frame"].encode()
            framed = (payload, text_frame(payload))
            for conn in recipients:
                queued = out.get(conn)
                if queued is None:
                    out[conn] = [framed]
                else:
                    queued.append(framed)

    def _fan_out(self, body: dict[str, Any]) -> None:
        out: Outbox = {}
        self._route(body, out)
        for conn, frames in out.items():
            conn.deliver(frames)

    async def _fill_gap(self, key: tuple[str, str], sequencer: ChannelSequencer) -> None:
        """Fetch missing seqs from the database, then release what waited behind them."""
        loop = asyncio.get_running_loop()
        try:
            for _attempt in range(GAP_FILL_RETRIES):
                gap = sequencer.gap()
                if gap is None:
                    return
                after, upto = gap
                rows = await loop.run_in_executor(None, lambda a=after, u=upto: self.store.history(
                    key[0], key[1], after_seq=a, limit=max(1, min(1000, u - a - 1))))
                log.info("filling gap on %s/%s after seq %d: %d rows", *key, after, len(rows))
                items = [(row["seq"], {"ws": key[0], "channel": key[1], "seq": row["seq"],
                                       "id": row["msg_id"], "sender": row["sender"],
                                       "mentions": row.get("mentions") or [],
                                       "frame": codec.frame_from_row(row)})
                         for row in rows if row["seq"] < upto]
                for item in sequencer.fill(items):
                    self._fan_out(item)
                if sequencer.gap() is not None:
                    await asyncio.sleep(GAP_FILL_RETRY_S)
            log.warning("gap on %s/%s could not be filled; skipping", *key)
            for item in sequencer.skip_gap():
                self._fan_out(item)
        except Exception:  # noqa: BLE001
            log.exception("gap fill on %s/%s failed", *key)
        finally:
            self.filling.discard(key)

    # ---- periodic work -----------------------------------------------------
    def _publish_snapshot(self) -> None:
        records = [c.record for c in self.conns if c.name is not None and not c.closing
                   and self.roster.by_name.get((c.workspace, c.name)) is c]
        self.bus.publish(topics.SNAPSHOT, {"gw": self.origin, "agents": records,
                                           "interval_s": self.cfg.presence_snapshot_s})

    async def _snapshot_loop(self) -> None:
        while True:
            self._publish_snapshot()
            self.replica.expire(time.time(), keep=self.origin)
            await asyncio.sleep(self.cfg.presence_snapshot_s)

    async def _reaper_loop(self) -> None:
        every = min(5.0, self.cfg.reap_after_s / 4)
        while True:
            await asyncio.sleep(every)
            cutoff = time.time() - self.cfg.reap_after_s
            for conn in list(self.conns):
                if conn.last_seen < cutoff and not conn.closing:
                    log.info("reaping %s: silent for %.0fs", conn, time.time() - conn.last_seen)
                    conn.close_soon(codec.CLOSE_REAPED)
