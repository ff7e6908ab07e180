"""Conversation routes (docs/conversations.md, "REST"): reactions, threads, one message
(read, edit, delete), DMs, search and permalinks. Trailing slashes are optional.

Writes become the same `react`/`edit`/`delete` changes and `message` envelopes an agent
sends, posted through the persister and answered once durable with its outcome;
the persister checks the message, the DM membership and who may edit, in the
transaction that writes the change. Who may act and who may read a DM: acting.py.
A message (by num) in a DM the reader may not read answers 404, like one that does
not exist, so a route never tells a non-participant that a DM message exists.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from scitex_orochi.hub.store import HISTORY_MAX_LIMIT
from scitex_orochi.protocol import codec
from scitex_orochi.protocol import conversations as conv
from scitex_orochi.protocol.constants import new_id, now_iso
from scitex_orochi.protocol.errors import ErrorCode

from .acting import (
    Actor,
    Viewer,
    forbidden,
    not_a_member,
    readable,
    resolve_actor,
    resolve_viewer,
)
from .auth import Scope, authenticate, require_workspace_access
from .bodies import read_json_object
from .errors import ApiError, bad_request, opt_str, query_int
from .keys import BUS, CONFIG, STORE
from .posting import build_envelope, normalize_channel, post_envelope
from .routes import add_both

MAX_MESSAGE_IDS = 200  # GET /api/reactions ?message_ids=
THREAD_DEFAULT_LIMIT = 200
SEARCH_DEFAULT_LIMIT = 50
SEARCH_MAX_LIMIT = 200
MAX_NUM_DIGITS = 19
SEARCH_UNAVAILABLE = "full-text search is not available on this hub (Store.search is missing)"


# ---- inputs -----------------------------------------------------------------------------
def parse_num(value: object, field: str) -> int:
    """A hub number: a positive integer, or its digits (paths, query strings)."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        if len(value) > MAX_NUM_DIGITS:
            raise bad_request(f"{field} must be a message number 1..{conv.MAX_NUM}", field)
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= conv.MAX_NUM:
        raise bad_request(f"{field} must be a message number 1..{conv.MAX_NUM}", field)
    return value


def parse_ref(value: object, field: str) -> int | str:
    """A message named by num (an integer or its digits) or by id (any other string)."""
    if value is None or value == "":
        raise bad_request(f"{field} is required (a message number or id)", field)
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return parse_num(value, field)
    try:
        conv.message_ref(value, field)
    except conv.ConversationError as exc:
        raise bad_request(exc.detail, field) from None
    assert isinstance(value, str)
    return value


def parse_emoji(value: object) -> str:
    if value is None or value == "":
        raise bad_request("emoji is required", "emoji")
    try:
        return conv.check_emoji(value, "emoji")
    except conv.ConversationError as exc:
        raise bad_request(exc.detail, "emoji") from None


def text_of(data: dict[str, Any]) -> str:
    """`text` (dialect B) or `content`: a string, required."""
    for key in ("text", "content"):
        if key in data:
            value = data[key]
            if not isinstance(value, str):
                raise bad_request(f"{key} must be a string", key)
            return value
    raise bad_request("text (or content) is required", "text")


async def body_or_query(request: web.Request) -> dict[str, Any]:
    """A JSON body when there is one, else the query string (DELETE routes)."""
    if request.can_read_body:
        data = await read_json_object(request, request.app[CONFIG].ws.max_frame_bytes)
        return data
    return {k: v for k, v in request.query.items() if k not in ("token", "workspace")}


def path_num(request: web.Request) -> int:
    return parse_num(request.match_info["num"], "num")


# ---- reading ----------------------------------------------------------------------------
async def find_message(scope: Scope, viewer: Viewer, request: web.Request, ref: int | str) -> Any:
    """The folded message `ref` names in the workspace, readable by `viewer`; 404."""
    store, workspace = request.app[STORE], scope.one_workspace
    if isinstance(ref, int):
        row = await asyncio.to_thread(store.message_by_num, workspace, ref)
    else:
        found = await asyncio.to_thread(store.find_messages, [(workspace, ref)])
        row = found.get((workspace, ref))
        if row is not None:
            row.pop("workspace_id", None)
    if row is None or not viewer.may_read(row["channel"]):
        name = f"#{ref}" if isinstance(ref, int) else repr(ref)
        raise ApiError(ErrorCode.UNKNOWN_MESSAGE, f"no message {name} in workspace {workspace!r}")
    return row


async def get_message(request: web.Request) -> web.Response:
    scope = await authenticate(request)
    num = path_num(request)
    viewer = await resolve_viewer(request, scope)
    return web.json_response(await find_message(scope, viewer, request, num))


async def get_thread(request: web.Request) -> web.Response:
    scope = await authenticate(request)
    num = path_num(request)
    limit = query_int(
        request, "limit", THREAD_DEFAULT_LIMIT, lo=1, hi=HISTORY_MAX_LIMIT, clamp=True
    )
    viewer = await resolve_viewer(request, scope)
    workspace = scope.one_workspace
    root, replies = await asyncio.to_thread(request.app[STORE].thread, workspace, num, limit)
    if root is None or not viewer.may_read(root["channel"]):
        raise ApiError(ErrorCode.UNKNOWN_MESSAGE, f"no message #{num} in workspace {workspace!r}")
    return web.json_response({"root": root, "replies": replies})


async def get_reactions(request: web.Request) -> web.Response:
    """`?message_ids=1,2`: `{"<num>": {emoji: [{reactor, reactor_type}]}}`. A reactor is a
    `human` when it takes part in a DM of the workspace as a person, else an `agent`
    (the reactions table does not record the kind)."""
    scope = await authenticate(request)
    raw = request.query.get("message_ids", "")
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if not parts:
        raise bad_request("message_ids is required: message numbers separated by commas")
    if len(parts) > MAX_MESSAGE_IDS:
        raise bad_request(f"message_ids takes at most {MAX_MESSAGE_IDS} numbers", "message_ids")
    nums = [parse_num(p, "message_ids") for p in parts]
    viewer = await resolve_viewer(request, scope)
    store, workspace = request.app[STORE], scope.one_workspace
    found = await asyncio.to_thread(store.reactions_of, workspace, nums)
    visible = {n: v for n, v in found.items() if viewer.may_read(v["channel"])}
    reactors = sorted({r for v in visible.values() for who in v["reactions"].values() for r in who})
    humans = await asyncio.to_thread(store.human_participants, workspace, reactors)
    out = {
        str(num): {
            emoji: [
                {"reactor": r, "reactor_type": "human" if r in humans else "agent"} for r in who
            ]
            for emoji, who in v["reactions"].items()
        }
        for num, v in visible.items()
    }
    return web.json_response(out)


# ---- writing ----------------------------------------------------------------------------
def change_envelope(kind: str, actor: Actor, payload: dict[str, Any]) -> dict[str, Any]:
    frame = {
        "type": kind,
        "sender": actor.name,
        "id": new_id(),
        "ts": now_iso(),
        "payload": payload,
    }
    try:
        return codec.parse_frame(codec.dumps(frame)).to_dict()
    except codec.ProtocolError as exc:
        field = (exc.field or "").removeprefix("payload.") or None
        raise bad_request(exc.detail, field) from None


async def post_change(
    request: web.Request, scope: Scope, actor: Actor, envelope: dict[str, Any]
) -> dict[str, Any]:
    return await post_envelope(
        request.app[BUS],
        scope.one_workspace,
        envelope,
        request.app[CONFIG].http.post_timeout_s,
        sender_type=actor.kind,
        admin=actor.admin,
    )


async def react(request: web.Request, action: str) -> web.Response:
    scope = await authenticate(request)
    data = await (
        read_json_object(request, request.app[CONFIG].ws.max_frame_bytes)
        if action == "add"
        else body_or_query(request)
    )
    ref = parse_ref(data.get("message_id"), "message_id")
    emoji = parse_emoji(data.get("emoji"))
    actor = await resolve_actor(
        request.app,
        scope,
        data.get("reactor", data.get("sender")),
        "reactor",
        data.get("reactor_type", data.get("sender_type")),
        "reactor_type",
    )
    envelope = change_envelope("react", actor, {"message": ref, "emoji": emoji, "action": action})
    result = await post_change(request, scope, actor, envelope)
    body: dict[str, Any] = {
        "status": "ok",
        "action": result.get("outcome"),
        "num": result.get("num"),
    }
    if result.get("outcome") in ("added", "removed"):
        body["seq"] = result.get("seq")
    return web.json_response(body)


async def add_reaction(request: web.Request) -> web.Response:
    return await react(request, "add")


async def remove_reaction(request: web.Request) -> web.Response:
    return await react(request, "remove")


async def post_thread_reply(request: web.Request) -> web.Response:
    """`{parent_id, text|content, sender?}`: a message in the parent's channel with
    `metadata.reply_to` the parent; 201 with the answer of POST /api/messages, `num`
    and `thread` ({root, num} of the thread's root)."""
    scope = await authenticate(request)
    data = await read_json_object(request, request.app[CONFIG].ws.max_frame_bytes)
    ref = parse_ref(data.get("parent_id"), "parent_id")
    text = text_of(data)
    actor = await resolve_actor(
        request.app, scope, data.get("sender"), "sender", data.get("sender_type")
    )
    viewer = Viewer(actor.admin, actor.key)
    parent = await find_message(scope, viewer, request, ref)
    if parent.get("deleted"):
        raise ApiError(ErrorCode.MESSAGE_DELETED, f"message #{parent['num']} was deleted")
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise bad_request("metadata must be an object", "metadata")
    payload: dict[str, Any] = {
        "channel": parent["channel"],
        "content": text,
        "metadata": {**metadata, "reply_to": parent["num"]},
    }
    if data.get("attachments") is not None:
        payload["attachments"] = data["attachments"]
    envelope = build_envelope({"sender": actor.name, "id": data.get("id"), "payload": payload})
    result = await post_change(request, scope, actor, envelope)
    result["thread"] = parent.get("thread") or {"root": parent["msg_id"], "num": parent["num"]}
    return web.json_response(result, status=201)


async def author_or_actor(
    request: web.Request, scope: Scope, num: int, data: dict[str, Any]
) -> Actor:
    """Who edits or deletes: the `sender` named; with a workspace token and no sender
    (the sidecar names none), the message's own sender when that agent is connected in
    the workspace (acting.py's rule), else the token's pinned or registered name."""
    if scope.is_admin or data.get("sender") not in (None, ""):
        return await resolve_actor(
            request.app, scope, data.get("sender"), "sender", data.get("sender_type")
        )
    row = await asyncio.to_thread(request.app[STORE].message_by_num, scope.one_workspace, num)
    if row is not None and row.get("sender_type") == "agent":
        try:
            return await resolve_actor(request.app, scope, row["sender"], "sender")
        except ApiError:
            pass  # not connected (or pinned elsewhere): the token's own name, if any
    try:
        return await resolve_actor(request.app, scope, None, "sender")
    except ApiError:
        author = f" ({row['sender']!r} is not connected in this workspace)" if row else ""
        raise forbidden(
            f"no sender given and this token may not act as the message's author{author}: "
            "name the agent that acts with sender (an agent connected in this workspace, "
            "or the token's pinned name)"
        ) from None


async def edit_message(request: web.Request) -> web.Response:
    scope = await authenticate(request)
    num = path_num(request)
    data = await read_json_object(request, request.app[CONFIG].ws.max_frame_bytes)
    text = text_of(data)
    actor = await author_or_actor(request, scope, num, data)
    envelope = change_envelope("edit", actor, {"message": num, "content": text})
    result = await post_change(request, scope, actor, envelope)
    body: dict[str, Any] = {"status": "ok", "seq": result.get("seq"), "num": num}
    row = await asyncio.to_thread(request.app[STORE].message_by_num, scope.one_workspace, num)
    if row is not None and row.get("edited_at"):
        body["edited_at"] = row["edited_at"]
    return web.json_response(body)


async def delete_message(request: web.Request) -> web.Response:
    scope = await authenticate(request)
    num = path_num(request)
    data = await body_or_query(request)
    actor = await author_or_actor(request, scope, num, data)
    envelope = change_envelope("delete", actor, {"message": num})
    result = await post_change(request, scope, actor, envelope)
    return web.json_response({"status": "ok", "seq": result.get("seq"), "num": num})


# ---- DMs ----------------------------------------------------------------------------------
def dm_workspace(request: web.Request, scope: Scope) -> str:
    slug = request.match_info["slug"]
    require_workspace_access(scope, slug)
    return slug


async def list_dms(request: web.Request) -> web.Response:
    """`?agent=`: that agent's DMs (a workspace token: the agent it acts as); the admin
    token without `agent` lists every DM of the workspace."""
    scope = await authenticate(request)
    workspace = dm_workspace(request, scope)
    scope = Scope(scope.token, scope.is_admin, workspace, scope.agent_name)
    viewer = await resolve_viewer(request, scope)
    if not viewer.admin and viewer.key is None:
        raise ApiError(
            ErrorCode.FORBIDDEN,
            "name the agent whose DMs to list with ?agent= (an agent connected in this "
            "workspace, or the token's pinned name)",
        )
    key = viewer.key
    if viewer.admin and request.query.get("agent"):
        key = f"agent:{request.query['agent']}"
    dms = await asyncio.to_thread(request.app[STORE].dms, workspace, key)
    return web.json_response({"dms": dms})


async def open_dm(request: web.Request) -> web.Response:
    """`{recipient: "agent:x"|"human:y", sender?}`: the DM's name and participants. Nothing
    is written: the channel is made on its first message."""
    scope = await authenticate(request)
    workspace = dm_workspace(request, scope)
    scope = Scope(scope.token, scope.is_admin, workspace, scope.agent_name)
    data = await read_json_object(request, request.app[CONFIG].ws.max_frame_bytes)
    recipient = opt_str(data, "recipient", limit=300)
    if not recipient:
        raise bad_request("recipient is required: agent:<name> or human:<name>", "recipient")
    if ":" not in recipient:
        recipient = f"agent:{recipient}"
    actor = await resolve_actor(
        request.app, scope, data.get("sender"), "sender", data.get("sender_type")
    )
    try:
        name = conv.dm_channel(actor.key, recipient)
    except conv.ConversationError as exc:
        raise bad_request(exc.detail.replace("participant", "recipient", 1), "recipient") from None
    return web.json_response({"name": name, "participants": list(conv.dm_participants(name))})


# ---- search and permalinks -------------------------------------------------------------------
async def search(request: web.Request) -> web.Response:
    """`?q=&channel=&sender=&before=&after=&limit=`: `{query, results}` best first, of the
    channels the reader may read (DMs only its own)."""
    scope = await authenticate(request)
    q = (request.query.get("q") or "").strip()
    if not q or len(q) > codec.MAX_SEARCH_CHARS:
        raise bad_request(f"q must be 1..{codec.MAX_SEARCH_CHARS} characters of words", "q")
    channel = request.query.get("channel") or None
    if channel is not None and not conv.is_dm(channel):
        channel = normalize_channel(channel)
    for key in ("sender", "before", "after"):
        if len(request.query.get(key) or "") > 200:
            raise bad_request(f"{key} is too long", key)
    limit = query_int(request, "limit", SEARCH_DEFAULT_LIMIT, lo=1, hi=SEARCH_MAX_LIMIT, clamp=True)
    viewer = await resolve_viewer(request, scope)
    if channel is not None and not viewer.may_read(channel):
        raise not_a_member(f"only the participants of {channel} may read it")
    store = request.app[STORE]
    if not hasattr(store, "search"):
        raise ApiError(ErrorCode.OVERLOADED, SEARCH_UNAVAILABLE)
    try:
        rows = await asyncio.to_thread(
            store.search,
            scope.one_workspace,
            q,
            channels=None if channel is None else [channel],
            sender=request.query.get("sender") or None,
            before=request.query.get("before") or None,
            after=request.query.get("after") or None,
            limit=limit,
        )
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    results = [{k: v for k, v in row.items() if k != "rank"} for row in readable(viewer, rows)]
    return web.json_response({"query": q, "results": results})


async def permalink(request: web.Request) -> web.Response:
    num = path_num(request)
    raise web.HTTPFound(f"/?m={num}")


def setup(app: web.Application) -> None:
    add_both(app, "POST", "/api/reactions", add_reaction)
    add_both(app, "DELETE", "/api/reactions", remove_reaction)
    add_both(app, "GET", "/api/reactions", get_reactions)
    add_both(app, "POST", "/api/threads", post_thread_reply)
    add_both(app, "GET", "/api/threads/{num}", get_thread)
    add_both(app, "GET", "/api/messages/{num}", get_message)
    add_both(app, "PATCH", "/api/messages/{num}", edit_message)
    add_both(app, "DELETE", "/api/messages/{num}", delete_message)
    add_both(app, "GET", "/api/workspace/{slug}/dms", list_dms)
    add_both(app, "POST", "/api/workspace/{slug}/dms", open_dm)
    add_both(app, "GET", "/api/search", search)
    app.router.add_get("/m/{num}", permalink)
