"""The connection machinery under `OrochiClient`: open and register, read and dispatch
frames, match replies, reconnect with jittered backoff, re-send unacked frames and
resume each channel after its last `seq`. The rules are in `client_core`."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import getpass
import json
import logging
import socket
from typing import Any, Self
from urllib.parse import quote

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI

from scitex_orochi.client.core import (
    EVENTS_CAPABILITY,
    EXPECTS_HISTORY,
    EXPECTS_PRESENCE,
    Backoff,
    Cursors,
    Event,
    Message,
    Reply,
    Requests,
    build_frame,
    classify,
    encode,
    item_from_row,
)
from scitex_orochi.client.errors import (
    AuthError,
    ClientClosed,
    ConnectionFailed,
    FrameTooLarge,
    OrochiError,
    Replaced,
    RequestTimeout,
)
from scitex_orochi.client.settings import ClientSettings, client_settings
from scitex_orochi.protocol.constants import (
    DEFAULT_MAX_FRAME_BYTES,
    Close,
)
from scitex_orochi.protocol.env import deprecation_notice

log = logging.getLogger("scitex_orochi.client.agent")

REQUEST_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10.0
HEARTBEAT_INTERVAL_S = 30.0
RESUME_PAGE_ROWS = 1000
MAX_FRAME_BYTES = DEFAULT_MAX_FRAME_BYTES
PING_INTERVAL_S = 20.0
CLOSE_REPLACED = Close.REPLACED
CLOSE_AUTH_FAILED = Close.AUTH_FAILED


class InboxEnd(enum.Enum):
    """The inbox sentinel: the client stopped."""

    INBOX_END = "inbox end"


INBOX_END = InboxEnd.INBOX_END


def default_agent_name(settings: ClientSettings | None = None) -> str:
    """SCITEX_OROCHI_AGENT, else user@host."""
    env = (settings or client_settings()).agent
    if env:
        return env
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = "agent"
    return f"{user}@{socket.gethostname().split('.')[0]}"


def ws_url(host: str, port: int, token: str | None = None) -> str:
    """The agent endpoint; with `token=None` it is also the form safe to print."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    url = f"ws://{host}:{port}/"
    return f"{url}?token={quote(token, safe='')}" if token else url


_LEGACY_WARNED: set[str] = set()


def warn_legacy(settings: ClientSettings, *names: str) -> None:
    """One warning per 0.1.0 variable (OROCHI_HOST, ...) that was read for `names`."""
    for old in settings.legacy_for(*names):
        if old not in _LEGACY_WARNED:
            _LEGACY_WARNED.add(old)
            log.warning("%s", deprecation_notice(old))


class HubConnection:
    """State and I/O of one agent connection. `OrochiClient` sets the settings, calls
    `_init_connection` and adds the public calls (resume uses its `query_history`,
    the heartbeat loop its `heartbeat`)."""

    name: str
    host: str
    port: int
    token: str | None
    machine: str
    role: str | None
    model: str | None
    project: str | None
    agent_id: str
    channels: list[str]
    timeout: float
    connect_timeout: float
    reconnect: bool
    max_reconnect_attempts: int | None
    backoff: Backoff
    resume: bool
    extra_register: dict[str, Any]
    events: bool

    # The public calls the connection itself relies on, defined by OrochiClient.
    async def query_history(
        self,
        channel: str = "#general",
        limit: int = 50,
        since: str | None = None,
        after_seq: int | None = None,
        timeout: float | None = None,
    ) -> list[Message]:
        raise NotImplementedError

    async def heartbeat(self, **extra: Any) -> None:
        raise NotImplementedError

    def _init_connection(self) -> None:
        self.reconnects = 0
        self._requests = Requests()
        self._cursors = Cursors(self.name)
        for channel in self.channels:
            self._cursors.track(channel)
        self._inbox: asyncio.Queue[Message | InboxEnd] = asyncio.Queue()
        self._events: asyncio.Queue[Event | InboxEnd] = asyncio.Queue()
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._fills: set[asyncio.Task[None]] = set()
        self._closing = False
        self._fatal: OrochiError | None = None
        self._auth_refused = False
        self._last_close: tuple[int | None, str] = (None, "")

    # ---- lifecycle -------------------------------------------------------
    @property
    def url(self) -> str:
        """The endpoint without the token, for messages."""
        return ws_url(self.host, self.port)

    @property
    def connected(self) -> bool:
        return self._ws is not None

    async def connect(self) -> Self:
        """Open the connection and register; raises ConnectionFailed or AuthError at once."""
        if self._supervisor is not None:
            return self
        ws = await self._open()
        self._supervisor = asyncio.create_task(self._supervise(), name="orochi-supervise")
        await self._attach(ws, first=True)
        return self

    async def close(self) -> None:
        self._closing = True
        tasks = [t for t in (self._heartbeat, *self._fills) if t is not None]
        for task in tasks:
            task.cancel()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(BaseException):
                await self._reader
        if self._supervisor is not None:
            self._supervisor.cancel()  # it may be sleeping between reconnect attempts
            with contextlib.suppress(BaseException):
                await self._supervisor
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        self._stop(ClientClosed("the client was closed"))

    async def __aenter__(self) -> Self:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- requests --------------------------------------------------------
    def _identity(self) -> dict[str, Any]:
        return {
            k: v
            for k, v in (("role", self.role), ("model", self.model), ("project", self.project))
            if v is not None
        }

    async def _request(
        self,
        type_: str,
        payload: dict[str, Any],
        *,
        expects: str | None = None,
        resend: bool = True,
        frame_id: str | None = None,
        timeout: float | None = None,
    ) -> Reply:
        if self._fatal is not None:
            raise self._fatal
        if self._closing or self._supervisor is None:
            raise ClientClosed("the client is not connected; use `async with` or connect()")
        frame = build_frame(type_, self.name, payload, frame_id)
        text = encode(frame)
        if len(text.encode()) > MAX_FRAME_BYTES:
            raise FrameTooLarge(
                f"{type_} frame is {len(text.encode())} bytes; the hub accepts {MAX_FRAME_BYTES}"
            )
        ws = self._ws
        if ws is None and not resend:
            raise ConnectionFailed(f"not connected to {self.url} (reconnecting)", self.url)
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._requests.add(frame, future, expects, resend)
        try:
            if ws is not None:
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(text)  # if this drops, the reconnect re-sends it
            limit = self.timeout if timeout is None else timeout
            try:
                return await asyncio.wait_for(future, limit)
            except TimeoutError:
                raise RequestTimeout(
                    f"no reply to {type_} from {self.url} within {limit:g}s"
                    + ("" if self._ws else " (reconnecting)")
                ) from None
        finally:
            self._requests.discard(frame["id"])

    async def _query_rows(
        self, payload: dict[str, Any], timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """A `query` (history or search): the reply's rows as the hub sent them."""
        reply = await self._request("query", payload, expects=EXPECTS_HISTORY, timeout=timeout)
        rows = (reply.reply or {}).get("history", [])
        return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []

    # ---- connection ------------------------------------------------------
    def _register_payload(self) -> dict[str, Any]:
        """What `register` carries; `capabilities` only when events were asked for, so a
        client without them sends exactly what the published clients send."""
        register: dict[str, Any] = {
            "channels": list(self.channels),
            "machine": self.machine,
            "agent_id": self.agent_id,
            **self._identity(),
            **self.extra_register,
        }
        if self.events:
            given = register.get("capabilities")
            caps = [c for c in given if isinstance(c, str)] if isinstance(given, list) else []
            register["capabilities"] = list(dict.fromkeys([*caps, EVENTS_CAPABILITY]))
        return register

    async def _open(self) -> ClientConnection:
        """Connect and register; the reader is running when this returns."""
        self._auth_refused = False
        try:
            ws = await websockets.connect(
                ws_url(self.host, self.port, self.token),
                open_timeout=self.connect_timeout,
                max_size=None,
                ping_interval=PING_INTERVAL_S,
                ping_timeout=PING_INTERVAL_S,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise AuthError(f"{self.url} refused the token (HTTP {status})") from None
            raise ConnectionFailed(
                f"{self.url} answered HTTP {status}, not a WebSocket; "
                "is this the agent port (not the dashboard port)?",
                self.url,
            ) from None
        except InvalidURI as exc:
            raise ConnectionFailed(f"bad hub address {self.url}: {exc}", self.url) from None
        except (OSError, TimeoutError, websockets.exceptions.InvalidHandshake) as exc:
            raise ConnectionFailed(
                f"cannot connect to {self.url} ({exc.__class__.__name__}: {exc}); check that "
                "the hub is running (`scitex-orochi serve`) and SCITEX_OROCHI_HOST/_PORT",
                self.url,
            ) from None
        self._reader = asyncio.create_task(self._read(ws), name="orochi-read")
        register = self._register_payload()
        frame = build_frame("register", self.name, register)
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._requests.add(frame, future, resend=False)
        try:
            await ws.send(encode(frame))
            await asyncio.wait_for(future, self.connect_timeout)
        except ConnectionClosed:
            await self._reader
            raise self._close_error() or ConnectionFailed(
                f"{self.url} closed the connection during register", self.url
            ) from None
        except TimeoutError:
            await ws.close()
            raise ConnectionFailed(
                f"{self.url} did not acknowledge register within {self.connect_timeout:g}s",
                self.url,
            ) from None
        except OrochiError as exc:
            await ws.close()
            await self._reader
            raise self._close_error() or exc from None
        finally:
            self._requests.discard(frame["id"])
        return ws

    async def _attach(self, ws: ClientConnection, first: bool) -> None:
        """Make `ws` current: re-send unacked frames, then resume or learn channel heads."""
        self._ws = ws
        for frame in self._requests.to_resend():
            with contextlib.suppress(ConnectionClosed):
                await ws.send(encode(frame))
        if not self.resume:
            return
        if first:
            await asyncio.gather(*(self._learn_head(c) for c in self.channels))
        else:
            for task in self._fills:
                task.cancel()
            for channel in sorted(set(self._cursors.resumable()) | set(self.channels)):
                self._spawn_fill(channel)

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                self._dispatch(raw)
        except ConnectionClosed:
            pass
        finally:
            self._last_close = (ws.close_code, ws.close_reason or "")
            self._requests.drop_not_resent(
                self._close_error()
                or ConnectionFailed(f"lost the connection to {self.url}", self.url)
            )

    def _dispatch(self, raw: str | bytes) -> None:
        try:
            frame = json.loads(raw)
        except ValueError:
            log.warning("dropped a frame that is not JSON")
            return
        if not isinstance(frame, dict):
            return
        kind = classify(frame)
        if kind == "ack":
            self._requests.on_ack(frame)
        elif kind == "error":
            payload = frame.get("payload") or {}
            if payload.get("code") == "AUTH_FAILED":
                self._auth_refused = True
            if not self._requests.on_error(frame):
                log.warning("hub error: %s %s", payload.get("code"), payload.get("detail"))
        elif kind in (EXPECTS_HISTORY, EXPECTS_PRESENCE, "gitea_result"):
            self._requests.on_reply(kind, frame)
        elif kind == "message":
            for msg in self._cursors.accept(Message.from_frame(frame)):
                self._inbox.put_nowait(msg)
            for channel in self._cursors.take_gaps():
                self._spawn_fill(channel)
        elif kind == "event" and self.events:
            event = Event.from_frame(frame)
            if self._cursors.accept_event(event):
                self._events.put_nowait(event)

    def _close_error(self) -> OrochiError | None:
        code, reason = self._last_close
        if self._auth_refused or code == CLOSE_AUTH_FAILED:
            return AuthError(
                f"{self.url} refused the token (AUTH_FAILED); check --token / SCITEX_OROCHI_TOKEN"
            )
        if code == CLOSE_REPLACED:
            return Replaced(
                f"another connection registered as {self.name!r} on {self.url}; "
                "this one was closed (4000)"
            )
        return None

    async def _supervise(self) -> None:
        """Wait for each connection to end; reconnect unless the end is final."""
        while True:
            assert self._reader is not None
            await asyncio.shield(self._reader)
            self._ws = None
            if self._closing:
                return
            fatal = self._close_error()
            if fatal is None and not self.reconnect:
                fatal = ConnectionFailed(
                    f"lost the connection to {self.url} (close {self._last_close[0]})", self.url
                )
            if fatal is not None:
                self._stop(fatal)
                return
            log.info(
                "connection to %s lost (close %s); reconnecting", self.url, self._last_close[0]
            )
            self._requests.drop_not_resent(ConnectionFailed("connection lost", self.url))
            ws = await self._reconnect()
            if ws is None:
                return
            self.reconnects += 1
            await self._attach(ws, first=False)

    async def _reconnect(self) -> ClientConnection | None:
        attempt = 0
        while not self._closing:
            if self.max_reconnect_attempts is not None and attempt >= self.max_reconnect_attempts:
                self._stop(
                    ConnectionFailed(
                        f"gave up reconnecting to {self.url} after {attempt} attempts", self.url
                    )
                )
                return None
            await asyncio.sleep(self.backoff.delay(attempt))
            attempt += 1
            try:
                return await self._open()
            except (AuthError, Replaced) as exc:
                self._stop(exc)
                return None
            except ConnectionFailed as exc:
                log.info("reconnect attempt %d failed: %s", attempt, exc)
        return None

    def _stop(self, reason: OrochiError) -> None:
        if self._fatal is None and not isinstance(reason, ClientClosed):
            self._fatal = reason
        self._requests.fail_all(self._fatal or reason)
        self._inbox.put_nowait(INBOX_END)
        self._events.put_nowait(INBOX_END)

    # ---- resume ----------------------------------------------------------
    async def _learn_head(self, channel: str) -> None:
        try:
            rows = await self.query_history(channel, limit=1)
        except OrochiError as exc:
            log.info("cannot learn the head of %s: %s", channel, exc)
            return
        self._cursors.note_head(channel, rows[0].seq if rows else 0)

    def _spawn_fill(self, channel: str) -> None:
        task = asyncio.create_task(self._fill(channel), name=f"orochi-fill-{channel}")
        self._fills.add(task)
        task.add_done_callback(self._fills.discard)

    async def _fill(self, channel: str) -> None:
        """Yield what was stored after our cursor, then the live messages held meanwhile."""
        after = self._cursors.begin_fill(channel)
        try:
            while after is not None:
                rows = await self._query_rows(
                    {"channel": channel, "limit": RESUME_PAGE_ROWS, "after_seq": after}
                )
                items = [item_from_row(r) for r in rows]
                self._put(self._cursors.fill(channel, items))
                seqs = [m.seq for m in items if m.seq is not None]
                if len(rows) < RESUME_PAGE_ROWS or not seqs:
                    break
                after = max(seqs)
        except asyncio.CancelledError:
            raise  # a reconnect starts a new fill; held messages stay held
        except OrochiError as exc:
            if self._ws is None and not self._closing:
                return  # the resume after the reconnect takes over
            log.warning("could not fill %s after seq %s: %s", channel, after, exc)
        self._put(self._cursors.end_fill(channel))

    def _put(self, items: list[Message | Event]) -> None:
        """Messages to the inbox; events (history rows of a client that asked) to theirs."""
        for item in items:
            if isinstance(item, Message):
                self._inbox.put_nowait(item)
            elif self.events:
                self._events.put_nowait(item)

    async def _beat(self, interval: float, extra: dict[str, Any]) -> None:
        while not self._closing:
            try:
                await self.heartbeat(**extra)
            except (ConnectionFailed, RequestTimeout) as exc:
                log.info("heartbeat skipped: %s", exc)
            except OrochiError:
                return
            await asyncio.sleep(interval)
