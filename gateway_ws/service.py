"""The agents' WebSocket gateway: protocol in, bus topics out, deliveries fanned out locally.

Any number of these run at once (SO_REUSEPORT on one port). Each owns its
connections, publishes presence deltas and snapshots, keeps a replica of the
others, holds every inbound message until the persister's durable ack arrives
(republishing it meanwhile), and releases each channel's deliveries in `seq`
order, filling gaps from the database.

At the edge it bounds what one client can take: connections per address and per
token, a time to register, rate limits (a flood is answered with RATE_LIMITED and
then slowed by not reading its socket), the bytes a reply or a send queue may
hold; and a revoked token closes its sessions within a sweep.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from bridges.gitea import authority
from scitex_orochi.hub.bus import AsyncBus, new_origin, pack
from scitex_orochi.hub.config import SHUTDOWN_DEADLINE_S, Config
from scitex_orochi.hub.ingest import Ingest, IngestFull
from scitex_orochi.hub.loops import ErrorOnce, every
from scitex_orochi.hub.presence import PresenceReplica
from scitex_orochi.hub.tokens import TokenCache
from scitex_orochi.protocol import codec, topics
from scitex_orochi.protocol.constants import CLOSE_REASONS

from .connection import AgentConnection, Framed, text_frame
from .limits import Limits, read_pause
from .routing import ChannelSequencer, Roster

log = logging.getLogger("orochi.gateway_ws")

Outbox = dict[AgentConnection, list[Framed]]  # what one bus frame delivers, per recipient
Handler = Callable[["Gateway", AgentConnection, codec.Frame], Awaitable[None]]

GAP_FILL_RETRIES = 5
GAP_FILL_RETRY_S = 0.1
GAP_FILL_MAX_BYTES = 8 * 1024 * 1024
GITEA_TIMEOUT_S = 30.0
BUS_BURST = 2000
# A register is acked once its presence delta has passed the broker, so the REST API
# lists the agent on the very next request; a broken bus delays the ack this long at most.
REGISTER_VISIBLE_TIMEOUT_S = 1.0
RETRY_AFTER_S = 5


class Gateway:
    def __init__(self, cfg: Config, store: Any) -> None:
        self.cfg = cfg
        self.store = store
        self.origin = new_origin("gw")
        self.bus = AsyncBus.from_config(cfg, self.origin)
        self.roster: Roster[AgentConnection] = Roster()
        self.replica = PresenceReplica(expiry_s=cfg.presence_expiry_s)
        self.conns: set[AgentConnection] = set()
        self.ingest = Ingest(self.bus, cfg.republish_after_s,
                             republish_max_s=cfg.republish_max_s,
                             max_pending_bytes=cfg.ingest_pending_max_bytes)
        self.sequencers: dict[tuple[str, str], ChannelSequencer] = {}
        self.filling: set[tuple[str, str]] = set()
        self.rpc_waiters: dict[str, asyncio.Future] = {}
        self.tokens: TokenCache[Any] = TokenCache(cfg.token_cache_max, cfg.token_cache_s)
        self.limits = Limits(cfg)
        self.rate_limited = 0
        self._admin_token: str | None = cfg.admin_token
        self._tasks: set[asyncio.Task] = set()
        self._snapshot_errors = ErrorOnce(log, "presence snapshot")
        self.stopping = asyncio.Event()

    # ---- lifecycle -------------------------------------------------------
    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task:
        """A background task with a kept reference, cancelled at shutdown."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def start_bus(self) -> None:
        self.bus.subscribe(topics.DELIVER, topics.PRESENCE, topics.SNAPSHOT, topics.CONTROL,
                           topics.reply(self.origin), *self.ingest.subscriptions())
        await self.bus.wait_ready(timeout_s=30.0)
        self.bus.publish(topics.SYNC_REQUEST, {"gw": self.origin})
        reap_every = min(5.0, self.cfg.reap_after_s / 4, self.cfg.register_timeout_s / 4)
        self.spawn(self.bus.dispatch_forever(self._on_bus, BUS_BURST), "bus")
        self.spawn(self.ingest.republish_loop(), "republish")
        self.spawn(every(self.cfg.presence_snapshot_s, self._snapshot_step, log,
                         "presence snapshot", first_delay_s=0.0), "snapshots")
        self.spawn(every(reap_every, self._reap_step, log, "reaper"), "reaper")
        self.spawn(every(self.cfg.revocation_sweep_s, self._revocation_sweep, log,
                         "revocation sweep"), "revocation")

    async def run(self) -> None:
        await self.start_bus()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        async with serve(
            self.handle, self.cfg.host, self.cfg.port,
            max_size=self.cfg.max_frame_bytes, process_request=self.process_request,
            ping_interval=self.cfg.ping_interval_s, ping_timeout=self.cfg.ping_timeout_s,
            reuse_port=True, max_queue=64, compression=None,
        ) as server:
            log.info("gateway %s listening on ws://%s:%d", self.origin, self.cfg.host,
                     self.cfg.port)
            await self.stopping.wait()
            log.info("stopping: closing %d connections", len(self.conns))
            self.bus.publish(topics.STOP, {"gw": self.origin})
            server.close(close_connections=False)
            await asyncio.wait_for(self._close_all(codec.CLOSE_GOING_AWAY),
                                   SHUTDOWN_DEADLINE_S / 2)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.bus.close()
        log.info("gateway stopped")

    async def _close_all(self, code: int) -> None:
        await asyncio.gather(*(c.close(code) for c in list(self.conns)), return_exceptions=True)

    # ---- auth and admission -------------------------------------------------
    def _admin(self) -> str:
        if not self._admin_token:
            try:
                self._admin_token = self.cfg.admin_token_file.read_text().strip() or None
            except OSError:
                return ""
        return self._admin_token or ""

    def process_request(self, connection: ServerConnection, request: Request
                        ) -> Response | None:
        """Before the handshake: refuse a client address (or this gateway) that holds
        too many connections already, with 503 and Retry-After."""
        reason = self.limits.refuse_address(_address(connection))
        if reason is None:
            return None
        response = connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, reason + "\n")
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response

    async def authenticate(self, path: str) -> tuple[Any, str, str] | None:
        """(store.Auth, token, workspace) for the request path's `?token=`, or None."""
        query = parse_qs(urlsplit(path).query)
        token = (query.get("token") or [""])[0]
        if not token:
            return None
        now = time.monotonic()
        auth = self.tokens.get(token, now)
        if auth is None:
            auth = await asyncio.get_running_loop().run_in_executor(
                None, self.store.authenticate, token, self._admin())
            self.tokens.put(token, auth, now)  # failures are not kept
        if auth is None:
            return None
        workspace = auth.workspace_id
        if auth.is_admin and query.get("workspace"):
            workspace = query["workspace"][0]
        return auth, token, workspace

    async def _refuse(self, ws: ServerConnection, code: str, detail: str, close: int) -> None:
        try:
            await ws.send(codec.server_frame("error", {"code": code, "detail": detail}))
            await ws.close(close, CLOSE_REASONS[close])
        except ConnectionClosed:
            pass

    # ---- per connection --------------------------------------------------
    async def handle(self, ws: ServerConnection) -> None:
        try:
            found = await self.authenticate(ws.request.path if ws.request else "")
        except Exception:  # noqa: BLE001 - a broken store must not crash the gateway
            log.exception("authentication failed with an error")
            found = None
        if found is None:
            await self._refuse(ws, "AUTH_FAILED", "Invalid or missing token",
                               codec.CLOSE_AUTH_FAILED)
            return
        auth, token, workspace = found
        reason = self.limits.refuse_token(token)
        if reason is not None:
            await self._refuse(ws, "TOO_MANY_CONNECTIONS", reason,
                               codec.CLOSE_TOO_MANY_CONNECTIONS)
            return
        conn = AgentConnection(ws, workspace, auth.is_admin, self.origin,
                               self.cfg.send_queue_max, self.cfg.send_queue_max_bytes)
        conn.auth, conn.token, conn.addr = auth, token, _address(ws)
        self.limits.opened(conn.addr, token)
        self.conns.add(conn)
        try:
            async for raw in ws:
                if conn.closing:
                    break
                pause = await self.handle_frame(conn, raw)
                if pause:
                    await asyncio.sleep(pause)  # back-pressure: a flood waits in TCP
        except ConnectionClosed:
            pass
        finally:
            self.conns.discard(conn)
            self.limits.closed(conn.addr, token)
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

    async def handle_frame(self, conn: AgentConnection, raw: str | bytes) -> float:
        """Handle one frame; the seconds to wait before reading the next (rate limits)."""
        now = time.monotonic()
        if conn.limits is None:
            conn.limits = self.limits.buckets(now)
        try:
            frame = codec.parse_frame(raw)
            conn.session.check(frame)
        except codec.ProtocolError as exc:
            conn.enqueue(codec.error(exc.code, exc.detail, exc.ref))
            if exc.ref is not None:
                # Published servers ack an unknown type as read; a refused frame is not.
                conn.enqueue(codec.ack(exc.ref) if exc.code == "UNKNOWN_TYPE"
                             else codec.error_ack(exc.ref, exc.code))
            wait = conn.limits.frames.take(now)
            return read_pause(wait) if wait else 0.0
        wait, which = self.limits.check(conn.limits, conn.workspace, frame.type == "message",
                                        now)
        if wait:
            self.rate_limited += 1
            conn.enqueue(codec.error("RATE_LIMITED",
                                     f"over the limit of {which}; retry in {wait:.2f}s",
                                     frame.id, retry_after_s=round(wait, 3)))
            conn.enqueue(codec.error_ack(frame.id, "RATE_LIMITED"))
            return read_pause(wait)
        conn.session.seen(time.time())
        try:
            await HANDLERS[frame.type](self, conn, frame)
        except codec.ProtocolError as exc:
            conn.enqueue(codec.error(exc.code, exc.detail, frame.id, **exc.extra))
            conn.enqueue(codec.error_ack(frame.id, exc.code))
        except Exception:  # noqa: BLE001 - never let one frame take the gateway down
            log.exception("frame %s of %s failed", frame.type, conn)
            conn.enqueue(codec.error("SERVER_ERROR", "internal error handling this frame",
                                     frame.id))
            conn.enqueue(codec.error_ack(frame.id, "SERVER_ERROR"))
        return 0.0

    # ---- limits on what a session holds ---------------------------------------------
    def _check_channels(self, count: int, ref: str) -> None:
        limit = self.cfg.max_channels_per_agent
        if count > limit:
            raise codec.ProtocolError(
                "LIMIT_EXCEEDED", f"an agent may be in at most {limit} channels "
                "(SCITEX_OROCHI_MAX_CHANNELS_PER_AGENT)", ref)

    def _check_record(self, record: dict[str, Any], ref: str) -> None:
        size = len(pack(record))
        if size > self.cfg.max_presence_record_bytes:
            raise codec.ProtocolError(
                "LIMIT_EXCEEDED", f"the agent's presence record would be {size} bytes, over "
                f"{self.cfg.max_presence_record_bytes} (SCITEX_OROCHI_MAX_PRESENCE_RECORD_BYTES)"
                "; send shorter fields or fewer channels", ref)

    async def _check_identity(self, conn: AgentConnection, name: str, ref: str) -> None:
        """Pinned tokens: a token pinned to a name registers only that name, a pinned
        name is taken by its token only, and a workspace may require pinned tokens."""
        auth = conn.auth
        if auth is None or auth.is_admin:
            return
        if auth.agent_name is not None:
            if name != auth.agent_name:
                raise codec.ProtocolError(
                    "FORBIDDEN", f"this token is pinned to the agent name {auth.agent_name!r}",
                    ref)
            return
        if auth.require_pinned:
            raise codec.ProtocolError(
                "FORBIDDEN", "this workspace requires a token pinned to the agent's name "
                "(ask an admin for one)", ref)
        if not auth.has_pins:  # (a pin created since is announced: caches are dropped)
            return
        pinned = await asyncio.get_running_loop().run_in_executor(
            None, self.store.pinned_names, conn.workspace, [name])
        if name in pinned:
            raise codec.ProtocolError(
                "FORBIDDEN", f"the name {name!r} belongs to its pinned token", ref)

    # ---- frame handlers --------------------------------------------------
    async def on_register(self, conn: AgentConnection, frame: codec.Frame) -> None:
        p = frame.payload
        self._check_channels(len(p["channels"]), frame.id)
        self._check_record({k: p.get(k) for k in (*codec.AGENT_FIELDS, "channels",
                                                  "orochi_current_task")}, frame.id)
        await self._check_identity(conn, frame.sender or "", frame.id)
        if conn.closing:
            return
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
        await self.bus.barrier(REGISTER_VISIBLE_TIMEOUT_S)
        conn.enqueue(codec.ack(frame.id, gateway=self.origin))

    async def on_message(self, conn: AgentConnection, frame: codec.Frame) -> None:
        frame.sender = conn.name
        try:
            self.ingest.submit(conn.workspace, frame.envelope(), "agent",
                               lambda body: self._acked(conn, body))
        except IngestFull as exc:
            raise codec.ProtocolError("OVERLOADED", str(exc), frame.id,
                                      retry_after_s=RETRY_AFTER_S) from None

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
        if channel not in conn.channels:
            self._check_channels(len(conn.channels) + 1, frame.id)
            self._check_record({**conn.record, "channels": [*conn.channels, channel]},
                               frame.id)
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
        """History, paged so that no reply exceeds the frame size published clients take;
        `more: true` says older rows (or, with after_seq, later ones) were left out."""
        p = frame.payload
        try:
            rows, more = await asyncio.get_running_loop().run_in_executor(
                None, lambda: self.store.history_page(
                    conn.workspace, p["channel"], max_bytes=self.cfg.max_reply_bytes,
                    since=p.get("since"), limit=p.get("limit") or codec.DEFAULT_QUERY_LIMIT,
                    after_seq=p.get("after_seq"), before_seq=p.get("before_seq")))
        except ValueError as exc:
            raise codec.ProtocolError("INVALID_FIELD", str(exc), frame.id) from None
        conn.enqueue(codec.history_reply_encoded(p["channel"], rows, frame.id, more))
        conn.enqueue(codec.ack(frame.id))

    async def on_presence(self, conn: AgentConnection, frame: codec.Frame) -> None:
        conn.enqueue(codec.presence_reply(self.replica.channel_map(conn.workspace)))
        conn.enqueue(codec.ack(frame.id))

    async def on_heartbeat(self, conn: AgentConnection, frame: codec.Frame) -> None:
        conn.session.heartbeat(frame.payload)
        self._publish_presence(conn, "heartbeat")
        conn.enqueue(codec.ack(frame.id))

    async def on_status_update(self, conn: AgentConnection, frame: codec.Frame) -> None:
        self._check_record({**conn.record, **{k: v for k, v in frame.payload.items()
                                              if isinstance(v, str)}}, frame.id)
        conn.session.status(frame.payload)
        self._publish_presence(conn, "status")
        conn.enqueue(codec.ack(frame.id))

    async def on_gitea(self, conn: AgentConnection, frame: codec.Frame) -> None:
        """Request/reply over the bus to the Gitea worker, after the authority check;
        answered from a task. The request id is the hub's, never the client's."""
        if not self.cfg.gitea_url:
            raise codec.ProtocolError(
                "GITEA_NOT_CONFIGURED", "Gitea is not configured on this hub "
                "(set SCITEX_OROCHI_GITEA_URL and SCITEX_OROCHI_GITEA_TOKEN)", frame.id)
        action, params = frame.payload["action"], frame.payload.get("params") or {}
        grant = await self._gitea_grant(conn)
        try:
            authority.check(action, params, is_admin=conn.session.is_admin, grant=grant)
        except authority.GiteaForbidden as exc:
            raise codec.ProtocolError("FORBIDDEN", exc.detail, frame.id) from None
        rid = codec.new_id()
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self.rpc_waiters[rid] = future
        self.bus.publish(topics.rpc("gitea"), {
            "rid": rid, "reply_to": self.origin, "ws": conn.workspace, "sender": conn.name,
            "action": action, "params": params})
        self.spawn(self._gitea_answer(conn, frame, rid, future, grant), f"gitea-{rid}")

    async def _gitea_grant(self, conn: AgentConnection) -> dict[str, Any] | None:
        """The workspace's Gitea grant as it is now (not as cached when connecting)."""
        if conn.session.is_admin:
            return None
        auth = await asyncio.get_running_loop().run_in_executor(
            None, self.store.authenticate, conn.token, self._admin())
        return auth.gitea_access if auth is not None else None

    async def _gitea_answer(self, conn: AgentConnection, frame: codec.Frame, rid: str,
                            future: asyncio.Future, grant: dict[str, Any] | None) -> None:
        action, params = frame.payload["action"], frame.payload.get("params") or {}
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
                                     str(err.get("detail", "")), frame.id, **extra))
        else:
            result = authority.filter_result(action, params, reply.get("result"),
                                             is_admin=conn.session.is_admin, grant=grant)
            conn.enqueue(codec.server_frame("gitea_result", {
                "action": action, "result": result, "ref": frame.id}))
        conn.enqueue(codec.ack(frame.id))

    def _publish_presence(self, conn: AgentConnection, event: str) -> None:
        self.bus.publish(topics.presence(conn.workspace), {
            "gw": self.origin, "event": event, "agent": conn.session.presence_record()})

    # ---- bus side ----------------------------------------------------------
    def _on_bus(self, topic: bytes, body: Any) -> None:
        fam = topics.family(topic)
        if fam == topics.DELIVER:
            self.on_deliver(body["items"])
        elif self.ingest.on_bus(topic, body):
            pass
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
        elif topic == topics.STOP and body.get("gw") != self.origin:
            self.replica.drop_gateway(body["gw"])
        elif topic == topics.REVOKE:
            self.revoke(set(body.get("tokens") or ()), set(body.get("workspaces") or ()))
        elif topic == topics.AUTH_CHANGED:
            changed = set(body.get("workspaces") or ())
            self.tokens.forget(where=lambda a: a.workspace_id in changed)

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
                self.spawn(self._fill_gap(key, sequencer), "gap-fill")
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
                encoded, _more = await loop.run_in_executor(
                    None, lambda a=after, u=upto: self.store.history_page(
                        key[0], key[1], after_seq=a, limit=max(1, min(1000, u - a - 1)),
                        max_bytes=GAP_FILL_MAX_BYTES))
                rows = [json.loads(text) for text in encoded]
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

    # ---- revocation --------------------------------------------------------
    def revoke(self, tokens: set[str], workspaces: set[str]) -> int:
        """Close every session that authenticated with one of `tokens` or belongs to one
        of `workspaces` (not the admin's), with 4001; their later frames store nothing."""
        self.tokens.forget(tokens, lambda a: a.workspace_id in workspaces)
        closed = 0
        for conn in list(self.conns):
            if conn.closing or conn.session.is_admin:
                continue
            if conn.token in tokens or conn.workspace in workspaces:
                log.info("closing %s: its token was revoked", conn)
                conn.close_soon(codec.CLOSE_AUTH_FAILED, "Token revoked")
                closed += 1
        return closed

    async def _revocation_sweep(self) -> None:
        """Tokens deleted by any means (REST, CLI, another gateway, the database) close
        their sessions within one sweep."""
        held = {c.token for c in self.conns if not c.session.is_admin and not c.closing}
        if not held:
            return
        live = await asyncio.get_running_loop().run_in_executor(
            None, self.store.live_tokens, list(held))
        gone = held - live
        if gone:
            self.revoke(gone, set())

    # ---- periodic work -----------------------------------------------------
    def _publish_snapshot(self) -> None:
        records = [c.record for c in self.conns if c.name is not None and not c.closing
                   and self.roster.by_name.get((c.workspace, c.name)) is c]
        body = {"gw": self.origin, "agents": records,
                "interval_s": self.cfg.presence_snapshot_s}
        try:
            self.bus.publish(topics.SNAPSHOT, body)
        except (TypeError, ValueError, OverflowError) as exc:
            # One record the bus cannot carry must not hide every other agent.
            self._snapshot_errors(exc)
            body["agents"] = [r for r in records if _packable(r)]
            self.bus.publish(topics.SNAPSHOT, body)

    def _snapshot_step(self) -> None:
        self._publish_snapshot()
        self.replica.expire(time.time(), keep=self.origin)

    def _reap_step(self) -> None:
        cutoff = time.time() - self.cfg.reap_after_s
        register_by = time.monotonic() - self.cfg.register_timeout_s
        for conn in list(self.conns):
            if conn.closing:
                continue
            if conn.name is None and conn.opened < register_by:
                log.info("closing %s: no register within %.0fs", conn,
                         self.cfg.register_timeout_s)
                conn.close_soon(codec.CLOSE_REGISTER_TIMEOUT)
            elif conn.last_seen < cutoff:
                log.info("reaping %s: silent for %.0fs", conn, time.time() - conn.last_seen)
                conn.close_soon(codec.CLOSE_REAPED)


def _address(connection: ServerConnection) -> str:
    try:
        peer = connection.remote_address
    except Exception:  # noqa: BLE001 - a socket already gone has no address
        return ""
    return str(peer[0]) if isinstance(peer, tuple) and peer else str(peer or "")


def _packable(record: dict[str, Any]) -> bool:
    try:
        pack(record)
        return True
    except (TypeError, ValueError, OverflowError):
        return False


HANDLERS: dict[str, Handler] = {
    "register": Gateway.on_register,
    "message": Gateway.on_message,
    "subscribe": Gateway.on_subscribe,
    "unsubscribe": Gateway.on_unsubscribe,
    "query": Gateway.on_query,
    "presence": Gateway.on_presence,
    "heartbeat": Gateway.on_heartbeat,
    "status_update": Gateway.on_status_update,
    "gitea": Gateway.on_gitea,
}
