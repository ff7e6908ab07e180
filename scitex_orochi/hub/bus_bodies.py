"""The bodies of the bus topics (docs/internals.md, "Topics and bodies") as TypedDicts.

What a publisher builds and what a handler reads. A body arrives decoded from
msgpack and unchecked: a handler that cannot trust its peers checks what it
reads (the persister's `rows.parse_inbound`, the presence replica's
`apply_delta`). The keys are the wire's: `ws` is a workspace id, `gw` a
gateway's origin, `tk` a submitting process's ticket.
"""

# No `from __future__ import annotations`: `NotRequired` must be seen at run time, so that
# `__required_keys__` is right for the tests that hold the publishers to these shapes.
from typing import Any, NotRequired, TypedDict


class AgentRecord(TypedDict, total=False):
    """One agent's presence record: `pres.` deltas, `snap|` snapshots, the replica.

    The gateway holding the agent sets every key but `transient` when it registers
    (`gateway_ws.session.Session.register`); not total, because a session's record
    is empty until then and a record from another process is read defensively.
    `since` and `last_seen` are epoch seconds.
    """

    name: str
    ws: str
    conn: str
    gw: str
    since: float
    channels: list[str]
    agent_id: str
    machine: str
    role: str
    model: str
    project: str
    multiplexer: str
    status: str
    current_task: str
    subagent_count: int
    resources: dict[str, Any]
    last_seen: float
    transient: bool  # a one-shot client (the CLI): not listed as gone once it leaves


class GoneRecord(AgentRecord, total=False):
    """A record the HTTP gateway keeps for a while after its agent left."""

    disconnected_at: float


class InboundBody(TypedDict):
    """`in.<ws>|`, gateway -> persister: one message, or one change (`react`, `edit`,
    `delete`), to store (`hub.ingest.Ingest.submit`).

    `frame` is the validated envelope `{type, sender, id, ts, payload}`, the sender
    bound to the registered identity; `sender_type` is "agent" or "human"; `admin`
    says the submitter holds the admin token (it may edit and delete any message).
    """

    origin: str
    tk: int
    ws: str
    sender_type: str
    mentions: list[str]
    frame: dict[str, Any]
    admin: NotRequired[bool]


class Delivery(TypedDict):
    """One stored message, or one change event, in a `dlv.` body; `frame` is the JSON
    text recipients get. `num` is the message's hub number (an event's: its target's);
    `event` is set on change events (`reaction_update`, ...), which go only to
    connections that asked for events; `id` and `sender` are then the change frame's
    id and the actor."""

    ws: str
    channel: str
    seq: int
    id: str
    sender: str
    mentions: list[str]
    frame: str
    num: NotRequired[int]
    event: NotRequired[str]


class DeliveryBody(TypedDict):
    """`dlv.<ws>.<channel>|`, persister -> gateways: one commit's messages of one channel."""

    items: list[Delivery]


class ErrorBody(TypedDict):
    """A refusal's error: a wire code, a detail, and Gitea's HTTP status when it gave one."""

    code: str
    detail: str
    status: NotRequired[int]


class AckItem(TypedDict):
    """The persister's answer to one submission, by its ticket: stored (`channel`, `seq`,
    `dup`) or refused (`error`; `ws` None when the body had none)."""

    tk: int | None
    id: str
    ws: str | None
    channel: NotRequired[str]
    seq: NotRequired[int]
    dup: NotRequired[bool]
    error: NotRequired[ErrorBody]
    num: NotRequired[int]  # the message's hub number (a change's: its target's)
    outcome: NotRequired[str]  # a change's: added, existed, removed, not_found, edited, deleted
    count: NotRequired[int]  # a forget's: the registry entries removed


class AckBody(TypedDict):
    """`ack.<origin>|`, persister -> one submitter: one commit's answers for it."""

    items: list[AckItem]


class Kick(TypedDict):
    """`ctl.kick|`, HTTP gateway -> agent gateways: close these agents' sockets (4005)."""

    ws: str
    names: list[str]


class PresenceDelta(TypedDict):
    """`pres.<ws>|`: `event` is connected, disconnected, channels, status or heartbeat."""

    gw: str
    event: str
    agent: AgentRecord


class Snapshot(TypedDict):
    """`snap|`: every agent one gateway holds, each `interval_s`."""

    gw: str
    interval_s: float
    agents: list[AgentRecord]


class GatewayNotice(TypedDict):
    """`ctl.sync|` (a new gateway: publish your snapshot now) and `ctl.stop|` (a
    stopping gateway: drop my agents now)."""

    gw: str


class PersisterReady(TypedDict):
    """`ctl.persister|`: a persister (re)started; republish every unacked message now."""

    origin: str


class Revocation(TypedDict):
    """`ctl.revoke|`, HTTP gateway -> all: close the sessions of these (4001)."""

    tokens: list[str]
    workspaces: list[str]


class AuthChanged(TypedDict):
    """`ctl.auth|`, HTTP gateway -> all: these policies changed; forget cached lookups."""

    workspaces: list[str]


class RpcHeader(TypedDict):
    """What `hub.peer.BusPeer.request` adds to a request: its id and where to reply."""

    rid: str
    reply_to: str


class GiteaAsk(TypedDict):
    """What a gateway asks the Gitea worker: one action for one sender of a workspace."""

    ws: str
    sender: str
    action: str
    params: dict[str, Any]


class GiteaRpc(GiteaAsk, RpcHeader):
    """`rpc.gitea|`, gateways -> Gitea worker."""


class TelegramAsk(TypedDict):
    """What the HTTP gateway's webhook asks the Telegram bridge: store this Update."""

    update: dict[str, Any]


class TelegramRpc(TelegramAsk, RpcHeader):
    """`rpc.telegram|`, HTTP gateway -> Telegram bridge; answered once it is durable."""


class RpcReply(TypedDict):
    """`rep.<reply_to>|`, worker -> one requester: `result` or `error`."""

    rid: str | None
    result: NotRequired[Any]
    error: NotRequired[ErrorBody]
