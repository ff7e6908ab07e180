"""Skill routes (docs/operations.md "Skills"): list and read with any token, write with the
admin token, propose with a workspace token (an agent), approve or reject with the admin.

Skills are files (gateway_http/skills_store.py), read and written in a thread. Every
route takes a trailing slash or not. A workspace token sees its own workspace; the
admin token the one of `?workspace=` (else `default`). Writes that need the admin
token answer 403 to a workspace token. `pending` is not a skill name (it names the
proposals' routes).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from scitex_orochi.protocol import skills as sk
from scitex_orochi.protocol.errors import ErrorCode

from .acting import forbidden, resolve_actor
from .auth import Scope, authenticate
from .bodies import read_json_object
from .errors import ApiError, bad_request, not_found
from .keys import CONFIG, STORE
from .skills_store import SkillExists, SkillLimit, SkillStore, store_for

RESERVED_NAMES = frozenset({"pending"})
BODY_MAX_BYTES = 2 * sk.MAX_FILE_BYTES + 4096  # JSON escaping may double the markdown
ADMIN_ONLY = "changing skills needs the admin token; an agent may propose one (.../propose)"


def _store(request: web.Request) -> SkillStore:
    return store_for(request.app[CONFIG].data_dir)


async def _admin(request: web.Request) -> Scope:
    scope = await authenticate(request)
    if not scope.is_admin:
        raise forbidden(ADMIN_ONLY)
    await _known_workspace(request, scope.one_workspace)
    return scope


async def _known_workspace(request: web.Request, workspace: str) -> None:
    if await asyncio.to_thread(request.app[STORE].get_workspace, workspace) is None:
        raise not_found(f"workspace {workspace!r} not found")


def _name(request: web.Request) -> str:
    name = request.match_info["name"]
    try:
        sk.check_name(name)
    except sk.SkillError as exc:
        raise bad_request(exc.detail, "name") from None
    if name in RESERVED_NAMES:
        raise bad_request(f"{name!r} is reserved and cannot name a skill", "name")
    return name


def _unknown(name: str, workspace: str, pending: bool = False) -> ApiError:
    what = "no pending proposal" if pending else "no skill"
    return not_found(f"{what} {name!r} in workspace {workspace!r}")


def skill_from_body(name: str, data: dict[str, Any]) -> sk.Skill:
    """`{markdown}` (a whole skill file) or `{description, arguments, body}`; a name in
    the body must be the route's."""
    try:
        if "markdown" in data:
            markdown = data["markdown"]
            if not isinstance(markdown, str):
                raise sk.SkillError("markdown must be a string", "markdown")
            skill = sk.parse_markdown(markdown)
            if skill.name != name:
                raise sk.SkillError(
                    f"the file names {skill.name!r} but the route names {name!r}", "markdown"
                )
            return skill
        unknown = set(data) - {"name", "description", "arguments", "body"}
        if unknown:
            raise sk.SkillError(f"unknown fields {sorted(unknown)}", sorted(unknown)[0])
        if data.get("name", name) != name:
            raise sk.SkillError(f"name must be the route's ({name!r})", "name")
        return sk.make_skill(name, data.get("description"), data.get("arguments"), data.get("body"))
    except sk.SkillError as exc:
        raise bad_request(exc.detail, exc.field) from None


def _view(skill: sk.Skill, body: bool = True) -> dict[str, Any]:
    out = skill.to_dict(body)
    if body:
        out["markdown"] = skill.markdown()
    return out


async def list_skills(request: web.Request) -> web.Response:
    scope = await authenticate(request)
    workspace = scope.one_workspace
    found = await asyncio.to_thread(_store(request).skills, workspace)
    return web.json_response(
        {"workspace": workspace, "skills": [_view(s, body=False) for s in found]}
    )


async def get_skill(request: web.Request) -> web.Response:
    scope = await authenticate(request)
    name, workspace = _name(request), scope.one_workspace
    skill = await asyncio.to_thread(_store(request).get, workspace, name)
    if skill is None:
        raise _unknown(name, workspace)
    return web.json_response({"workspace": workspace, **_view(skill)})


async def _write(request: web.Request, create_only: bool) -> web.Response:
    scope = await _admin(request)
    name, workspace = _name(request), scope.one_workspace
    skill = skill_from_body(name, await read_json_object(request, BODY_MAX_BYTES))
    try:
        created = await asyncio.to_thread(_store(request).put, workspace, skill, create_only)
    except SkillExists:
        raise ApiError(
            ErrorCode.CONFLICT, f"skill {name!r} exists: PUT replaces it", field="name"
        ) from None
    except SkillLimit as exc:
        raise ApiError(ErrorCode.LIMIT_EXCEEDED, str(exc), field="name") from None
    return web.json_response(
        {"status": "created" if created else "updated", "workspace": workspace, **_view(skill)},
        status=201 if created else 200,
    )


async def put_skill(request: web.Request) -> web.Response:
    """Create or replace: 201 when new, 200 when replaced."""
    return await _write(request, create_only=False)


async def post_skill(request: web.Request) -> web.Response:
    """Create only: 409 when the name is taken."""
    return await _write(request, create_only=True)


async def delete_skill(request: web.Request) -> web.Response:
    scope = await _admin(request)
    name, workspace = _name(request), scope.one_workspace
    if not await asyncio.to_thread(_store(request).delete, workspace, name):
        raise _unknown(name, workspace)
    return web.json_response({"status": "ok", "deleted": name, "workspace": workspace})


async def propose_skill(request: web.Request) -> web.Response:
    """Any token: `{markdown}` or `{description, arguments, body}`, plus `proposer?` (who
    acts, gateway_http/acting.py: a workspace token as one of its agents) → 202 pending."""
    scope = await authenticate(request)
    name, workspace = _name(request), scope.one_workspace
    data = await read_json_object(request, BODY_MAX_BYTES)
    proposer = data.pop("proposer", None)
    actor = await resolve_actor(request.app, scope, proposer, "proposer")
    skill = skill_from_body(name, data)
    try:
        proposal = await asyncio.to_thread(_store(request).propose, workspace, skill, actor.name)
    except SkillLimit as exc:
        raise ApiError(ErrorCode.LIMIT_EXCEEDED, str(exc), field="name") from None
    return web.json_response(
        {"status": "pending", "workspace": workspace, **_view(proposal)}, status=202
    )


async def list_pending(request: web.Request) -> web.Response:
    scope = await _admin(request)
    workspace = scope.one_workspace
    found = await asyncio.to_thread(_store(request).pending, workspace)
    return web.json_response({"workspace": workspace, "pending": [_view(s) for s in found]})


async def approve(request: web.Request) -> web.Response:
    scope = await _admin(request)
    name, workspace = _name(request), scope.one_workspace
    try:
        skill = await asyncio.to_thread(_store(request).approve, workspace, name)
    except SkillLimit as exc:
        raise ApiError(ErrorCode.LIMIT_EXCEEDED, str(exc), field="name") from None
    if skill is None:
        raise _unknown(name, workspace, pending=True)
    return web.json_response({"status": "approved", "workspace": workspace, **_view(skill)})


async def reject(request: web.Request) -> web.Response:
    scope = await _admin(request)
    name, workspace = _name(request), scope.one_workspace
    if not await asyncio.to_thread(_store(request).reject, workspace, name):
        raise _unknown(name, workspace, pending=True)
    return web.json_response({"status": "rejected", "name": name, "workspace": workspace})


def setup(app: web.Application) -> None:
    router = app.router
    for slash in ("", "/"):
        # The proposals' routes first: `pending` would otherwise match {name}.
        router.add_get(f"/api/skills/pending{slash}", list_pending)
        router.add_post(f"/api/skills/pending/{{name}}/approve{slash}", approve)
        router.add_post(f"/api/skills/pending/{{name}}/reject{slash}", reject)
        router.add_get(f"/api/skills{slash}", list_skills)
        router.add_post(f"/api/skills/{{name}}/propose{slash}", propose_skill)
        router.add_get(f"/api/skills/{{name}}{slash}", get_skill)
        router.add_put(f"/api/skills/{{name}}{slash}", put_skill)
        router.add_post(f"/api/skills/{{name}}{slash}", post_skill)
        router.add_delete(f"/api/skills/{{name}}{slash}", delete_skill)
