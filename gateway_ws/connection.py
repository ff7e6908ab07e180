"""One agent connection: its session state and a bounded send queue drained by one writer task.

Fan-out never awaits a socket: it puts an already-encoded frame on the queue.
A queue that overflows marks the connection a slow consumer, which is closed
with 4008 so the agent can reconnect and resume.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from scitex_orochi import codec

from .session import Session

log = logging.getLogger("orochi.gateway_ws")

CLOSE_TIMEOUT_S = 2.0
# A slow consumer's close frame waits behind what the kernel already buffered; give the
# peer this long to read up to it (and see 4008) before the socket is dropped.
SLOW_CLOSE_GRACE_S = 30.0
_conn_ids = itertools.count(1)


class AgentConnection:
    def __init__(self, ws: ServerConnection, workspace: str, is_admin: bool, gw: str,
                 queue_max: int) -> None:
        self.ws = ws
        self.conn_id = f"{gw}:{next(_conn_ids)}"
        self.session = Session(workspace, is_admin, self.conn_id, gw, time.time())
        self.closing = False
        self.sent = 0
        self._queue: asyncio.Queue[str] = asyncio.Queue(queue_max)
        self._writer: asyncio.Task | None = None

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
    def record(self) -> dict[str, Any]:
        return self.session.record

    @property
    def last_seen(self) -> float:
        return self.session.last_seen

    def __repr__(self) -> str:
        return f"<AgentConnection {self.conn_id} {self.workspace}/{self.name}>"

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name=f"writer-{self.conn_id}")

    def enqueue(self, text: str) -> bool:
        """Queue one frame; False (and the connection is being closed) on overflow."""
        if self.closing:
            return False
        try:
            self._queue.put_nowait(text)
            return True
        except asyncio.QueueFull:
            log.warning("slow consumer %s: %d frames queued, closing", self, self._queue.qsize())
            self.close_soon(codec.CLOSE_SLOW_CONSUMER)
            return False

    async def _write_loop(self) -> None:
        queue, ws = self._queue, self.ws
        try:
            while True:
                text = await queue.get()
                await ws.send(text)
                self.sent += 1
                # Drain what is already queued without yielding per frame.
                while not queue.empty():
                    await ws.send(queue.get_nowait())
                    self.sent += 1
        except (ConnectionClosed, asyncio.CancelledError):
            pass
        except Exception:  # noqa: BLE001 - a broken socket must not kill the gateway
            log.exception("writer of %s failed", self)

    async def flush(self, timeout_s: float) -> None:
        """Wait until the queue is written (best effort, bounded)."""
        deadline = time.monotonic() + timeout_s
        while not self._queue.empty() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    def close_soon(self, code: int, reason: str | None = None) -> None:
        if self.closing:
            return
        self.closing = True
        asyncio.create_task(self.close(code, reason))

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
                self.ws.close(code, reason or codec.CLOSE_REASONS.get(code, "")), grace
            )
        except (TimeoutError, ConnectionClosed):
            pass
        except Exception:  # noqa: BLE001
            log.debug("close of %s raised", self, exc_info=True)
        finally:
            if self.ws.transport is not None and not self.ws.transport.is_closing():
                self.ws.transport.abort()

    async def stop_writer(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
