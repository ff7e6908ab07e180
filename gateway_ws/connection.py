"""One agent connection (I/O): its session state and a bounded send path that never blocks fan-out.

A frame is written to the socket at once when nothing is waiting and the
transport's buffer is small; otherwise it waits in a bounded queue that a writer
task (started only then) drains with back-pressure. A queue that overflows marks
the connection a slow consumer, closed with 4008 so the agent can reconnect and
resume. Its close runs as a task of the gateway's `TaskSet` (`spawn`), so it is
kept until done and cancelled at shutdown.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import struct
import time
from collections.abc import Callable, Coroutine
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from scitex_orochi.hub.bus_bodies import AgentRecord
from scitex_orochi.hub.outbox import Outbox
from scitex_orochi.protocol import codec
from scitex_orochi.protocol.constants import CLOSE_REASONS

from .dialect import DIALECT_A, Dialect
from .session import Session

log = logging.getLogger("orochi.gateway_ws")

CLOSE_TIMEOUT_S = 2.0
# A slow consumer's close frame waits behind what the kernel already buffered; give the
# peer this long to read up to it (and see 4008) before the socket is dropped.
SLOW_CLOSE_GRACE_S = 30.0
# Above this many bytes waiting in the transport, frames queue instead of being written.
WRITE_BUFFER_HIGH = 256 * 1024
_conn_ids = itertools.count(1)

Framed = tuple[bytes, bytes]  # (UTF-8 text, the same as a complete WebSocket frame)
Spawn = Callable[[Coroutine[Any, Any, Any], str], Any]


def text_frame(payload: bytes) -> bytes:
    """A final, unmasked, uncompressed text frame (RFC 6455 section 5.2) as a server sends
    it: the same bytes serve every recipient. RSV1 stays clear, so it is valid even on a
    connection that negotiated permessage-deflate (RFC 7692: an uncompressed message)."""
    size = len(payload)
    if size < 126:
        return struct.pack("!BB", 0x81, size) + payload
    if size < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, size) + payload
    return struct.pack("!BBQ", 0x81, 127, size) + payload


def framed(text: str) -> Framed:
    """One delivery as text and as its WebSocket frame, encoded once for every recipient."""
    payload = text.encode()
    return payload, text_frame(payload)


class AgentConnection:
    # Thousands are held at once: no per-instance __dict__, and the send queue only
    # exists once a connection has backed up (an empty deque is a 64-slot block).
    __slots__ = (
        "ws",
        "conn_id",
        "session",
        "closing",
        "sent",
        "_queue",
        "_queue_max",
        "_queue_max_bytes",
        "_writer",
        "_spawn",
        "auth",
        "token",
        "addr",
        "opened",
        "limits",
        "dialect",
    )

    def __init__(
        self,
        ws: ServerConnection,
        workspace: str,
        is_admin: bool,
        gw: str,
        queue_max: int,
        queue_max_bytes: int = 1 << 62,
        *,
        spawn: Spawn,
        dialect: Dialect = DIALECT_A,
    ) -> None:
        self.ws = ws
        self._spawn = spawn
        self.dialect = dialect  # how this connection's frames are read and shaped
        self.conn_id = f"{gw}:{next(_conn_ids)}"
        self.session = Session(workspace, is_admin, self.conn_id, gw, time.time())
        self.closing = False
        self.sent = 0
        self._queue: Outbox[bytes] | None = None
        self._queue_max = queue_max
        self._queue_max_bytes = queue_max_bytes
        self._writer: asyncio.Task[None] | None = None
        self.auth: Any = None  # what the token granted (store.Auth)
        self.token = ""  # kept so that revoking the token closes this session
        self.addr = ""
        self.opened = time.monotonic()
        self.limits: Any = None  # the connection's rate limit buckets

    # The session holds identity and channels; these read through to it.
    @property
    def workspace(self) -> str:
        return self.session.workspace

    @property
    def name(self) -> str | None:
        return self.session.name

    @name.setter
    def name(self, value: str | None) -> None:
        self.session.name = value

    @property
    def channels(self) -> list[str]:
        return self.session.channels

    @property
    def record(self) -> AgentRecord:
        return self.session.record

    @property
    def last_seen(self) -> float:
        return self.session.last_seen

    @property
    def queued_bytes(self) -> int:
        return self._queue.bytes if self._queue is not None else 0

    def __repr__(self) -> str:
        return f"<AgentConnection {self.conn_id} {self.workspace}/{self.name}>"

    def enqueue(self, data: str | bytes) -> bool:
        """Send one text frame without blocking; False if the connection is (being) closed."""
        if self.closing:
            return False
        if isinstance(data, str):
            data = data.encode()
        ws = self.ws
        if (
            not self._queue
            and self._writer is None
            and ws.protocol.state is State.OPEN
            and ws.transport.get_write_buffer_size() < WRITE_BUFFER_HIGH
        ):
            ws.protocol.send_text(data)
            ws.send_data()
            self.sent += 1
            return True
        queue = self._queue
        if queue is None:
            queue = self._queue = Outbox(self._queue_max, self._queue_max_bytes)
        if not queue.push(data):
            log.warning(
                "slow consumer %s: %d frames (%d bytes) queued, closing",
                self,
                len(queue),
                queue.bytes,
            )
            queue.clear()
            self.close_soon(codec.CLOSE_SLOW_CONSUMER)
            return False
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_loop(), name=f"writer-{self.conn_id}")
        return True

    def deliver(self, frames: list[Framed]) -> None:
        """Several messages in one socket write when the fast path is open (nothing
        queued, transport not backed up); otherwise each goes through `enqueue`."""
        if self.closing:
            return
        ws = self.ws
        if (
            not self._queue
            and self._writer is None
            and ws.protocol.state is State.OPEN
            and ws.transport.get_write_buffer_size() < WRITE_BUFFER_HIGH
        ):
            ws.transport.write(
                frames[0][1] if len(frames) == 1 else b"".join([wire for _text, wire in frames])
            )
            self.sent += len(frames)
            return
        for text, _wire in frames:
            if not self.enqueue(text):
                return

    async def _write_loop(self) -> None:
        queue, ws = self._queue, self.ws
        try:
            while queue:
                await ws.send(queue.pop(), text=True)  # waits for the transport to drain
                self.sent += 1
        except (ConnectionClosed, asyncio.CancelledError):
            pass
        except Exception:  # noqa: BLE001 - a broken socket must not kill the gateway
            log.exception("writer of %s failed", self)
        finally:
            self._writer = None

    async def flush(self, timeout_s: float) -> None:
        """Wait until queued frames are written (best effort, bounded)."""
        writer = self._writer
        if writer is not None:
            await asyncio.wait([writer], timeout=timeout_s)

    def close_soon(self, code: int, reason: str | None = None) -> None:
        if self.closing:
            return
        self.closing = True
        self._spawn(self.close(code, reason), f"close-{self.conn_id}")

    async def close(self, code: int, reason: str | None = None) -> None:
        """Close with `code`; if the peer does not answer in time, drop the transport."""
        self.closing = True
        if code != codec.CLOSE_SLOW_CONSUMER:
            await self.flush(CLOSE_TIMEOUT_S / 2)
        if self._writer is not None:
            self._writer.cancel()
        grace = SLOW_CLOSE_GRACE_S if code == codec.CLOSE_SLOW_CONSUMER else CLOSE_TIMEOUT_S
        try:
            await asyncio.wait_for(
                self.ws.close(code, reason or CLOSE_REASONS.get(code, "")), grace
            )
        except (TimeoutError, ConnectionClosed):
            pass
        except Exception:  # noqa: BLE001
            log.debug("close of %s raised", self, exc_info=True)
        finally:
            if self.ws.transport is not None and not self.ws.transport.is_closing():
                self.ws.transport.abort()

    async def stop_writer(self) -> None:
        writer = self._writer
        if writer is not None:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
