"""Request bodies read as they stream in, each route with its own limit.

`read_body` never holds more than the route's limit (plus one network chunk):
a `Content-Length` over the limit is answered 413 before anything is read, and
a chunked (or lying) body is answered 413 as soon as the limit is passed. The
413 closes the connection, so the rest of the body is never parsed as another
request. Routes that need a token check it before calling these.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from scitex_orochi.protocol import codec

from .errors import ApiError, bad_request, too_large

ADMIN_BODY_MAX_BYTES = 64 * 1024  # workspaces, tokens, invites, redeeming an invite


def body_too_large(max_bytes: int) -> ApiError:
    return too_large(f"request body over {max_bytes} bytes", max_bytes)


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    """The whole body, or 413 once it passes `max_bytes`."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise body_too_large(max_bytes)
    buf = bytearray()
    async for chunk in request.content.iter_any():
        buf += chunk
        if len(buf) > max_bytes:
            raise body_too_large(max_bytes)
    return bytes(buf)


async def read_json_object(request: web.Request, max_bytes: int) -> dict[str, Any]:
    """The request body as a JSON object: 413 over `max_bytes`, 400 if malformed."""
    raw = await read_body(request, max_bytes)
    if not raw.strip():
        raise bad_request("the request body must be a JSON object")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise bad_request(f"malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise bad_request("the request body must be a JSON object")
    bad = codec.find_bad_value(data)
    if bad is not None:  # what msgpack, the databases or a browser cannot carry
        raise bad_request(f"{bad[0]} {bad[1]}", bad[0])
    return data
