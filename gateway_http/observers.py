"""The observer WebSocket `/ws?token=...` (PROTOCOL.md §5): the dashboard's live feed.

The dashboard authenticates with `/ws?ticket=...` instead (a single-use ticket
from `POST /api/ws-ticket`, gateway_http/tickets.py), so its token never goes
into a URL.

Observers receive every delivered message, change event (`reaction_update`,
`message_edit`, `message_delete`), `presence_change` and `status_update` of
their token's scope (an admin token sees every workspace, or the one named
with `?workspace=`). DM messages and events go to admin observers, and to a
workspace-token observer only when it reads as a participant: `?agent=<name>`,
checked as REST writers are (gateway_http/acting.py), or its token's pinned
name; a bad `agent` gets an error frame and the socket goes on without DMs.
They are never listed in presence. An admin observer may send
`{"type":"message","sender":NAME,"payload":{...}}`, which is posted like a REST
message; the ack (with `seq`) follows once it is durable. A workspace-token
observer only reads: its `message` frames get a FORBIDDEN error (and error ack)
and nothing is stored.

A browser's handshake from another origin than the hub's own is refused with 403
unless SCITEX_OROCHI_CORS_ORIGINS lists it (upstream.py: stable and dev dashboards).

Fan-out never awaits a socket: each observer has a bounded queue drained by
its own writer task, and one that overflows is closed with 4008.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import WSMsgType, web

from scitex_orochi.hub.errors import HubError
from scitex_orochi.hub.outbox import Outbox
from scitex_orochi.protocol import codec
from scitex_orochi.protocol.constants import CLOSE_REASONS
from scitex_orochi.protocol.errors import ErrorCode

from .acting import Viewer, resolve_viewer
from .auth import Scope, host_workspace, request_token, scope_of_token
from .errors import ApiError
from .keys import BUS, CONFIG, ObserverHub
from .posting import build_envelope, post_envelope
from .skill_expand import expand_message
from .tickets import TICKETS
from .upstream import check_ws_origin

log = logging.getLogger("orochi.gateway_http")

CLOSE_TIMEOUT_S = 2.0
POST_NEEDS_ADMIN = "posting needs the admin token"


class Observer:
    def __init__(self, ws: web.WebSocketResponse, scope: Scope, hub: ObserverHub) -> None:
        self.ws = ws
        self.scope = scope
        self.workspace = scope.workspace
        self.viewer = Viewer(scope.is_admin)  # which DMs it may see (observer_ws sets it)
        self.hub = hub
        self.closing = False
        self.sent = 0
        self._queue: Outbox[str] = Outbox(
            hub.cfg.ws.send_queue_max_frames, hub.cfg.ws.send_queue_max_bytes
        )
        self._ready = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._posts: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop())

    def enqueue(self, text: str) -> bool:
        if self.closing:
            return False
        if self._queue.push(text):
            self._ready.set()
            return True
        log.warning(
            "slow observer: %d frames (%d bytes) queued, closing",
            len(self._queue),
            self._queue.bytes,
        )
        self._queue.clear()
        self.hub.counters.observer_slow_closes += 1
        self.close_soon(codec.CLOSE_SLOW_CONSUMER)
        return False

    async def _write_loop(self) -> None:
        queue, ws, counters, ready = self._queue, self.ws, self.hub.counters, self._ready
        try:
            while True:
                if not queue:
                    ready.clear()
                    await ready.wait()
                    continue
                await ws.send_str(queue.pop())
                self.sent += 1
                counters.observer_frames_out += 1
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            pass
        except Exception:  # noqa: BLE001 - a broken socket must not kill the gateway
            log.exception("observer writer failed")

    def close_soon(self, code: int) -> None:
        if not self.closing:
            self.closing = True
            task = asyncio.create_task(self.close(code))
            self._posts.add(task)
            task.add_done_callback(self._posts.discard)

    async def close(self, code: int) -> None:
        self.closing = True
        if self._writer is not None:
            self._writer.cancel()
        try:
            await asyncio.wait_for(
                self.ws.close(code=code, message=CLOSE_REASONS.get(code, "").encode()),
                CLOSE_TIMEOUT_S,
            )
        except (TimeoutError, ConnectionError, RuntimeError):
            pass

    async def stop(self) -> None:
        for task in [self._writer, *self._posts]:
            if task is not None:
                task.cancel()
        await asyncio.gather(
            *(t for t in [self._writer, *self._posts] if t is not None), return_exceptions=True
        )

    # ---- frames from the observer ------------------------------------------------
    def on_text(self, text: str) -> None:
        try:
            frame = codec.parse_frame(text)
        except codec.ProtocolError as exc:
            self.refuse(exc.code, exc.detail, exc.ref)
            return
        if frame.type != "message":
            self.refuse(
                ErrorCode.UNSUPPORTED_TYPE,
                f"observers may send 'message' frames only, not {frame.type!r}",
                frame.id,
            )
            return
        if not self.scope.is_admin:
            self.refuse(ErrorCode.FORBIDDEN, POST_NEEDS_ADMIN, frame.id)
            return
        try:
            envelope = build_envelope(
                {"sender": frame.sender, "id": frame.id, "payload": frame.payload}
            )
        except HubError as exc:
            self.refuse(exc.code, exc.detail, frame.id)
            return
        task = asyncio.create_task(self._post(envelope))
        self._posts.add(task)
        task.add_done_callback(self._posts.discard)

    async def _post(self, envelope: dict[str, Any]) -> None:
        ref = envelope["id"]
        try:  # a person's `/<skill> @agent ...` is expanded first (skill_expand.py)
            envelope = await expand_message(self.hub.cfg, self.scope.one_workspace, envelope)
            result = await post_envelope(
                self.hub, self.scope.one_workspace, envelope, self.hub.cfg.http.post_timeout_s
            )
        except HubError as exc:  # PERSIST_TIMEOUT, or the persister's refusal
            self.refuse(exc.code, exc.detail, ref)
            return
        self.enqueue(codec.ack(ref, seq=result["seq"], channel=result["channel"]))

    def refuse(self, code: ErrorCode, detail: str, ref: str | None) -> None:
        self.enqueue(codec.error(code, detail, ref))
        if ref is not None:
            self.enqueue(codec.error_ack(ref, code))


def observer_token(request: web.Request) -> str:
    """The token of `?ticket=` (the dashboard, gateway_http/tickets.py), else `?token=`."""
    ticket = request.query.get("ticket")
    if ticket:
        return request.app[TICKETS].redeem(ticket) or ""
    return request_token(request)


async def observer_ws(request: web.Request) -> web.WebSocketResponse:
    hub, cfg = request.app[BUS], request.app[CONFIG]
    check_ws_origin(request)  # a browser page of another origin: 403 (upstream.py)
    ws = web.WebSocketResponse(
        heartbeat=cfg.ws.ping_interval_s, max_msg_size=cfg.ws.max_frame_bytes
    )
    await ws.prepare(request)
    try:
        scope = await scope_of_token(
            request.app,
            observer_token(request),
            request.query.get("workspace"),
            host_workspace(request),
        )
    except Exception:  # noqa: BLE001 - a broken store must not crash the gateway
        log.exception("observer authentication failed with an error")
        scope = None
    if scope is None:
        await ws.send_str(
            codec.server_frame(
                "error", {"code": ErrorCode.AUTH_FAILED, "detail": "Invalid or missing token"}
            )
        )
        await ws.close(
            code=codec.CLOSE_AUTH_FAILED, message=CLOSE_REASONS[codec.CLOSE_AUTH_FAILED].encode()
        )
        return ws
    observer = Observer(ws, scope, hub)
    try:  # `?agent=`: the name it reads DMs as (acting.py); without it, no DMs
        observer.viewer = await resolve_viewer(request, scope)
    except ApiError as exc:
        await ws.send_str(codec.error(exc.code, exc.detail))
    await hub.add_observer(observer)
    observer.start()
    try:
        async for msg in ws:
            if observer.closing:
                break
            if msg.type == WSMsgType.TEXT:
                observer.on_text(msg.data)
            elif msg.type == WSMsgType.BINARY:
                observer.refuse(
                    ErrorCode.PARSE_ERROR, "binary frames are not supported; send JSON text", None
                )
    finally:
        hub.remove_observer(observer)
        await observer.stop()
    return ws


def setup(app: web.Application) -> None:
    app.router.add_get("/ws", observer_ws)
