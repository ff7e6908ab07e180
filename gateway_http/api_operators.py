"""Operator actions on agents (admin token): kick a live agent, forget one, purge the dead.

- `POST /api/agents/<name>/kick`: every socket holding the name is closed with 4005
  (`ctl.kick|` to every agent gateway); it leaves presence as any closed agent does.
  A client that reconnects by itself comes back: kick, then revoke its token to keep
  it out.
- `DELETE /api/agents/<name>`: the agent's lasting registry entry goes (written by the
  persister, so the answer comes once it is on disk) and it leaves the recently
  disconnected list; an online agent is listed again by its next heartbeat.
- `POST /api/agents/purge-stale` (the published route): forget every agent that is not
  online and was last seen longer ago than `SCITEX_OROCHI_REAP_AFTER_S` (`?older_than_s=`
  to choose), answering the names.
A workspace token gets 403 for each.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from scitex_orochi.protocol import codec

from .acting import forbidden
from .auth import Scope, authenticate
from .errors import ApiError, bad_request
from .keys import BUS, CONFIG, PRESENCE, STORE
from .posting import item_envelope, post_item
from .routes import add_both

MAX_OLDER_THAN_S = 10 * 365 * 86400.0


async def _admin(request: web.Request) -> Scope:
    scope = await authenticate(request)
    if not scope.is_admin:
        raise forbidden("operator actions on agents need the admin token")
    return scope


def _name(request: web.Request) -> str:
    try:
        return codec.check_name(request.match_info["name"], "name", agent=False)
    except codec.ProtocolError as exc:
        raise bad_request(exc.detail, "name") from None


async def _forget(request: web.Request, scope: Scope, names: list[str]) -> int:
    if not names:
        return 0
    envelope = item_envelope("forget", "operator", {"names": names})
    ack = await post_item(request.app, scope.one_workspace, envelope, admin=True)
    request.app[BUS].forget_gone(scope.one_workspace, set(names))
    return int(ack.get("count") or 0)


async def kick(request: web.Request) -> web.Response:
    scope = await _admin(request)
    name = _name(request)
    workspace = scope.one_workspace
    await request.app[BUS].caught_up()
    online = request.app[PRESENCE].get(workspace, name) is not None
    await request.app[BUS].publish_kick(workspace, [name])
    return web.json_response({"status": "ok", "kicked": name, "was_online": online})


async def forget(request: web.Request) -> web.Response:
    scope = await _admin(request)
    name = _name(request)
    count = await _forget(request, scope, [name])
    return web.json_response({"status": "ok", "forgotten": name, "count": count})


async def purge_stale(request: web.Request) -> web.Response:
    scope = await _admin(request)
    cfg = request.app[CONFIG]
    raw = request.query.get("older_than_s")
    try:
        older = float(raw) if raw is not None else cfg.presence.reap_after_s
    except ValueError:
        raise bad_request("older_than_s must be a number of seconds", "older_than_s") from None
    if not 0 <= older <= MAX_OLDER_THAN_S:
        raise bad_request(f"older_than_s is 0..{MAX_OLDER_THAN_S:.0f}", "older_than_s")
    workspace, now = scope.one_workspace, time.time()
    await request.app[BUS].caught_up()
    replica = request.app[PRESENCE]
    rows = await asyncio.to_thread(request.app[STORE].registry, workspace)
    stale = {
        r["name"]
        for r in rows
        if replica.get(workspace, r["name"]) is None and now - r["last_seen"] > older
    }
    stale.update(
        str(r.get("name"))
        for r in request.app[BUS].gone_records(workspace, now)
        if now - float(r.get("last_seen") or r.get("disconnected_at") or now) > older
        and replica.get(workspace, str(r.get("name"))) is None
    )
    names = sorted(stale)
    try:
        count = await _forget(request, scope, names)
    except ApiError:
        raise
    return web.json_response({"status": "ok", "purged": names, "count": count})


def setup(app: web.Application) -> None:
    add_both(app, "POST", "/api/agents/purge-stale", purge_stale)
    add_both(app, "POST", "/api/agents/{name}/kick", kick)
    add_both(app, "DELETE", "/api/agents/{name}", forget)
