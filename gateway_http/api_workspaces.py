"""Workspaces, their tokens and invites; redeeming an invite.

Management needs the admin token. A workspace token may read its own
workspace (never its tokens or invites). Writes go through a writable Store
held by this gateway: low-volume admin data, not messages (the persister stays
the single writer of messages). The store's refusals (`WorkspaceNotFound`,
`Conflict`, `UnknownInvite`, `InviteGone`) are answered as they are, each with
the status of its code.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from scitex_orochi.protocol import codec

from .auth import authenticate, forget_tokens, require_admin, require_workspace_access
from .bodies import ADMIN_BODY_MAX_BYTES, read_json_object
from .errors import bad_request, not_found, opt_int, opt_str
from .keys import ADMIN_STORE, BUS, STORE
from .posting import normalize_channel

MAX_WORKSPACE_CHANNELS = 100
MAX_GITEA_GRANTS = 100


async def _body(request: web.Request, optional: bool = False) -> dict[str, Any]:
    if optional and not request.can_read_body:
        return {}
    return await read_json_object(request, ADMIN_BODY_MAX_BYTES)


async def _existing(request: web.Request, workspace_id: str) -> dict[str, Any]:
    workspace = await asyncio.to_thread(request.app[STORE].get_workspace, workspace_id)
    if workspace is None:
        raise not_found(f"workspace {workspace_id!r} not found")
    return workspace


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
        return list(
            dict.fromkeys(codec.check_channel_name(normalize_channel(c.strip())) for c in value)
        )
    except codec.ProtocolError as exc:
        raise bad_request(exc.detail, "channels") from None


# ---- workspaces ------------------------------------------------------------------
async def list_workspaces(request: web.Request) -> web.Response:
    scope = await authenticate(request)
    rows = await asyncio.to_thread(request.app[STORE].list_workspaces)
    if not scope.is_admin:
        rows = [r for r in rows if r["id"] == scope.workspace]
    return web.json_response({"workspaces": rows})


async def create_workspace(request: web.Request) -> web.Response:
    await require_admin(request)
    data = await _body(request)
    name = opt_str(data, "name", limit=200)
    if not name or not name.strip():
        raise bad_request("name is required", "name")
    channels = _channels(data)
    workspace, token = await asyncio.to_thread(
        request.app[ADMIN_STORE].create_workspace, name, channels
    )
    return web.json_response({**workspace, "workspace": workspace, "token": token}, status=201)


async def get_workspace(request: web.Request) -> web.Response:
    scope = await authenticate(request)
    workspace_id = request.match_info["id"]
    require_workspace_access(scope, workspace_id)
    return web.json_response(await _existing(request, workspace_id))


async def delete_workspace(request: web.Request) -> web.Response:
    await require_admin(request)
    workspace_id = request.match_info["id"]
    deleted = await asyncio.to_thread(request.app[ADMIN_STORE].delete_workspace, workspace_id)
    if not deleted:
        raise not_found(f"workspace {workspace_id!r} not found")
    forget_tokens(request.app)
    request.app[BUS].publish_revocation(set(), {workspace_id})
    return web.json_response({"status": "ok", "deleted": workspace_id})


# ---- tokens ----------------------------------------------------------------------
async def list_tokens(request: web.Request) -> web.Response:
    await require_admin(request)
    workspace_id = request.match_info["id"]
    await _existing(request, workspace_id)
    rows = await asyncio.to_thread(request.app[STORE].list_tokens, workspace_id)
    return web.json_response({"tokens": rows})


async def create_token(request: web.Request) -> web.Response:
    """A new workspace token; `agent_name` pins it to that agent name (only it may
    register with the token, and no other token may take the name)."""
    await require_admin(request)
    workspace_id = request.match_info["id"]
    data = await _body(request, optional=True)
    label = opt_str(data, "label", limit=200) or ""
    agent_name = data.get("agent_name")
    if agent_name is not None:
        try:
            agent_name = codec.check_name(agent_name, "agent_name")
        except codec.ProtocolError as exc:
            raise bad_request(exc.detail, "agent_name") from None
    row = await asyncio.to_thread(
        request.app[ADMIN_STORE].create_token, workspace_id, label, agent_name
    )
    if agent_name is not None:  # the name is taken now: gateways must look again
        await request.app[BUS].publish_policy_change(workspace_id)
    return web.json_response(row, status=201)


def _gitea_grant(data: dict[str, Any]) -> dict[str, list[str]]:
    grant: dict[str, list[str]] = {}
    for key, shape in (("owners", "an owner or organisation name"), ("repos", "'owner/repo'")):
        value = data.get(key, [])
        if (
            not isinstance(value, list)
            or len(value) > MAX_GITEA_GRANTS
            or not all(isinstance(v, str) and 0 < len(v) <= 200 for v in value)
        ):
            raise bad_request(
                f"{key} must be a list of at most {MAX_GITEA_GRANTS} strings ({shape} each)", key
            )
        if key == "repos" and any(v.count("/") != 1 for v in value):
            raise bad_request("repos entries are 'owner/repo'", key)
        grant[key] = sorted(set(value))
    if not grant["owners"] and not grant["repos"]:
        raise bad_request("give owners or repos (DELETE revokes the grant)", "owners")
    return grant


async def update_workspace(request: web.Request) -> web.Response:
    """`PATCH /api/workspaces/{id}` `{"require_pinned": bool}`: a workspace that requires
    pinned tokens lets only tokens pinned to an agent name register."""
    await require_admin(request)
    data = await _body(request)
    value = data.get("require_pinned")
    if not isinstance(value, bool):
        raise bad_request("require_pinned must be true or false", "require_pinned")
    workspace = await asyncio.to_thread(
        request.app[ADMIN_STORE].set_workspace_policy,
        request.match_info["id"],
        require_pinned=value,
    )
    await request.app[BUS].publish_policy_change(workspace["id"])
    return web.json_response(workspace)


async def set_gitea_access(request: web.Request) -> web.Response:
    """`PUT /api/workspaces/{id}/gitea` `{"owners": [...], "repos": ["o/r"]}`: the
    workspace's agents may then use Gitea on those owners and repos; DELETE revokes."""
    await require_admin(request)
    grant = None if request.method == "DELETE" else _gitea_grant(await _body(request))
    workspace = await asyncio.to_thread(
        request.app[ADMIN_STORE].set_workspace_policy, request.match_info["id"], gitea_access=grant
    )
    await request.app[BUS].publish_policy_change(workspace["id"])
    return web.json_response(workspace)


async def delete_token(request: web.Request) -> web.Response:
    await require_admin(request)
    workspace_id, token = request.match_info["id"], request.match_info["token"]
    if not await asyncio.to_thread(request.app[ADMIN_STORE].delete_token, workspace_id, token):
        raise not_found("no such token in this workspace")
    forget_tokens(request.app)
    request.app[BUS].publish_revocation({token}, set())
    return web.json_response({"status": "ok", "deleted": token})


# ---- invites ---------------------------------------------------------------------
async def list_invites(request: web.Request) -> web.Response:
    await require_admin(request)
    workspace_id = request.match_info["id"]
    await _existing(request, workspace_id)
    rows = await asyncio.to_thread(request.app[STORE].list_invites, workspace_id)
    return web.json_response({"invites": [with_code(row) for row in rows]})


async def create_invite(request: web.Request) -> web.Response:
    await require_admin(request)
    workspace_id = request.match_info["id"]
    data = await _body(request, optional=True)
    max_uses = opt_int(data, "max_uses", lo=1, hi=1_000_000) or 1
    expires = data.get("expires_in_s")
    if expires is not None and (
        isinstance(expires, bool) or not isinstance(expires, int | float) or expires <= 0
    ):
        raise bad_request("expires_in_s must be a number > 0", "expires_in_s")
    row = await asyncio.to_thread(
        request.app[ADMIN_STORE].create_invite, workspace_id, max_uses, expires
    )
    return web.json_response(with_code(row), status=201)


def with_code(row: dict[str, Any]) -> dict[str, Any]:
    """An invite row with `code` beside `token` (the 0.13+ CLI's `invite create` reads it)."""
    return {**row, "code": row.get("token")}


async def delete_invite(request: web.Request) -> web.Response:
    await require_admin(request)
    workspace_id, token = request.match_info["id"], request.match_info["token"]
    if not await asyncio.to_thread(request.app[ADMIN_STORE].delete_invite, workspace_id, token):
        raise not_found("no such invite in this workspace")
    return web.json_response({"status": "ok", "deleted": token})


async def redeem_invite(request: web.Request) -> web.Response:
    """The invite is the credential: no token needed. Answers a new workspace token."""
    data = await _body(request)
    code = opt_str(data, "invite", limit=200) or opt_str(data, "token", limit=200)
    if not code:
        raise bad_request("invite is required (the inv_... code)", "invite")
    label = opt_str(data, "label", limit=200) or "invite"
    workspace_id, token = await asyncio.to_thread(
        request.app[ADMIN_STORE].redeem_invite, code, label
    )
    workspace = await asyncio.to_thread(request.app[STORE].get_workspace, workspace_id)
    return web.json_response(
        {"status": "ok", "workspace_id": workspace_id, "workspace": workspace, "token": token},
        status=201,
    )


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/workspaces", list_workspaces)
    r.add_post("/api/workspaces", create_workspace)
    r.add_get("/api/workspaces/{id}", get_workspace)
    r.add_delete("/api/workspaces/{id}", delete_workspace)
    r.add_patch("/api/workspaces/{id}", update_workspace)
    r.add_put("/api/workspaces/{id}/gitea", set_gitea_access)
    r.add_delete("/api/workspaces/{id}/gitea", set_gitea_access)
    r.add_get("/api/workspaces/{id}/tokens", list_tokens)
    r.add_post("/api/workspaces/{id}/tokens", create_token)
    r.add_delete("/api/workspaces/{id}/tokens/{token}", delete_token)
    r.add_get("/api/workspaces/{id}/invites", list_invites)
    r.add_post("/api/workspaces/{id}/invites", create_invite)
    r.add_delete("/api/workspaces/{id}/invites/{token}", delete_invite)
    r.add_post("/api/invites/redeem", redeem_invite)
