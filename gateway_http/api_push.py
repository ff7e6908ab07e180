"""Web push routes: the hub's VAPID public key and people's push subscriptions.

- `GET /api/push/vapid-public-key` (any token): `{"public_key": <base64url>}`, the
  `applicationServerKey` a browser subscribes with. The key pair is made at start
  (`supervise.prepare`) in the data dir; a gateway started without it makes it at first
  use (`webpush.load_or_create`, atomic: every process reads the one key).
- `POST /api/push/subscriptions` (admin token): a browser's PushSubscription JSON
  `{endpoint, keys: {p256dh, auth}}` plus `person`, the person it notifies (the
  dashboard sends the name it posts as). Subscriptions are a person's: the admin token
  acts as any person, and must name one (400 without `person`: a plain admin token is
  nobody to notify); a workspace token never acts as a person (403). The endpoint is
  an https:// URL (or http://127.0.0.1 / [::1], a local push service); p256dh is
  the base64url of a 65-byte P-256 point, auth of 16 bytes. At most
  `store_push.MAX_PER_PERSON` per person and workspace (400 LIMIT_EXCEEDED).
- `DELETE /api/push/subscriptions` (admin token): `{endpoint}`, in the token's workspace.
- `GET /api/push/subscriptions?person=` (admin token): that person's endpoints.
Writes are `push` in-items the persister applies and acks (the answer comes once it is on
disk). With `SCITEX_OROCHI_PUSH_ENABLED` off every route answers 404 (no worker sends).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from py_vapid import Vapid

from scitex_orochi.hub import store_push, webpush

from .acting import forbidden
from .auth import Scope, authenticate
from .bodies import read_json_object
from .errors import bad_request, not_found
from .keys import CONFIG, STORE
from .posting import check_sender, post_item
from .routes import add_both

BODY_MAX_BYTES = 8 * 1024
ENDPOINT_MAX_CHARS = 2048  # the column's size (persister/rows.PUSH_ENDPOINT_MAX)
KEY_MAX_CHARS = 255
P256DH_BYTES = 65  # an uncompressed P-256 point
AUTH_BYTES = 16
LOCAL_HOSTS = ("127.0.0.1", "::1")
_B64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")


class KeyHolder:
    """The VAPID key, read at first use (the app's state is frozen once it runs)."""

    key: Vapid | None = None


VAPID_KEY = web.AppKey("vapid_key", KeyHolder)


# ---- pure: the edge's checks ------------------------------------------------------------
def check_endpoint(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise bad_request("endpoint must be the push service's URL", "endpoint")
    if len(value) > ENDPOINT_MAX_CHARS:
        raise bad_request(f"endpoint is at most {ENDPOINT_MAX_CHARS} characters", "endpoint")
    try:
        url = urlsplit(value)
        host = url.hostname
        _ = url.port  # raises for a bad port
    except ValueError:
        raise bad_request("endpoint is not a URL", "endpoint") from None
    if any(c.isspace() for c in value) or not host:
        raise bad_request("endpoint is not a URL", "endpoint")
    if url.scheme == "https" or (url.scheme == "http" and host in LOCAL_HOSTS):
        return value
    raise bad_request(
        "endpoint must be an https:// URL (or http://127.0.0.1, a local push service)",
        "endpoint",
    )


def check_key(value: object, field: str, size: int) -> str:
    """A base64url key of `size` decoded bytes (padding optional), as the browser gave it."""
    if (
        not isinstance(value, str)
        or not 0 < len(value) <= KEY_MAX_CHARS
        or not _B64URL.match(value)
    ):
        raise bad_request(f"{field} must be base64url text", field)
    try:
        raw = base64.urlsafe_b64decode(value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4))
    except (binascii.Error, ValueError):
        raise bad_request(f"{field} must be base64url text", field) from None
    if len(raw) != size:
        raise bad_request(f"{field} must decode to {size} bytes, not {len(raw)}", field)
    if field.endswith("p256dh") and raw[0] != 4:
        raise bad_request(f"{field} must be an uncompressed P-256 point", field)
    return value


def parse_subscription(data: dict[str, Any]) -> tuple[str, str, str]:
    """(endpoint, p256dh, auth) of a PushSubscription JSON; 400 naming the bad field."""
    endpoint = check_endpoint(data.get("endpoint"))
    keys = data.get("keys")
    if not isinstance(keys, dict):
        raise bad_request("keys must be an object {p256dh, auth}", "keys")
    p256dh = check_key(keys.get("p256dh"), "keys.p256dh", P256DH_BYTES)
    auth = check_key(keys.get("auth"), "keys.auth", AUTH_BYTES)
    return endpoint, p256dh, auth


def check_person(value: object) -> str:
    if value in (None, ""):
        raise bad_request(
            "name the person this subscription notifies (person): the admin token alone "
            "is nobody to notify",
            "person",
        )
    return check_sender(value, "person")


# ---- the routes -------------------------------------------------------------------------
def _enabled(request: web.Request) -> None:
    if not request.app[CONFIG].push.enabled:
        raise not_found("web push is off: the hub runs with SCITEX_OROCHI_PUSH_ENABLED=true")


async def _admin(request: web.Request) -> Scope:
    scope = await authenticate(request)
    _enabled(request)
    if not scope.is_admin:
        raise forbidden("push subscriptions are people's: they need the admin token")
    return scope


async def vapid_key(app: web.Application) -> Vapid:
    holder = app[VAPID_KEY]
    if holder.key is None:
        holder.key = await asyncio.to_thread(webpush.load_or_create, app[CONFIG].data_dir)
    return holder.key


async def public_key(request: web.Request) -> web.Response:
    await authenticate(request)
    _enabled(request)
    key = await vapid_key(request.app)
    return web.json_response({"public_key": webpush.public_key_b64(key)})


async def _submit(request: web.Request, scope: Scope, envelope: dict[str, Any]) -> str:
    ack = await post_item(request.app, scope.one_workspace, envelope, admin=True)
    return str(ack.get("outcome") or "")


async def subscribe(request: web.Request) -> web.Response:
    scope = await _admin(request)
    data = await read_json_object(request, BODY_MAX_BYTES)
    endpoint, p256dh, auth = parse_subscription(data)
    person = check_person(data.get("person"))
    envelope = store_push.envelope(store_push.ADD, endpoint, person, p256dh, auth)
    outcome = await _submit(request, scope, envelope)
    return web.json_response(
        {
            "status": "ok",
            "outcome": outcome,
            "person": person,
            "workspace": scope.one_workspace,
            "endpoint": endpoint,
        },
        status=201 if outcome == "added" else 200,
    )


async def unsubscribe(request: web.Request) -> web.Response:
    scope = await _admin(request)
    data = await read_json_object(request, BODY_MAX_BYTES)
    endpoint = check_endpoint(data.get("endpoint"))
    outcome = await _submit(request, scope, store_push.envelope(store_push.REMOVE, endpoint))
    return web.json_response(
        {"status": "ok", "removed": outcome == "removed", "endpoint": endpoint},
    )


async def subscriptions(request: web.Request) -> web.Response:
    scope = await _admin(request)
    person = check_person(request.query.get("person"))
    rows = await asyncio.to_thread(
        store_push.of_person, request.app[STORE].engine, scope.one_workspace, person
    )
    return web.json_response(
        {"person": person, "workspace": scope.one_workspace, "subscriptions": rows}
    )


def setup(app: web.Application) -> None:
    app[VAPID_KEY] = KeyHolder()
    add_both(app, "GET", "/api/push/vapid-public-key", public_key)
    add_both(app, "GET", "/api/push/subscriptions", subscriptions)
    add_both(app, "POST", "/api/push/subscriptions", subscribe)
    add_both(app, "DELETE", "/api/push/subscriptions", unsubscribe)
