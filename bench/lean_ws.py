"""A lean WebSocket client (RFC 6455) for the load generator.

The bench measures servers, so the client side must cost as little as possible:
with the `websockets` client every received frame resumes a coroutine through a
queue, and at ~50,000 deliveries/s the load generator, not the server, saturated
a core (our hub measured level with the do-nothing ceiling server). Here an
asyncio Protocol parses every complete frame of each `data_received` call and
hands text frames to a callback synchronously.

Client side only, no extensions (no compression), no subprotocols. It answers
pings, reassembles fragmented messages, echoes the server's close frame, and
masks what it sends, as the RFC requires of clients.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
from collections.abc import Callable
from urllib.parse import urlsplit

from websockets.speedups import apply_mask  # C: XOR with the 4-byte mask

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_HANDSHAKE_BYTES = 64 * 1024

FrameHook = Callable[[bytes], None]


class HandshakeError(ConnectionError):
    """The server did not switch protocols."""


def frame_header(opcode: int, length: int) -> bytes:
    """FIN + opcode, mask bit + length (the 4-byte key follows)."""
    if length < 126:
        return struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    if length < 1 << 16:
        return struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    return struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)


class LeanConnection(asyncio.Protocol):
    """One client connection; `on_message(data)` gets each text or binary message."""

    def __init__(self, on_message: FrameHook, key: bytes) -> None:
        self.on_message = on_message
        self.close_code: int | None = None
        self._key = key
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._open = False
        self._fragments: list[bytes] = []
        loop = asyncio.get_running_loop()
        self._opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self._close_sent = False

    # -- opening ------------------------------------------------------------------
    @classmethod
    async def open(cls, url: str, on_message: FrameHook, timeout_s: float) -> LeanConnection:
        parts = urlsplit(url)
        if parts.scheme != "ws":
            raise ValueError(f"only ws:// URLs: {url}")
        host = parts.hostname or "127.0.0.1"
        port = parts.port or 80
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        key = base64.b64encode(os.urandom(16))
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout_s):
            transport, conn = await loop.create_connection(lambda: cls(on_message, key), host, port)
            try:
                transport.write(
                    f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\n"
                    f"Sec-WebSocket-Version: 13\r\n\r\n".encode()
                )
                await conn._opened
            except BaseException:
                transport.close()
                raise
        return conn

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def _handshake(self) -> bool:
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > MAX_HANDSHAKE_BYTES:
                self._fail(HandshakeError("handshake response too large"))
            return False
        head = bytes(self._buf[:end]).decode("latin-1").split("\r\n")
        del self._buf[: end + 4]
        status = head[0].split(" ", 2)
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        accept = base64.b64encode(hashlib.sha1(self._key + GUID).digest()).decode()
        if len(status) < 2 or status[1] != "101":
            self._fail(HandshakeError(f"server answered {head[0]!r}"))
            return False
        if headers.get("sec-websocket-accept") != accept:
            self._fail(HandshakeError("bad Sec-WebSocket-Accept"))
            return False
        self._open = True
        if not self._opened.done():
            self._opened.set_result(None)
        return True

    def _fail(self, exc: Exception) -> None:
        if not self._opened.done():
            self._opened.set_exception(exc)
        if self._transport is not None:
            self._transport.close()

    # -- receiving ------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        self._buf += data
        if not self._open and not self._handshake():
            return
        buf = self._buf
        size = len(buf)
        pos = 0
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length = b1 & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                head = 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = 10
            if b1 & 0x80:  # servers never mask
                self._protocol_error()
                return
            end = pos + head + length
            if end > size:
                break
            payload = bytes(buf[pos + head : end])
            pos = end
            opcode = b0 & 0x0F
            if opcode == OP_TEXT or opcode == OP_BINARY:
                if b0 & 0x80:
                    self.on_message(payload)
                else:
                    self._fragments = [payload]
            elif opcode == OP_CONT:
                self._fragments.append(payload)
                if b0 & 0x80:
                    whole, self._fragments = b"".join(self._fragments), []
                    self.on_message(whole)
            elif opcode == OP_PING:
                self._send(OP_PONG, payload)
            elif opcode == OP_CLOSE:
                self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                self._send_close(payload[:2])
                if self._transport is not None:
                    self._transport.close()
                break
        del buf[:pos]

    def _protocol_error(self) -> None:
        self.close_code = 1002
        self._send_close(struct.pack("!H", 1002))
        if self._transport is not None:
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._open = False
        if self.close_code is None:
            self.close_code = 1006
        if not self._opened.done():
            self._opened.set_exception(ConnectionError(f"connection lost: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    # -- sending --------------------------------------------------------------------
    def _send(self, opcode: int, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            raise ConnectionError("connection closed")
        mask = os.urandom(4)
        transport.write(frame_header(opcode, len(data)) + mask + apply_mask(data, mask))

    def send_text(self, text: str) -> None:
        if not self._open:
            raise ConnectionError("connection closed")
        self._send(OP_TEXT, text.encode())

    def _send_close(self, code: bytes) -> None:
        if self._close_sent:
            return
        self._close_sent = True
        try:
            self._send(OP_CLOSE, code)
        except ConnectionError:
            pass

    async def close(self, timeout_s: float = 3.0) -> None:
        """Send a close frame (1000), wait for the server to end the connection."""
        self._send_close(struct.pack("!H", 1000))
        try:
            async with asyncio.timeout(timeout_s):
                await asyncio.shield(self.closed)
        except TimeoutError:
            pass
        if self._transport is not None:
            self._transport.close()
