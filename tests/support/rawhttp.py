"""Raw HTTP/1.1 over asyncio streams, for tests of the HTTP gateway's edge.

A test that asks how the server treats a half-sent head, a chunked body that
never ends or a connection from another loopback address needs the bytes on
the wire, not a client library's idea of them.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from support.util import TIME_SCALE


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def connect(
    port: int, source: str = "127.0.0.1"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to 127.0.0.1:port from `source` (any 127.x.y.z is loopback on Linux)."""
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


def head(method: str, target: str, host: str = "127.0.0.1", **headers: str) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def read_response(reader: asyncio.StreamReader, timeout: float = 5.0) -> Response:
    """One response (Content-Length bodies), or TimeoutError after `timeout` (scaled)."""
    timeout *= TIME_SCALE
    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await asyncio.wait_for(reader.readexactly(length), timeout) if length else b""
    return Response(status, headers, body)


async def request(
    port: int,
    method: str,
    target: str,
    *,
    body: bytes = b"",
    source: str = "127.0.0.1",
    timeout: float = 5.0,
    **headers: str,
) -> Response:
    """One request on a fresh connection (`Connection: close`)."""
    reader, writer = await connect(port, source)
    try:
        if body:
            headers.setdefault("Content_Length", str(len(body)))
        writer.write(head(method, target, Connection="close", **headers) + body)
        await writer.drain()
        return await read_response(reader, timeout)
    finally:
        writer.close()


async def closed_by_server(reader: asyncio.StreamReader, timeout: float) -> bytes | None:
    """What the server sent before closing the connection; None if still open at the deadline."""
    got = b""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout * TIME_SCALE
    while loop.time() < deadline:
        try:
            data = await asyncio.wait_for(reader.read(65536), deadline - loop.time())
        except TimeoutError:
            return None
        except ConnectionError:
            return got
        if not data:
            return got
        got += data
    return None
