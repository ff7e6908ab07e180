"""Message routes: history of a channel, recent messages, channel summaries, posting.

Reads take any valid token and go to the read-only store in the default
executor; posting takes the admin token, goes through the persister and
answers 201 only once the message is on disk.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from scitex_orochi.hub.bus_bodies import AgentRecord
from scitex_orochi.hub.store import HISTORY_MAX_LIMIT
from scitex_orochi.protocol import conversations as conv
from scitex_orochi.protocol.channels import is_internal
from scitex_orochi.protocol.conversations import is_dm

from .acting import not_a_member, resolve_viewer
from .auth import authenticate, require_admin
from .bodies import read_json_object
from .errors import bad_request, query_int
from .keys import BUS, CONFIG, PRESENCE, STORE
from .posting import build_envelope, normalize_channel, post_envelope
from .skill_expand import expand_message

HISTORY_DEFAULT_LIMIT = 50
RECENT_DEFAULT_LIMIT = 100
RECENT_MAX_LIMIT = 500


async def history(request: web.Request) -> web.Response:
    """`/api/history/{channel}`: newest first (`since`, `limit`, `before_seq`) or oldest
    first after `after_seq` (how the dashboard resumes without gaps); with `events=1`
    the channel's change events come interleaved in seq order (rows with `event`)."""
    scope = await authenticate(request)
    store, cfg = request.app[STORE], request.app[CONFIG]
    channel = request.match_info["channel"]
    if not is_dm(channel):
        channel = normalize_channel(channel)
    limit = query_int(
        request, "limit", HISTORY_DEFAULT_LIMIT, lo=1, hi=HISTORY_MAX_LIMIT, clamp=True
    )
    after_seq = query_int(request, "after_seq", None, lo=0)
    before_seq = query_int(request, "before_seq", None, lo=1)
    since = request.query.get("since") or None
    if after_seq is not None and before_seq is not None:
        raise bad_request("give after_seq or before_seq, not both", "before_seq")
    events = request.query.get("events", "0")
    if events not in ("0", "1", "true", "false"):
        raise bad_request("events is 1 or 0", "events")
    if events in ("1", "true") and after_seq is None:
        raise bad_request("events=1 reads the stream after a seq: give after_seq", "events")
    if is_dm(channel):
        viewer = await resolve_viewer(request, scope)
        if not viewer.may_read(channel):
            raise not_a_member(
                f"only the participants of {channel} may read it: name one with ?agent= "
                "(an agent connected in this workspace, or the token's pinned name)"
            )
    workspace = scope.one_workspace
    try:
        rows, more = await asyncio.to_thread(
            store.history_page,
            workspace,
            channel,
            max_bytes=cfg.ws.max_reply_bytes,
            since=since,
            limit=limit,
            after_seq=after_seq,
            before_seq=before_seq,
            events=events in ("1", "true"),
        )
    except ValueError:
        raise bad_request("since must be an ISO-8601 timestamp", "since") from None
    return json_rows(rows, more)


def json_rows(encoded: list[str], more: bool) -> web.Response:
    """A JSON array of rows already encoded by the store's pager; `X-Orochi-More: true`
    when rows were left out to keep the answer within SCITEX_OROCHI_MAX_REPLY_BYTES."""
    response = web.Response(text="[" + ",".join(encoded) + "]", content_type="application/json")
    response.headers["X-Orochi-More"] = "true" if more else "false"
    return response


async def recent_messages(request: web.Request) -> web.Response:
    """`/api/messages?limit=`: the latest messages across channels, oldest first; DMs
    only those of the reader (`?agent=`, acting.py) or, for the admin token, all."""
    scope = await authenticate(request)
    limit = query_int(request, "limit", RECENT_DEFAULT_LIMIT, lo=1, hi=RECENT_MAX_LIMIT, clamp=True)
    viewer = await resolve_viewer(request, scope)

    def skip(channel: str) -> bool:
        return is_internal(channel) or not viewer.may_read(channel)

    rows, more = await asyncio.to_thread(
        request.app[STORE].recent_page,
        scope.workspace,
        limit,
        request.app[CONFIG].ws.max_reply_bytes,
        skip=skip,
    )
    return json_rows(rows, more)


def check_dm_writer(envelope: dict[str, Any]) -> None:
    """A person writes into a DM only as one of its people (the admin token moderates DMs
    but does not speak in others'): 400 for a malformed DM name, 403 for an outsider."""
    channel = envelope["payload"].get("channel")
    if not is_dm(channel):
        return
    try:
        people = conv.dm_participants(channel)
    except conv.ConversationError as exc:
        raise bad_request(exc.detail, "channel") from None
    writer = f"human:{envelope['sender']}"
    if writer not in people:
        raise not_a_member(
            f"only the participants of {channel} may write in it ({', '.join(people)}); "
            f"{writer} is not one"
        )


async def post_message(request: web.Request) -> web.Response:
    """Admin only: into `?workspace=` or the default workspace."""
    scope = await require_admin(request)
    cfg = request.app[CONFIG]
    data = await read_json_object(request, cfg.ws.max_frame_bytes)
    envelope = await expand_message(cfg, scope.one_workspace, build_envelope(data))
    check_dm_writer(envelope)
    result = await post_envelope(
        request.app[BUS], scope.one_workspace, envelope, cfg.http.post_timeout_s
    )
    return web.json_response(result, status=201)


async def channel_summary(request: web.Request) -> web.Response:
    """Channels of one workspace: members online and last seq (for unread counts)."""
    scope = await authenticate(request)
    store = request.app[STORE]
    workspace = scope.one_workspace
    last = await asyncio.to_thread(store.channels, workspace)
    workspace_row = await asyncio.to_thread(store.get_workspace, workspace) or {}
    members = channel_members(request.app[PRESENCE].records(workspace))
    viewer = await resolve_viewer(request, scope)
    names = {
        name
        for name in set(last) | set(members) | set(workspace_row.get("channels") or [])
        if not is_internal(name) and viewer.may_read(name)
    }
    return web.json_response(
        {
            "workspace": workspace,
            "channels": [
                {
                    "name": name,
                    "members": sorted(members.get(name, [])),
                    "last_seq": last.get(name, 0),
                }
                for name in sorted(names)
            ],
        }
    )


def channel_members(records: list[AgentRecord]) -> dict[str, list[str]]:
    out: dict[str, set[str]] = {}
    for record in records:
        for channel in record.get("channels") or []:
            if not is_internal(channel):
                out.setdefault(channel, set()).add(record["name"])
    return {channel: sorted(names) for channel, names in sorted(out.items())}


def setup(app: web.Application) -> None:
    app.router.add_get("/api/history/{channel}", history)
    app.router.add_get("/api/messages", recent_messages)
    app.router.add_post("/api/messages", post_message)
    app.router.add_get("/api/channels/summary", channel_summary)
