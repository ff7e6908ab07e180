"""Who acts and who reads on REST writes and reads of conversations (docs/conversations.md).

Writes name who acts (`sender`, `reactor`):
- the admin token may act as anyone: a person by default (`sender_type` "human",
  as REST posts always were), or an agent with `sender_type: "agent"`;
- a workspace token pinned to a name (`tokens --agent`) acts as that name only;
- an unpinned workspace token acts as an agent that is connected right now in the
  token's own workspace (the presence replica) and that no token of the workspace
  is pinned to. The replica does not record which token a connection used, so
  "connected with that same token" is approximated by "connected in the token's
  workspace": any holder of that token could have connected under that name anyway,
  unless a pin reserves the name, which is why pinned names are refused here;
- a workspace token never acts as a person (`sender_type: "human"`): 403;
- a write that names nobody acts as the token's pinned name, else as the name that
  registered with this token over REST (`POST /api/agents/register/`, the sidecar's;
  fleet_state.py), checked by the rules above; else 403.
Reads of DM channels (`dm:<p>|<q>`) are for their participants: the reader is the
name of `?agent=` (checked like a writer) or the token's pinned name; the admin
token reads every DM. A reader without a name sees no DM content at all.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from scitex_orochi.protocol import codec
from scitex_orochi.protocol import conversations as conv
from scitex_orochi.protocol.errors import ErrorCode

from .auth import Scope
from .errors import ApiError, bad_request
from .fleet_state import state_of
from .keys import BUS, PRESENCE, STORE
from .posting import DEFAULT_SENDER, check_sender

SENDER_TYPES = ("agent", "human")


def forbidden(detail: str) -> ApiError:
    return ApiError(ErrorCode.FORBIDDEN, detail)


def not_a_member(detail: str) -> ApiError:
    return ApiError(ErrorCode.NOT_A_MEMBER, detail)


@dataclass(frozen=True)
class Actor:
    """Who a write acts as: a name, its kind (agent or human) and the admin flag."""

    name: str
    kind: str
    admin: bool

    @property
    def key(self) -> str:
        """Its DM participant key, `agent:<name>` or `human:<name>`."""
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True)
class Viewer:
    """Who reads: the admin token (every DM), or a participant key (its DMs), or nobody
    in particular (no DMs)."""

    admin: bool
    key: str | None = None

    def may_read(self, channel: object) -> bool:
        if not conv.is_dm(channel) or self.admin:
            return True
        if self.key is None or not isinstance(channel, str):
            return False
        try:
            return self.key in conv.dm_participants(channel)
        except conv.ConversationError:
            return False


def _sender_type(value: object, field: str) -> str | None:
    if value is None:
        return None
    if value not in SENDER_TYPES:
        raise bad_request(f"{field} must be 'agent' or 'human'", field)
    return str(value)


async def resolve_actor(
    app: web.Application,
    scope: Scope,
    name: object,
    field: str = "sender",
    sender_type: object = None,
    type_field: str = "sender_type",
) -> Actor:
    """The actor a write names (see the module's rules); 400 for a bad name, 403 when
    this token may not act as it."""
    kind = _sender_type(sender_type, type_field)
    if isinstance(name, str):
        name = name.strip()
    if name in (None, ""):
        name = None
    if scope.is_admin:
        return Actor(
            check_sender(DEFAULT_SENDER if name is None else name, field), kind or "human", True
        )
    if kind == "human":
        raise forbidden("acting as a person (sender_type human) needs the admin token")
    if name is None:
        if scope.agent_name:
            return Actor(scope.agent_name, "agent", False)
        name = registered_name(app, scope)
        if name is None:
            raise forbidden(
                f"name the agent that acts with {field}: a workspace token acts only as an "
                "agent connected in its workspace (or the name it is pinned to, or the "
                "name it registered with POST /api/agents/register/)"
            )
    try:
        agent = codec.check_name(name, field, agent=True)
    except codec.ProtocolError as exc:
        raise bad_request(exc.detail, field) from None
    if scope.agent_name:
        if agent != scope.agent_name:
            raise forbidden(
                f"this token is pinned to {scope.agent_name!r}: it may act only as that name"
            )
        return Actor(agent, "agent", False)
    workspace = scope.one_workspace
    replica = app[PRESENCE]
    if replica.get(workspace, agent) is None:
        await app[BUS].caught_up()  # an agent whose register was just acked is listed
    if replica.get(workspace, agent) is None:
        raise forbidden(
            f"{agent!r} is not connected to workspace {workspace!r}: a workspace token acts "
            "only as an agent connected in its workspace (or the name it is pinned to); "
            "acting as anyone else needs the admin token"
        )
    pinned = await asyncio.to_thread(app[STORE].pinned_names, workspace, [agent])
    if agent in pinned:
        raise forbidden(f"{agent!r} is pinned to another token: only that token acts as it")
    return Actor(agent, "agent", False)


def registered_name(app: web.Application, scope: Scope) -> str | None:
    """The name that REST-registered with this workspace token, if any (fleet_state.py)."""
    state = state_of(app)
    if scope.is_admin or state is None:
        return None
    return state.name_of_token(scope.token)


async def resolve_viewer(request: web.Request, scope: Scope, field: str = "agent") -> Viewer:
    """The reader of a request: `?agent=` (checked as a writer would be), else the
    token's pinned name, else nobody in particular."""
    if scope.is_admin:
        return Viewer(True)
    name = request.query.get(field) or scope.agent_name
    if not name:
        registered = registered_name(request.app, scope)
        if registered is None:
            return Viewer(False)
        try:
            actor = await resolve_actor(request.app, scope, registered, field)
        except ApiError:
            return Viewer(False)
        return Viewer(False, actor.key)
    actor = await resolve_actor(request.app, scope, name, field)
    return Viewer(False, actor.key)


def readable(viewer: Viewer, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [row for row in rows if viewer.may_read(row.get("channel"))]
