"""The frame handlers of the agent gateway's core (pure): one per frame type, in `HANDLERS`.

A handler is `(core, client, frame, found) -> Actions`: a function of the frame,
the client's session and what its lookups found so far (core.py says how a
handler that needs a lookup is run again with its result). Limits and identity
checks raise `ProtocolError`, which the core turns into the client's refusal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bridges.gitea import authority
from scitex_orochi.hub.bus_bodies import GiteaAsk
from scitex_orochi.protocol import codec
from scitex_orochi.protocol import conversations as conv
from scitex_orochi.protocol.constants import now_iso
from scitex_orochi.protocol.errors import ErrorCode
from scitex_orochi.protocol.mentions import broadcasts, extract_mentions

from .actions import (
    Actions,
    Found,
    GiteaCall,
    GiteaGrant,
    HistoryPage,
    Search,
    Submit,
    Subscriptions,
    needing,
)
from .session import fleet_record

if TYPE_CHECKING:
    from .core import Client, FrameCore

GITEA_SILENT = "the Gitea worker did not answer in time"
REGISTER_RECORD_KEYS = (*codec.AGENT_FIELDS, "channels", "orochi_current_task")

Handler = Callable[["FrameCore", Any, codec.Envelope, Found], Actions]


def on_register(core: FrameCore, client: Client, frame: codec.Envelope, found: Found) -> Actions:
    p = frame.payload
    core.check_channels(len(p["channels"]), frame.id)
    core.check_record({k: p.get(k) for k in REGISTER_RECORD_KEYS}, frame.id)
    name = frame.sender or ""
    for channel in p["channels"]:
        check_dm(name, channel, frame.id)
    need = core.check_identity(client, name, frame.id, found)
    if need is not None:
        return needing(need)
    if Subscriptions not in found:
        return needing(Subscriptions(client.session.workspace, name))
    store_down = False
    try:
        lasting = found[Subscriptions]
    except Exception:  # noqa: BLE001 - the store is down: register without them
        lasting, store_down = [], True
    if client.dialect.exclusive_names or lasting or store_down:
        return core.register(client, frame, lasting)
    # Dialect B: a name with no lasting membership (seen the first time) gets #general,
    # kept like a subscription.
    actions = core.register(client, frame, [(codec.DEFAULT_CHANNEL, False)])
    if client.session.name == name and codec.DEFAULT_CHANNEL in client.session.channels:
        actions.submit = _lasting(client, frame.id, codec.DEFAULT_CHANNEL, "join")
    return actions


def check_dm(name: str, channel: str | None, ref: str) -> None:
    """Only a DM's participants may subscribe to, read, write or react in it."""
    if (
        channel is not None
        and conv.is_dm(channel)
        and f"agent:{name}" not in (conv.dm_participants(channel))
    ):
        raise codec.ProtocolError(
            ErrorCode.NOT_A_MEMBER, f"{name} is not a participant of {channel}", ref
        )


def on_message(core: FrameCore, client: Client, frame: codec.Envelope, found: Found) -> Actions:
    frame.sender = client.session.name  # bound to the registered identity
    channel = frame.payload["channel"]
    check_dm(frame.sender or "", channel, frame.id)
    actions = Actions()
    actions.submit = Submit(client.session.workspace, frame.to_dict(), frame.id)
    content = frame.payload.get("content")
    if isinstance(content, str) and "@" in content:
        mentions = extract_mentions(content)
        loud = broadcasts(mentions, channel)
        if loud and not core.may_broadcast(client):
            # Over the sender's broadcast rate: delivered, but wakes no mention-only member.
            actions.submit.mentions = [m for m in mentions if m not in loud]
    return actions  # the ack follows the persister's (FrameCore.acked)


def on_change(core: FrameCore, client: Client, frame: codec.Envelope, found: Found) -> Actions:
    """react, edit, delete: the persister checks the message and the rules, in the
    transaction that writes the event; the ack (or refusal) follows its answer."""
    session = client.session
    frame.sender = session.name
    check_dm(frame.sender or "", frame.payload.get("channel"), frame.id)
    actions = Actions()
    actions.submit = Submit(session.workspace, frame.to_dict(), frame.id, admin=session.is_admin)
    return actions


def _lasting(
    client: Client, ref: str, channel: str, action: str, mention_only: bool = False
) -> Submit:
    """The persister's record of a subscription, so that a reconnect gets it back; the
    client's ack follows its commit."""
    session = client.session
    envelope = {
        "type": "subscription",
        "sender": session.name,
        "id": ref,
        "ts": now_iso(),
        "payload": {"channel": channel, "action": action, "mention_only": mention_only},
    }
    return Submit(session.workspace, envelope, ref)


def on_subscribe(core: FrameCore, client: Client, frame: codec.Envelope, found: Found) -> Actions:
    channel, session = frame.payload["channel"], client.session
    mention_only = frame.payload.get("mention_only") is True
    check_dm(session.name or "", channel, frame.id)
    if channel not in session.channels:
        core.check_channels(len(session.channels) + 1, frame.id)
        core.check_record({**session.record, "channels": [*session.channels, channel]}, frame.id)
    actions = Actions()
    changed = session.subscribe(channel, mention_only)
    done = client.dialect.subscribed(
        frame.id, "subscribe", channel, list(session.channels), mention_only
    )
    if changed:
        core.roster.join(session.workspace, channel, client, quiet=mention_only)
        actions.publishes.append(core.presence(client, "channels"))
        actions.submit = _lasting(client, frame.id, channel, "join", mention_only)
        actions.submit.done = done
        return actions  # acked once the subscription is on disk
    return actions.send(done if done is not None else client.dialect.ack(frame.id))


def on_unsubscribe(core: FrameCore, client: Client, frame: codec.Envelope, found: Found) -> Actions:
    channel, session = frame.payload["channel"], client.session
    actions = Actions()
    if session.unsubscribe(channel):
        core.roster.leave(session.workspace, channel, client)
        actions.publishes.append(core.presence(client, "channels"))
    actions.submit = _lasting(client, frame.id, channel, "leave")
    actions.submit.done = client.dialect.subscribed(
        frame.id, "unsubscribe", channel, list(session.channels), False
    )
    return actions  # acked once the lasting subscription is gone too


def on_query(core: FrameCore, client: Client, frame: codec.Envelope, found: Found) -> Actions:
    """History, paged so that no reply exceeds the frame size published clients take;
    `more: true` says older rows (or, with after_seq, later ones) were left out."""
    p = frame.payload
    check_dm(client.session.name or "", p.get("channel"), frame.id)
    if p.get("search") is not None:
        return on_search(core, client, frame, found)
    if HistoryPage not in found:
        return needing(
            HistoryPage(
                client.session.workspace,
                p["channel"],
                max_bytes=core.cfg.ws.max_reply_bytes,
                limit=p.get("limit") or codec.DEFAULT_QUERY_LIMIT,
                since=p.get("since"),
                after_seq=p.get("after_seq"),
                before_seq=p.get("before_seq"),
                events=client.session.wants_events and p.get("after_seq") is not None,
            )
        )
    try:
        rows, more = found[HistoryPage]
    except ValueError as exc:
        raise codec.ProtocolError(ErrorCode.INVALID_FIELD, str(exc), frame.id) from None
    return (
        Actions()
        .send(client.dialect.history(p["channel"], rows, frame.id, more))
        .send(client.dialect.ack(frame.id))
    )


def on_search(core: FrameCore, client: Client, frame: codec.Envelope, found: Found) -> Actions:
    """`query` with `payload.search`: messages by words, in channels this agent may read
    (DMs of others never), best first."""
    p, session = frame.payload, client.session
    if Search not in found:
        return needing(
            Search(
                session.workspace,
                p["search"],
                p.get("channel"),
                p.get("sender"),
                p.get("before"),
                p.get("after"),
                p.get("limit") or codec.DEFAULT_QUERY_LIMIT,
            )
        )
    try:
        rows = found[Search]
    except ValueError as exc:
        raise codec.ProtocolError(ErrorCode.INVALID_FIELD, str(exc), frame.id) from None
    me = session.participant
    visible = [
        {k: v for k, v in row.items() if k != "rank"}
        for row in rows
        if not conv.is_dm(row["channel"]) or me in conv.dm_participants(row["channel"])
    ]
    encoded, more = codec.page_rows(visible, core.cfg.ws.max_reply_bytes)
    return (
        Actions()
        .send(client.dialect.history(p.get("channel") or "", encoded, frame.id, more, p["search"]))
        .send(client.dialect.ack(frame.id))
    )


def on_presence(core: FrameCore, client: Client, frame: codec.Envelope, found: Found) -> Actions:
    agents = core.replica.channel_map(client.session.workspace)
    return Actions().send(client.dialect.presence(agents)).send(client.dialect.ack(frame.id))


def on_heartbeat(core: FrameCore, client: Client, frame: codec.Envelope, found: Found) -> Actions:
    client.session.heartbeat(frame.payload)
    actions = Actions()
    actions.publishes.append(core.presence(client, "heartbeat"))
    return actions.send(client.dialect.ack(frame.id))


def on_status_update(
    core: FrameCore, client: Client, frame: codec.Envelope, found: Found
) -> Actions:
    session = client.session
    core.check_record(
        {**session.record, **{k: v for k, v in frame.payload.items() if isinstance(v, str)}},
        frame.id,
    )
    session.status(frame.payload)
    actions = Actions()
    actions.publishes.append(core.presence(client, "status"))
    return actions.send(client.dialect.ack(frame.id))


def on_gitea(core: FrameCore, client: Client, frame: codec.Envelope, found: Found) -> Actions:
    """A Gitea action: the authority check against the grant as the store has it now (not
    as cached when connecting), then request/reply with the Gitea worker, answered when
    the reply comes without holding up the client's next frames."""
    if not core.cfg.gitea.url:
        raise codec.ProtocolError(
            ErrorCode.GITEA_NOT_CONFIGURED,
            "Gitea is not configured on this hub "
            "(set SCITEX_OROCHI_GITEA_URL and SCITEX_OROCHI_GITEA_TOKEN)",
            frame.id,
        )
    action, params = frame.payload["action"], frame.payload.get("params") or {}
    session = client.session
    grant = None
    if not session.is_admin:
        if GiteaGrant not in found:
            return needing(GiteaGrant(client.token))
        grant = found[GiteaGrant]
    try:
        authority.check(action, params, is_admin=session.is_admin, grant=grant)
    except authority.GiteaForbidden as exc:
        raise codec.ProtocolError(ErrorCode.FORBIDDEN, exc.detail, frame.id) from None
    if GiteaCall not in found:
        return needing(
            GiteaCall(
                GiteaAsk(
                    ws=session.workspace, sender=session.name or "", action=action, params=params
                )
            )
        )
    try:
        reply = found[GiteaCall]
    except TimeoutError:
        reply = {"error": {"code": ErrorCode.GITEA_API_ERROR, "detail": GITEA_SILENT}}
    actions = Actions()
    if reply.get("error"):
        err = reply["error"]
        extra = {"status": err["status"]} if "status" in err else {}
        actions.send(
            client.dialect.error(
                err.get("code", ErrorCode.GITEA_API_ERROR),
                str(err.get("detail", "")),
                frame.id,
                **extra,
            )
        )
    else:
        result = authority.filter_result(
            action, params, reply.get("result"), is_admin=session.is_admin, grant=grant
        )
        actions.send(client.dialect.gitea_result(action, result, frame.id))
    return actions.send(client.dialect.ack(frame.id))


# ---- dialect B's liveness frames: applied to the presence record, answered with nothing ----
def _registered(client: Client, frame: codec.Envelope) -> None:
    if client.session.name is None:
        raise codec.ProtocolError(
            ErrorCode.NOT_REGISTERED, f"send 'register' before '{frame.type}'", frame.id
        )


def _published(publish: tuple[bytes, Any]) -> Actions:
    actions = Actions()
    actions.publishes.append(publish)
    return actions


def on_task_update(core: FrameCore, client: Client, frame: codec.Envelope, found: Found) -> Actions:
    _registered(client, frame)
    client.session.record["current_task"] = frame.payload["task"]
    return _published(core.presence(client, "status"))


def on_subagents_update(
    core: FrameCore, client: Client, frame: codec.Envelope, found: Found
) -> Actions:
    _registered(client, frame)
    record = client.session.record
    record["subagent_count"] = frame.payload["count"]
    subagents = frame.payload["subagents"]
    core.check_record({**record, "subagents": subagents}, frame.id)
    fleet_record(record)["subagents"] = subagents
    return _published(core.presence(client, "status"))


def on_pong(core: FrameCore, client: Client, frame: codec.Envelope, found: Found) -> Actions:
    """The answer to the hub's `ping {ts}`: its round trip, from the echoed hub time."""
    return _rtt(core, client, frame, "rtt_ms", frame.payload.get("ts"))


def on_echo_pong(core: FrameCore, client: Client, frame: codec.Envelope, found: Found) -> Actions:
    """The answer to the hub's `echo {nonce}`: its round trip, from when it was sent."""
    return _rtt(core, client, frame, "echo_rtt_ms", frame.payload.get("sent"))


def _rtt(
    core: FrameCore, client: Client, frame: codec.Envelope, key: str, sent: float | None
) -> Actions:
    if client.session.name is None or sent is None:
        return Actions()
    rtt = (core.wall() - sent) * 1000.0
    if not 0.0 <= rtt <= 3_600_000.0:  # not an echo of ours (a clock or a forgery)
        return Actions()
    fleet_record(client.session.record)[key] = round(rtt, 3)
    return _published(core.presence(client, "heartbeat"))


HANDLERS: dict[str, Handler] = {
    "register": on_register,
    "message": on_message,
    "subscribe": on_subscribe,
    "unsubscribe": on_unsubscribe,
    "query": on_query,
    "presence": on_presence,
    "heartbeat": on_heartbeat,
    "status_update": on_status_update,
    "gitea": on_gitea,
    "react": on_change,
    "edit": on_change,
    "delete": on_change,
    # dialect B only (gateway_ws/dialect_b.py makes these envelopes; A's codec never does)
    "task_update": on_task_update,
    "subagents_update": on_subagents_update,
    "pong": on_pong,
    "echo_pong": on_echo_pong,
}
