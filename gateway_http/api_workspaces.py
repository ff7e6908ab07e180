"""Workspaces, their tokens and invites; redeeming an invite.

Management needs the admin token. A workspace token may read its own
workspace (never its tokens or invites). Writes go through a writable Store
held by this gateway: low-volume admin data, not messages (the persister stays
the single writer of messages).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from scitex_orochi import codec
from scitex_orochi.store import Conflict, InviteError, NotFound

from .auth import authenticate, forget_tokens, require_admin, require_workspace_access
from .bodies import ADMIN_BODY_MAX_BYTES, read_json_object
from .errors import ApiError, bad_request, not_found, opt_int, opt_str
from .keys import HUB
from .posting import normalize_channel

MAX_WORKSPACE_CHANNELS = 100


async def _body(request: web.Request, optional: bool = False) -> dict[str, Any]:
    if optional and not request.can_read_body:
        return {}
    return await read_json_object(request, ADMIN_BODY_MAX_BYTES)


async def _existing(request: web.Request, workspace_id: str) -> dict[str, Any]:
    hub = request.app[HUB]
    ws = await hub.run_blocking(hub.store.get_workspace, workspace_id)
    if ws is None:
        raise not_found(f"workspace {workspace_id!r} not found")
    return ws


def _channels(data: dict[str, Any]) -> list[str] | None:
    value = data.get("channels")
    if value is None:
        return None
    if isinstance(value, str):
        value = [c for c in value.split(",") if c.strip()]
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise bad_request("channels must be a list of strings", "channels")
    if len(value) > MAX_WORKSPACE_CHANNELS:
        raise bad_request(f"at most {MAX_WORKSPACE_CHANNELS} channels", "channels")
    try:
        return list(dict.fromkeys(codec.check_channel_name(normalize_channel(c.strip()))
                                  for c in value))
    except codec.ProtocolError as exc:
        raise bad_request(exc.detail, "channels") from None


# ---- workspaces ------------------------------------------------------------------
async def list_workspaces(request: web.Request) -> web.Response:
    scope = await authenticate(request)
    hub = request.app[HUB]
    rows = await hub.run_blocking(hub.store.list_workspaces)
    if not scope.is_admin:
        rows = [r for r in rows if r["id"] == scope.workspace]
    return web.json_response({"workspaces": rows})


async def create_workspace(request: web.Request) -> web.Response:
    await require_admin(request)
    hub = request.app[HUB]
    data = await _body(request)
    name = opt_str(data, "name", limit=200)
    if not name or not name.strip():
        raise bad_request("name is required", "name")
    channels = _channels(data)
    try:
        ws, token = await hub.run_blocking(hub.admin_store.create_workspace, name, channels)
    except Conflict as exc:
        raise ApiError(409, str(exc)) from None
    return web.json_response({**ws, "workspace": ws, "token": token}, status=201)


async def get_workspace(request: web.Request) -> web.Response:
    scope = await authenticate(request)
    workspace_id = request.match_info["id"]
    require_workspace_access(scope, workspace_id)
    return web.json_response(await _existing(request, workspace_id))


async def delete_workspace(request: web.Request) -> web.Response:
    await require_admin(request)
    hub = request.app[HUB]
    workspace_id = request.match_info["id"]
    try:
        deleted = await hub.run_blocking(hub.admin_store.delete_workspace, workspace_id)
    except Conflict as exc:
        raise ApiError(409, str(exc)) from None
    if not deleted:
        raise not_found(f"workspace {workspace_id!r} not found")
    forget_tokens(request.app)
    return web.json_response({"status": "ok", "deleted": workspace_id})


# ---- tokens ----------------------------------------------------------------------
async def list_tokens(request: web.Request) -> web.Response:
    await require_admin(request)
    hub = request.app[HUB]
    workspace_id = request.match_info["id"]
    await _existing(request, workspace_id)
    rows = await hub.run_blocking(hub.store.list_tokens, workspace_id)
    return web.json_response({"tokens": rows})


async def create_token(request: web.Request) -> web.Response:
    await require_admin(request)
    hub = request.app[HUB]
    workspace_id = request.match_info["id"]
    data = await _body(request, optional=True)
    label = opt_str(data, "label", limit=200) or ""
    try:
        row = await hub.run_blocking(hub.admin_store.create_token, workspace_id, label)
    except NotFound as exc:
        raise not_found(str(exc)) from None
    return web.json_response(row, status=201)


async def delete_token(request: web.Request) -> web.Response:
    await require_admin(request)
    hub = request.app[HUB]
    workspace_id, token = request.match_info["id"], request.match_info["token"]
    if not await hub.run_blocking(hub.admin_store.delete_token, workspace_id, token):
        raise not_found("no such token in this workspace")
    forget_tokens(request.app)
    return web.json_response({"status": "ok", "deleted": token})


# ---- invites ---------------------------------------------------------------------
async def list_invites(request: web.Request) -> web.Response:
    await require_admin(request)
    hub = request.app[HUB]
    workspace_id = request.match_info["id"]
    await _existing(request, workspace_id)
    rows = await hub.run_blocking(hub.store.list_invites, workspace_id)
    return web.json_response({"invites": rows})


async def create_invite(request: web.Request) -> web.Response:
    await require_admin(request)
    hub = request.app[HUB]
    workspace_id = request.match_info["id"]
    data = await _body(request, optional=True)
    max_uses = opt_int(data, "max_uses", lo=1, hi=1_000_000) or 1
    expires = data.get("expires_in_s")
    if expires is not None and (isinstance(expires, bool)
                                or not isinstance(expires, int | float) or expires <= 0):
        raise bad_request("expires_in_s must be a number > 0", "expires_in_s")
    try:
        row = await hub.run_blocking(hub.admin_store.create_invite, workspace_id, max_uses,
                                     expires)
    except NotFound as exc:
        raise not_found(str(exc)) from None
    return web.json_response(row, status=201)


async def delete_invite(request: web.Request) -> web.Response:
    await require_admin(request)
    hub = request.app[HUB]
    workspace_id, token = request.match_info["id"], request.match_info["token"]
    if not await hub.run_blocking(hub.admin_store.delete_invite, workspace_id, token):
        raise not_found("no such invite in this workspace")
    return web.json_response({"status": "ok", "deleted": token})


async def redeem_invite(request: web.Request) -> web.Response:
    """The invite is the credential: no token needed. Answers a new workspace token."""
    hub = request.app[HUB]
    data = await _body(request)
    code = opt_str(data, "invite", limit=200) or opt_str(data, "token", limit=200)
    if not code:
        raise bad_request("invite is required (the inv_... code)", "invite")
    label = opt_str(data, "label", limit=200) or "invite"
    try:
        workspace_id, token = await hub.run_blocking(hub.admin_store.redeem_invite, code, label)
    except InviteError as exc:
        status = 404 if "unknown" in str(exc) else 410
        raise ApiError(status, str(exc)) from None
    ws = await hub.run_blocking(hub.store.get_workspace, workspace_id)
    return web.json_response({"status": "ok", "workspace_id": workspace_id,
                              "workspace": ws, "token": token}, status=201)


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/workspaces", list_workspaces)
    r.add_post("/api/workspaces", create_workspace)
    r.add_get("/api/workspaces/{id}", get_workspace)
    r.add_delete("/api/workspaces/{id}", delete_workspace)
    r.add_get("/api/workspaces/{id}/tokens", list_tokens)
    r.add_post("/api/workspaces/{id}/tokens", create_token)
    r.add_delete("/api/workspaces/{id}/tokens/{token}", delete_token)
    r.add_get("/api/workspaces/{id}/invites", list_invites)
    r.add_post("/api/workspaces/{id}/invites", create_invite)
    r.add_delete("/api/workspaces/{id}/invites/{token}", delete_invite)
    r.add_post("/api/invites/redeem", redeem_invite)
