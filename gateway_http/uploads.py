"""File uploads (multipart and base64) into the media store (gateway_http/media.py), and /media.

Media is served with `nosniff` and a sandbox CSP so an uploaded HTML or SVG file
cannot script the dashboard's origin. Uploading needs the admin token (into
`?workspace=` or the default workspace), except that a base64 upload also takes a
workspace token acting as one of its agents (the fleet sidecar's; into its own
workspace); each stored file's sidecar names that workspace. /media serves a file
to a token of that workspace or to the admin token (`?token=` or `Authorization:
Bearer`), 401 without a valid token, and 404 otherwise, whether or not the file
exists. Files without a sidecar (stored before sidecars existed) are served to the
admin token only.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import os
import re
from typing import Any
from urllib.parse import unquote

from aiohttp import BodyPartReader, web

from .acting import registered_name, resolve_actor
from .auth import Scope, authenticate, request_token, require_admin, scope_of_token
from .bodies import read_json_object
from .errors import bad_request, not_found, opt_str, unauthorized
from .media import MEDIA, StoredFile, file_too_large
from .media import MediaStore as MediaStore  # service.py still imports it from here

MULTIPART_OVERHEAD_BYTES = 64 * 1024  # part headers and boundaries around the file
BASE64_OVERHEAD_BYTES = 64 * 1024  # the JSON around the base64 text
MAX_FILENAME_CHARS = 255
DEFAULT_MIME = "application/octet-stream"
_EXT_RE = re.compile(r"^\.[A-Za-z0-9]{1,10}$")
# Served as downloads, never rendered inline on our origin.
_ACTIVE_TYPES = (
    "text/html",
    "image/svg+xml",
    "application/xhtml+xml",
    "text/xml",
    "application/xml",
    "application/javascript",
    "text/javascript",
)


def safe_filename(name: str | None) -> str:
    """The display name: base name only, printable, bounded (percent-escapes decoded first)."""
    base = os.path.basename(unquote(name or "").replace("\\", "/")).strip()
    base = "".join(c for c in base if ord(c) >= 32 and c not in '"<>')
    return base[:MAX_FILENAME_CHARS] or "upload"


def extension_for(filename: str, mime_type: str) -> str:
    ext = os.path.splitext(filename)[1].lower()
    if _EXT_RE.match(ext):
        return ext
    guessed = mimetypes.guess_extension(mime_type or "") or ""
    return guessed if _EXT_RE.match(guessed) else ""


def mime_for(filename: str, given: str | None) -> str:
    if given and "/" in given and len(given) <= 200 and given.isprintable():
        return given.split(";")[0].strip().lower()
    return mimetypes.guess_type(filename)[0] or DEFAULT_MIME


def _answer(stored: StoredFile, mime: str, filename: str) -> web.Response:
    return web.json_response(
        {
            "file_id": stored.file_id,
            "url": stored.url,
            "mime_type": mime,
            "filename": filename,
            "size": stored.size,
        },
        status=201,
    )


async def upload_multipart(request: web.Request) -> web.Response:
    scope = await require_admin(request)
    media = request.app[MEDIA]
    if not request.content_type.startswith("multipart/"):
        raise bad_request("send multipart/form-data with a 'file' field", "file")
    if (
        request.content_length is not None
        and request.content_length > media.max_size + MULTIPART_OVERHEAD_BYTES
    ):
        raise file_too_large(media.max_size)
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError) as exc:
        raise bad_request(f"malformed multipart body: {exc}", "file") from None
    async for part in reader:
        if not isinstance(part, BodyPartReader) or part.name != "file":
            continue  # another field, or a nested multipart
        filename = safe_filename(part.filename)
        mime = mime_for(filename, part.headers.get("Content-Type"))
        stored = await media.save_stream(
            part.read_chunk,
            extension_for(filename, mime),
            workspace=scope.one_workspace,
            mime_type=mime,
            filename=filename,
        )
        return _answer(stored, mime, filename)
    raise bad_request("multipart field 'file' is required", "file")


async def base64_scope(request: web.Request) -> Scope:
    """The admin token, or (the sidecar's `upload_media`) a workspace token that acts as
    an agent: pinned, or REST-registered with it (acting.py). Checked before the body is
    read; the body's `sender`, if any, is checked like any actor afterwards."""
    scope = await authenticate(request)
    if scope.is_admin:
        return scope
    if scope.agent_name or registered_name(request.app, scope):
        return scope
    raise unauthorized(
        "this needs the admin token, or a workspace token pinned to an agent or whose "
        "agent registered with POST /api/agents/register/"
    )


async def upload_base64(request: web.Request) -> web.Response:
    scope = await base64_scope(request)
    media = request.app[MEDIA]
    data = await read_json_object(request, media.max_size * 4 // 3 + BASE64_OVERHEAD_BYTES)
    if not scope.is_admin:
        await resolve_actor(request.app, scope, data.get("sender"), "sender")
    encoded = data.get("data")
    if not isinstance(encoded, str) or not encoded:
        raise bad_request("data must be a non-empty base64 string", "data")
    if encoded.startswith("data:") and "," in encoded:  # a data: URL from a browser
        encoded = encoded.split(",", 1)[1]
    if len(encoded) * 3 // 4 > media.max_size + 3:
        raise file_too_large(media.max_size)
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request("data is not valid base64", "data") from None
    if len(raw) > media.max_size:
        raise file_too_large(media.max_size)
    filename = safe_filename(opt_str(data, "filename", limit=1000))
    mime = mime_for(filename, opt_str(data, "mime_type", limit=200))
    stored = await media.save_bytes(
        raw,
        extension_for(filename, mime),
        workspace=scope.one_workspace,
        mime_type=mime,
        filename=filename,
    )
    return _answer(stored, mime, filename)


async def _media_scope(request: web.Request) -> Scope:
    token = request_token(request)
    if not token:
        raise unauthorized("media needs a token: ?token= or Authorization: Bearer <token>")
    scope = await scope_of_token(request.app, token, None)
    if scope is None:
        raise unauthorized("invalid token")
    return scope


def may_read(scope: Scope, meta: dict[str, Any] | None) -> bool:
    """A file is its workspace's; one without a sidecar is the admin's only."""
    if scope.is_admin:
        return True
    return meta is not None and meta.get("workspace") == scope.workspace


async def serve_media(request: web.Request) -> web.StreamResponse:
    scope = await _media_scope(request)  # before looking: no token learns what exists
    found = await request.app[MEDIA].find(request.match_info["month"], request.match_info["name"])
    if found is None or not may_read(scope, found[1]):
        raise not_found("no such file")
    path = found[0]
    mime = mimetypes.guess_type(path.name)[0] or DEFAULT_MIME
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
        "Cache-Control": "private, max-age=86400",
        "Vary": "Authorization",
        "Content-Type": mime,
    }
    if mime in _ACTIVE_TYPES:
        headers["Content-Disposition"] = f'attachment; filename="{path.name}"'
    return web.FileResponse(path, headers=headers)


def setup(app: web.Application) -> None:
    app.router.add_post("/api/upload", upload_multipart)
    app.router.add_post("/api/upload-base64", upload_base64)
    app.router.add_post("/api/upload-base64/", upload_base64)
    app.router.add_get("/media/{month}/{name}", serve_media)
