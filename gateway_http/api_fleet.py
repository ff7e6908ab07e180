"""The fleet's REST routes (dialect B, docs/fleet.md §5) on the dashboard port.

The sidecar derives its REST base from its WebSocket URL, so these answer on the same
host:port as `/ws/agent/`; each takes its trailing slash or not, except where the
slashless path is dialect A's (`/api/channels`, `/api/messages`: those keep their A
answers). Tokens as elsewhere (`?token=` or `Authorization: Bearer`), but
`POST /api/agents/register/` carries its token in the body. Writes that act as an
agent follow acting.py (a workspace token writes only as a name connected in its
workspace or pinned to it); what only memory can keep is in fleet_state.py.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import sqlalchemy as sa
from aiohttp import web

from scitex_orochi.hub.store import HISTORY_MAX_LIMIT, parse_iso_epoch
from scitex_orochi.hub.tables import subscriptions
from scitex_orochi.protocol import codec
from scitex_orochi.protocol import conversations as conv
from scitex_orochi.protocol.channels import is_internal
from scitex_orochi.protocol.constants import new_id, now_iso
from scitex_orochi.protocol.errors import ErrorCode

from .acting import forbidden, registered_name, resolve_actor, resolve_viewer
from .api_messages import channel_members as online_members
from .auth import Scope, authenticate, request_token, require_workspace_access, scope_of_token
from .bodies import ADMIN_BODY_MAX_BYTES, read_json_object
from .errors import ApiError, bad_request, opt_str, unauthorized
from .fleet_state import FLEET_STATE, FleetState, Registration
from .keys import BUS, CONFIG, PRESENCE, STORE
from .posting import build_envelope, item_envelope, normalize_channel, post_envelope, post_item
from .routes import add_both

PROFILE_FIELDS = ("agent_id", "role", "machine", "hostname", "multiplexer", "model", "project")
MAX_METRICS = 100
MAX_HEALTH_UPDATES = 500
EXPORT_MAX_ROWS = 5000  # a longer channel is cut here, with a note saying so
EXPORT_SCAN_MAX_ROWS = 100_000
EXPORT_FORMATS = ("txt", "json", "md")


def _channel(value: object, field: str = "channel") -> str:
    """A channel a B client names: `#` added to a bare name unless it is a `dm:`."""
    if not isinstance(value, str) or not value.strip():
        raise bad_request(f"{field} is required", field)
    value = value.strip()
    if not conv.is_dm(value):
        value = normalize_channel(value)
    try:
        return codec.check_channel_name(value)
    except codec.ProtocolError as exc:
        raise bad_request(exc.detail, field) from None


def _workspace(request: web.Request, scope: Scope) -> Scope:
    slug = request.match_info["slug"]
    require_workspace_access(scope, slug)
    return Scope(scope.token, scope.is_admin, slug, scope.agent_name)


# ---- POST /api/agents/register/ --------------------------------------------------------
async def register_agent(request: web.Request) -> web.Response:
    """The sidecar's REST registration: `token` in the body (or the usual places)."""
    data = await read_json_object(request, ADMIN_BODY_MAX_BYTES)
    token = data.get("token")
    if token is not None and not isinstance(token, str):
        raise bad_request("token must be a string", "token")
    scope = await scope_of_token(
        request.app, token or request_token(request), request.query.get("workspace")
    )
    if scope is None:
        raise unauthorized("missing or invalid token (the sidecar sends it in the body)")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise bad_request("name is required", "name")
    try:
        name = codec.check_name(name.strip(), "name", agent=True)
    except codec.ProtocolError as exc:
        raise bad_request(exc.detail, "name") from None
    if not scope.is_admin:
        if scope.agent_name and name != scope.agent_name:
            raise forbidden(f"this token is pinned to {scope.agent_name!r}: it registers only that")
        if not scope.agent_name:
            pinned = await asyncio.to_thread(
                request.app[STORE].pinned_names, scope.one_workspace, [name]
            )
            if name in pinned:
                raise forbidden(
                    f"{name!r} is pinned to another token: only that token registers it"
                )
    profile: dict[str, Any] = {}
    for key in PROFILE_FIELDS:
        value = opt_str(data, key, limit=200)
        if value:
            profile[key] = value
    task = opt_str(data, "orochi_current_task", limit=1000)
    if task:
        profile["current_task"] = task[:200]
    count = data.get("orochi_subagent_count")
    if count is not None:
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 10_000:
            raise bad_request(
                "orochi_subagent_count must be an integer 0..10000", "orochi_subagent_count"
            )
        profile["subagent_count"] = count
    skip = {"token", "name", "orochi_current_task", "orochi_subagent_count", *PROFILE_FIELDS}
    metrics = {
        k: v
        for k, v in data.items()
        if k not in skip and isinstance(v, int | float | str | bool) and len(k) <= 100
    }
    if len(metrics) > MAX_METRICS:
        raise bad_request(f"at most {MAX_METRICS} metric keys", "metrics")
    reg = Registration(scope.one_workspace, name, scope.token, profile, metrics)
    request.app[FLEET_STATE].register(reg)
    return web.json_response({"status": "ok", "name": name})


# ---- POST /api/agents/health/ -----------------------------------------------------------
def _health_update(item: object, index: int | None) -> tuple[str, str, str, str]:
    prefix = "" if index is None else f"updates[{index}]."
    if not isinstance(item, dict):
        raise bad_request(f"{prefix or 'updates[]'} must be an object", prefix.rstrip(".") or None)
    agent = item.get("agent")
    if not isinstance(agent, str) or not agent.strip():
        raise bad_request(f"{prefix}agent is required", prefix + "agent")
    try:
        agent = codec.check_name(agent.strip(), prefix + "agent", agent=True)
    except codec.ProtocolError as exc:
        raise bad_request(exc.detail, prefix + "agent") from None
    status = (opt_str(item, "status", limit=64, prefix=prefix) or "").strip().lower()
    if not status:
        raise bad_request(f"{prefix}status is required", prefix + "status")
    reason = opt_str(item, "reason", limit=2000, prefix=prefix) or ""
    source = opt_str(item, "source", limit=200, prefix=prefix) or ""
    return agent, status, reason, source


async def post_health(request: web.Request) -> web.Response:
    """A diagnosis about an agent (the fleet's healer): any token of the workspace may
    report one. It becomes the agent's `last_diagnosis` in the lasting registry (through
    the persister, acked before the answer, so it survives restarts); `stuck_prompt`
    and `remediating` set the agent's class until it is healthy again (health.py), any
    other status is shown beside the hub's own class."""
    scope = await authenticate(request)
    data = await read_json_object(request, request.app[CONFIG].ws.max_frame_bytes)
    if "updates" in data:
        items = data["updates"]
        if not isinstance(items, list) or len(items) > MAX_HEALTH_UPDATES:
            raise bad_request(f"updates must be a list of at most {MAX_HEALTH_UPDATES}", "updates")
        parsed = [_health_update(item, i) for i, item in enumerate(items)]
    else:
        parsed = [_health_update(data, None)]
    by = scope.agent_name or registered_name(request.app, scope) or ""
    at = time.time()
    updates = [
        {"agent": a, "status": st, "reason": r, "source": src, "by": by, "at": at}
        for a, st, r, src in parsed
    ]
    envelope = item_envelope("diagnosis", by or "reporter", {"updates": updates})
    ack = await post_item(request.app, scope.one_workspace, envelope, admin=scope.is_admin)
    return web.json_response({"status": "ok", "applied": int(ack.get("count") or 0)})


# ---- channels ---------------------------------------------------------------------------
async def channel_list(request: web.Request) -> web.Response:
    """`/api/channels/?name=`: a JSON array `[{name, description, members, last_seq}]`."""
    scope = await authenticate(request)
    store, workspace = request.app[STORE], scope.one_workspace
    wanted = request.query.get("name")
    only = _channel(wanted, "name") if wanted else None
    last = await asyncio.to_thread(store.channels, workspace)
    row = await asyncio.to_thread(store.get_workspace, workspace) or {}
    await request.app[BUS].caught_up()
    members = online_members(request.app[PRESENCE].records(workspace))
    viewer = await resolve_viewer(request, scope)
    names = set(last) | set(members) | set(row.get("channels") or [])
    if only is not None:
        names = {only} & names
    out = [
        {
            "name": name,
            "description": "",
            "members": sorted(members.get(name, [])),
            "last_seq": last.get(name, 0),
            "is_dm": conv.is_dm(name),
            "workspace": workspace,
        }
        for name in sorted(names)
        if not is_internal(name) and viewer.may_read(name)
    ]
    return web.json_response(out)


def _subscribers(store: Any, workspace: str, channel: str) -> list[tuple[str, bool]]:
    s = subscriptions.c
    query = sa.select(s.agent, s.mention_only).where(
        s.workspace_id == workspace, s.channel == channel, s.can_read.is_(True)
    )
    with store.engine.connect() as conn:
        return [(r.agent, bool(r.mention_only)) for r in conn.execute(query.order_by(s.agent))]


async def channel_members(request: web.Request) -> web.Response:
    """`?channel=`: `[{username: "agent-<name>", name, permission, kind, role, online,
    mention_only}]`: the agents subscribed now (presence) or lastingly (the store)."""
    scope = _workspace(request, await authenticate(request))
    channel = _channel(request.query.get("channel"))
    viewer = await resolve_viewer(request, scope)
    if not viewer.may_read(channel):
        raise ApiError(ErrorCode.NOT_A_MEMBER, f"only the participants of {channel} may list it")
    workspace = scope.one_workspace
    await request.app[BUS].caught_up()
    online = {
        r["name"]: r
        for r in request.app[PRESENCE].records(workspace)
        if channel in (r.get("channels") or [])
    }
    lasting = dict(await asyncio.to_thread(_subscribers, request.app[STORE], workspace, channel))
    out = []
    for name in sorted(set(online) | set(lasting)):
        record = online.get(name) or request.app[PRESENCE].get(workspace, name) or {}
        out.append(
            {
                "username": f"agent-{name}",
                "name": name,
                "permission": "read-write",
                "kind": "agent",
                "role": record.get("role") or "",
                "online": name in online or bool(record),
                "mention_only": lasting.get(name, False),
            }
        )
    return web.json_response(out)


async def _self_name(request: web.Request, scope: Scope) -> str:
    """Who asks about itself: `?agent=`, else the token's pinned or REST-registered name."""
    name = request.query.get("agent") or None
    if scope.is_admin and name is None:
        raise bad_request("the admin token names the agent with ?agent=", "agent")
    actor = await resolve_actor(request.app, scope, name, "agent")
    return actor.name


async def my_subscriptions(request: web.Request) -> web.Response:
    """`[{channel, mention_only, can_read, can_write, lasting, live}]` of the caller."""
    scope = _workspace(request, await authenticate(request))
    name = await _self_name(request, scope)
    workspace = scope.one_workspace
    lasting = dict(await asyncio.to_thread(request.app[STORE].subscriptions, workspace, name))
    record = request.app[PRESENCE].get(workspace, name) or {}
    live = [c for c in record.get("channels") or [] if not is_internal(c)]
    return web.json_response(
        [
            {
                "channel": ch,
                "mention_only": lasting.get(ch, False),
                "can_read": True,
                "can_write": True,
                "lasting": ch in lasting,
                "live": ch in live,
            }
            for ch in dict.fromkeys([*lasting, *live])
        ]
    )


# ---- /api/agents/<target>/subscribe/ ----------------------------------------------------
async def _subscription(request: web.Request, join: bool) -> web.Response:
    """The admin token subscribes any agent; a workspace token only the agent it may act
    as (acting.py). The membership is lasting (recorded by the persister): a connected
    agent gets it on its next register; its live session is not changed from here."""
    scope = await authenticate(request)
    target = request.match_info["target"]
    data = await read_json_object(request, ADMIN_BODY_MAX_BYTES)
    channel = _channel(data.get("channel"))
    mention_only = data.get("mention_only", False)
    if not isinstance(mention_only, bool):
        raise bad_request("mention_only must be true or false", "mention_only")
    if scope.is_admin:
        try:
            target = codec.check_name(target, "target", agent=True)
        except codec.ProtocolError as exc:
            raise bad_request(exc.detail, "target") from None
    else:
        caller = request.query.get("agent") or None
        if caller is not None and caller != target:
            raise forbidden("subscribing another agent needs the admin token")
        target = (await resolve_actor(request.app, scope, target, "target")).name
    if conv.is_dm(channel) and f"agent:{target}" not in conv.dm_participants(channel):
        raise ApiError(ErrorCode.NOT_A_MEMBER, f"{target!r} is not a participant of {channel}")
    envelope = {
        "type": "subscription",
        "sender": target,
        "id": new_id(),
        "ts": now_iso(),
        "payload": {
            "channel": channel,
            "action": "join" if join else "leave",
            "mention_only": mention_only,
        },
    }
    await post_envelope(
        request.app[BUS],
        scope.one_workspace,
        envelope,
        request.app[CONFIG].http.post_timeout_s,
        sender_type="agent",
        admin=scope.is_admin,
    )
    rows = await asyncio.to_thread(request.app[STORE].subscriptions, scope.one_workspace, target)
    return web.json_response(
        {
            "status": "ok",
            "action": "subscribed" if join else "unsubscribed",
            "agent": target,
            "channel": channel,
            "channels": [c for c, _ in rows],
            "mention_only": mention_only,
            "live": False,
        }
    )


async def subscribe(request: web.Request) -> web.Response:
    return await _subscription(request, True)


async def unsubscribe(request: web.Request) -> web.Response:
    return await _subscription(request, False)


# ---- export -----------------------------------------------------------------------------
def _bound(request: web.Request, key: str) -> float | None:
    raw = request.query.get(key)
    if not raw:
        return None
    try:
        return parse_iso_epoch(raw)
    except ValueError:
        raise bad_request(f"{key} must be an ISO-8601 date or timestamp", key) from None


def _export_rows(
    store: Any, workspace: str, channel: str, lo: float | None, hi: float | None
) -> tuple[list[dict[str, Any]], bool]:
    rows: list[dict[str, Any]] = []
    after, scanned = 0, 0
    while scanned < EXPORT_SCAN_MAX_ROWS:
        page = store.history(workspace, channel, after_seq=after, limit=HISTORY_MAX_LIMIT)
        if not page:
            return rows, False
        scanned += len(page)
        after = page[-1]["seq"]
        for row in page:
            epoch = parse_iso_epoch(row["ts"])
            if hi is not None and epoch > hi:
                return rows, False
            if lo is None or epoch >= lo:
                if len(rows) == EXPORT_MAX_ROWS:
                    return rows, True
                rows.append(row)
    return rows, True


def _line(row: dict[str, Any], md: bool) -> str:
    text = "(message deleted)" if row.get("deleted") else str(row.get("content") or "")
    if row.get("edited_at") and not row.get("deleted"):
        text += " (edited)"
    for att in row.get("attachments") or []:
        if isinstance(att, dict):
            text += f" [{att.get('filename') or 'file'}: {att.get('url') or ''}]"
    thread = "  ↳ " if row.get("thread") else ""
    if md:
        return f"- {thread}**{row.get('sender')}** ({row.get('ts')}) #{row.get('num')}: {text}"
    return f"{thread}[{row.get('ts')}] #{row.get('num')} {row.get('sender')}: {text}"


async def export_channel(request: web.Request) -> web.Response:
    """`?format=txt|json|md&from=&to=`: the channel oldest first, at most EXPORT_MAX_ROWS
    messages (`X-Orochi-Truncated: true` and a closing note when cut)."""
    scope = await authenticate(request)
    channel = _channel(request.match_info["chat_id"], "chat_id")
    fmt = request.query.get("format", "txt")
    if fmt not in EXPORT_FORMATS:
        raise bad_request("format must be txt, json or md", "format")
    lo, hi = _bound(request, "from"), _bound(request, "to")
    viewer = await resolve_viewer(request, scope)
    if not viewer.may_read(channel):
        raise ApiError(ErrorCode.NOT_A_MEMBER, f"only the participants of {channel} may read it")
    workspace = scope.one_workspace
    rows, truncated = await asyncio.to_thread(
        _export_rows, request.app[STORE], workspace, channel, lo, hi
    )
    note = f"(truncated: the export stops at {EXPORT_MAX_ROWS} messages; narrow from/to)"
    headers = {"X-Orochi-Truncated": "true" if truncated else "false"}
    if fmt == "json":
        body = {
            "channel": channel,
            "workspace": workspace,
            "count": len(rows),
            "truncated": truncated,
            "max_rows": EXPORT_MAX_ROWS,
            "messages": rows,
        }
        return web.json_response(body, headers=headers)
    md = fmt == "md"
    lines = [f"# {channel} ({workspace})", ""] if md else [f"{channel} ({workspace})"]
    lines += [_line(row, md) for row in rows]
    if truncated:
        lines.append(note)
    content_type = "text/markdown" if md else "text/plain"
    return web.Response(text="\n".join(lines) + "\n", content_type=content_type, headers=headers)


# ---- cron, messages ---------------------------------------------------------------------
async def cron(request: web.Request) -> web.Response:
    """The hub has no cron concept: every agent's list is empty (the sidecar lists it)."""
    await authenticate(request)
    return web.json_response([])


async def post_b_message(request: web.Request) -> web.Response:
    """`POST /api/messages/` `{channel, text, sender}` (B's shape): 201 with the posted
    message, `id` its hub number as B's frames carry it."""
    scope = await authenticate(request)
    cfg = request.app[CONFIG]
    data = await read_json_object(request, cfg.ws.max_frame_bytes)
    channel = _channel(data.get("channel"))
    text = data.get("text", data.get("content"))
    if not isinstance(text, str):
        raise bad_request("text is required (a string)", "text")
    actor = await resolve_actor(
        request.app, scope, data.get("sender"), "sender", data.get("sender_type")
    )
    payload: dict[str, Any] = {"channel": channel, "content": text}
    for key in ("metadata", "attachments"):
        if data.get(key) is not None:
            payload[key] = data[key]
    envelope = build_envelope({"sender": actor.name, "id": data.get("id"), "payload": payload})
    result = await post_envelope(
        request.app[BUS],
        scope.one_workspace,
        envelope,
        cfg.http.post_timeout_s,
        sender_type=actor.kind,
        admin=actor.admin,
    )
    out = {
        **result,
        "id": result.get("num"),
        "msg_id": envelope["id"],
        "sender": actor.name,
        "sender_type": actor.kind,
        "text": text,
        "ts": envelope["ts"],
        "metadata": envelope["payload"].get("metadata") or {},
    }
    return web.json_response(out, status=201)


def setup(app: web.Application) -> None:
    app[FLEET_STATE] = FleetState()
    add_both(app, "POST", "/api/agents/register", register_agent)
    add_both(app, "POST", "/api/agents/health", post_health)
    app.router.add_get("/api/channels/", channel_list)  # the slashless one is A's dict
    add_both(app, "GET", "/api/channels/{chat_id}/export", export_channel)
    add_both(app, "GET", "/api/workspace/{slug}/channel-members", channel_members)
    add_both(app, "GET", "/api/workspace/{slug}/me/subscriptions", my_subscriptions)
    add_both(app, "POST", "/api/agents/{target}/subscribe", subscribe)
    add_both(app, "POST", "/api/agents/{target}/unsubscribe", unsubscribe)
    add_both(app, "GET", "/api/cron", cron)
    app.router.add_post("/api/messages/", post_b_message)  # the slashless one is A's
