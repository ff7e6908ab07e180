"""Pure mapping between inbound bus bodies, database rows and delivery bodies.

No I/O: `parse_inbound` validates an `in.` body, `build_message` turns it plus
its seq into the row to insert and the `dlv.` body to publish, and
`delivery_from_row` rebuilds the `dlv.` body of an already stored message.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any, TypeGuard

from scitex_orochi.hub import store_conv, store_push
from scitex_orochi.hub.bus_bodies import AckItem, Delivery, ErrorBody
from scitex_orochi.hub.errors import HubError
from scitex_orochi.hub.store_conv import Change, ChangeResult
from scitex_orochi.hub.store_engine import json_dumps
from scitex_orochi.protocol import conversations as conv
from scitex_orochi.protocol.codec import frame_from_row
from scitex_orochi.protocol.errors import ErrorCode
from scitex_orochi.protocol.mentions import extract_mentions

SENDER_TYPES = ("agent", "human")
INVALID_MESSAGE = ErrorCode.INVALID_MESSAGE
DUPLICATE_ID = ErrorCode.DUPLICATE_ID


class InvalidInbound(HubError, ValueError):
    """An inbound body that cannot be stored; `origin`/`msg_id`/`tk` say whom to tell."""

    code = ErrorCode.INVALID_MESSAGE

    def __init__(
        self,
        detail: str,
        origin: str | None = None,
        msg_id: str | None = None,
        tk: Any = None,
        workspace: str | None = None,
    ):
        super().__init__(detail)
        self.origin = origin
        self.msg_id = msg_id
        self.tk = tk
        self.workspace = workspace


@dataclass(slots=True)
class Inbound:
    """A validated `in.` body (`bus_bodies.InboundBody`): one message to store."""

    origin: str
    workspace: str
    sender_type: str
    mentions: list[str]
    frame: dict[str, Any]
    payload: dict[str, Any]
    msg_id: str
    sender: str
    channel: str
    tk: Any = None  # the submitting process's ticket, echoed in the ack

    @property
    def key(self) -> tuple[str, str]:
        """Identity of a message: ids are unique per workspace only."""
        return (self.workspace, self.msg_id)


def dumps(value: Any) -> str:
    """Compact JSON, as json.dumps(value, ensure_ascii=False, separators=(",", ":"))."""
    return json_dumps(value)


def _nonempty_str(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and value != ""


def parse_inbound(body: Any) -> Inbound:
    """Minimal validation of an `in.` body (the gateway validated the frame already).

    The common, valid case is checked in one expression; anything else goes
    through `_explain`, which names the first problem.
    """
    try:
        frame = body["frame"]
        payload = frame["payload"]
        origin, workspace, msg_id = body["origin"], body["ws"], frame["id"]
        sender, channel = frame["sender"], payload["channel"]
        content = payload.get("content", "")
        mentions = body.get("mentions")
        sender_type = body.get("sender_type") or "agent"
        if (
            type(origin) is str
            and origin
            and type(workspace) is str
            and workspace
            and "." not in workspace
            and "|" not in workspace
            and type(msg_id) is str
            and msg_id
            and type(sender) is str
            and sender
            and type(channel) is str
            and channel
            and "|" not in channel
            and frame.get("type") == "message"
            and (content is None or type(content) is str)
            and type(payload.get("metadata") or {}) is dict
            and type(payload.get("attachments") or []) is list
            and sender_type in SENDER_TYPES
            and type(mentions) is list
            and (not mentions or all(type(m) is str for m in mentions))
        ):
            return Inbound(
                origin,
                workspace,
                sender_type,
                mentions,
                frame,
                payload,
                msg_id,
                sender,
                channel,
                body.get("tk"),
            )
    except (KeyError, TypeError, AttributeError):
        pass
    return _explain(body)


def _explain(body: Any) -> Inbound:
    """The slow path of parse_inbound: raise InvalidInbound naming the first problem."""
    if not isinstance(body, dict):
        raise InvalidInbound("body is not a map")
    origin = body.get("origin") if _nonempty_str(body.get("origin")) else None
    frame = body.get("frame")
    msg_id = frame.get("id") if isinstance(frame, dict) and _nonempty_str(frame.get("id")) else None

    workspace = body.get("ws") if isinstance(body.get("ws"), str) else None

    def bad(detail: str) -> InvalidInbound:
        return InvalidInbound(detail, origin, msg_id, body.get("tk"), workspace)

    if origin is None:
        raise bad("missing origin")
    if not isinstance(frame, dict):
        raise bad("missing frame")
    if msg_id is None:
        raise bad("frame.id must be a non-empty string")
    if not _nonempty_str(workspace) or "." in workspace or "|" in workspace:
        raise bad("ws must be a non-empty string without '.' or '|'")
    if frame.get("type") != "message":
        raise bad("frame.type must be 'message'")
    sender = frame.get("sender")
    if not _nonempty_str(sender):
        raise bad("frame.sender must be a non-empty string")
    payload = frame.get("payload")
    if not isinstance(payload, dict):
        raise bad("frame.payload must be an object")
    channel = payload.get("channel")
    if not _nonempty_str(channel) or ("|" in channel and not _is_dm_name(channel)):
        raise bad("payload.channel must be a non-empty string (with '|' only in a DM's name)")
    content = payload.get("content", "")
    if content is not None and not isinstance(content, str):
        raise bad("payload.content must be a string")
    if not isinstance(payload.get("metadata", {}) or {}, dict):
        raise bad("payload.metadata must be an object")
    if not isinstance(payload.get("attachments", []) or [], list):
        raise bad("payload.attachments must be a list")
    sender_type = body.get("sender_type") or "agent"
    if sender_type not in SENDER_TYPES:
        raise bad("sender_type must be 'agent' or 'human'")
    mentions = body.get("mentions")
    if mentions is None:
        mentions = extract_mentions(content)
    elif not isinstance(mentions, list) or not all(isinstance(m, str) for m in mentions):
        raise bad("mentions must be a list of strings")
    return Inbound(
        origin,
        workspace,
        sender_type,
        mentions,
        frame,
        payload,
        msg_id,
        sender,
        channel,
        body.get("tk"),
    )


def _is_dm_name(channel: str) -> bool:
    try:
        conv.dm_participants(channel)
    except conv.ConversationError:
        return False
    return True


def parse_change(body: Any) -> Change:
    """An `in.` body whose frame is a `react`, `edit` or `delete` (PROTOCOL.md §10)."""
    if not isinstance(body, dict):
        raise InvalidInbound("body is not a map")
    origin = body.get("origin") if _nonempty_str(body.get("origin")) else None
    frame = body.get("frame")
    ref = frame.get("id") if isinstance(frame, dict) and _nonempty_str(frame.get("id")) else None
    workspace = body.get("ws") if isinstance(body.get("ws"), str) else None

    def bad(detail: str) -> InvalidInbound:
        return InvalidInbound(detail, origin, ref, body.get("tk"), workspace)

    if origin is None or not isinstance(frame, dict) or ref is None:
        raise bad("a change needs origin, frame and frame.id")
    if not _nonempty_str(workspace) or "." in workspace or "|" in workspace:
        raise bad("ws must be a non-empty string without '.' or '|'")
    kind = store_conv.KIND_OF.get(frame.get("type"))  # type: ignore[arg-type]
    sender, payload = frame.get("sender"), frame.get("payload")
    if kind is None or not _nonempty_str(sender) or not isinstance(payload, dict):
        raise bad("a change is a react, edit or delete frame with a sender and a payload")
    sender_type = body.get("sender_type") or "agent"
    if sender_type not in SENDER_TYPES:
        raise bad("sender_type must be 'agent' or 'human'")
    channel = payload.get("channel")
    try:
        target = conv.message_ref(payload.get("message"))
        emoji = conv.check_emoji(payload.get("emoji")) if kind == "reaction" else ""
        action = conv.check_action(payload.get("action")) if kind == "reaction" else "add"
    except conv.ConversationError as exc:
        raise bad(exc.detail) from None
    content = payload.get("content", "")
    if kind == "edit" and not isinstance(content, str):
        raise bad("payload.content must be a string")
    if channel is not None and not _nonempty_str(channel):
        raise bad("payload.channel must be a non-empty string")
    ts, ts_epoch = ts_and_epoch(None)  # the hub's clock: when the change was made
    return Change(
        origin=origin,
        workspace=workspace,
        tk=body.get("tk"),
        ref=ref,
        kind=kind,
        actor=sender,
        actor_type=sender_type,
        is_admin=body.get("admin") is True,
        target=target,
        channel=channel,
        ts=ts,
        ts_epoch=ts_epoch,
        emoji=emoji,
        action=action,
        content=content if kind == "edit" else "",
    )


def parse_subscription(body: Any) -> store_conv.Subscription:
    """An `in.` body recording a lasting subscription (gateway_ws.handlers._lasting)."""
    try:
        frame, payload = body["frame"], body["frame"]["payload"]
        origin, workspace, ref = body["origin"], body["ws"], frame["id"]
        agent, channel, action = frame["sender"], payload["channel"], payload["action"]
        if (
            all(_nonempty_str(v) for v in (origin, workspace, ref, agent, channel))
            and action in ("join", "leave")
            and isinstance(payload.get("mention_only", False), bool)
        ):
            return store_conv.Subscription(
                origin=origin,
                workspace=workspace,
                tk=body.get("tk"),
                ref=ref,
                agent=agent,
                channel=channel,
                join=action == "join",
                mention_only=payload.get("mention_only") is True,
                ts=ts_and_epoch(None)[0],
            )
    except (KeyError, TypeError):
        pass
    origin = body.get("origin") if isinstance(body, dict) else None
    raise InvalidInbound("a subscription needs sender, channel and action join|leave", origin)


MAX_FORGET_NAMES = 10_000


def parse_forget(body: Any) -> store_conv.Forget:
    """An `in.` body forgetting agents (`{type: "forget", payload: {names: [...]}}`)."""
    try:
        frame = body["frame"]
        origin, workspace, ref, names = (
            body["origin"],
            body["ws"],
            frame["id"],
            frame["payload"]["names"],
        )
        if (
            all(_nonempty_str(v) for v in (origin, workspace, ref))
            and isinstance(names, list)
            and len(names) <= MAX_FORGET_NAMES
            and all(_nonempty_str(n) for n in names)
        ):
            return store_conv.Forget(origin, workspace, body.get("tk"), ref, list(names))
    except (KeyError, TypeError):
        pass
    origin = body.get("origin") if isinstance(body, dict) else None
    raise InvalidInbound(f"a forget needs origin, ws, id and 1..{MAX_FORGET_NAMES} names", origin)


MAX_DIAGNOSES = 1000
DIAGNOSIS_FIELDS = {"status": 64, "reason": 2000, "source": 200, "by": 255}


def parse_diagnosis(body: Any) -> store_conv.Diagnosis:
    """An `in.` body reporting health (`{type: "diagnosis", payload: {updates: [{agent,
    status, reason, source, by, at}]}}`), checked again here: the bus is not the edge
    only for well-behaved processes."""
    try:
        frame = body["frame"]
        origin, workspace, ref = body["origin"], body["ws"], frame["id"]
        updates = frame["payload"]["updates"]
        if (
            all(_nonempty_str(v) for v in (origin, workspace, ref))
            and isinstance(updates, list)
            and 0 < len(updates) <= MAX_DIAGNOSES
        ):
            clean = [_diagnosis(u) for u in updates]
            return store_conv.Diagnosis(origin, workspace, body.get("tk"), ref, clean)
    except (KeyError, TypeError, ValueError):
        pass
    origin = body.get("origin") if isinstance(body, dict) else None
    raise InvalidInbound(
        f"a diagnosis needs origin, ws, id and 1..{MAX_DIAGNOSES} updates of "
        "{agent, status, at, reason?, source?, by?}",
        origin,
    )


PUSH_ENDPOINT_MAX = 2048  # the push_subscriptions columns' sizes
PUSH_FIELD_MAX = 255


def parse_push(body: Any) -> store_push.PushChange:
    """An `in.` body adding or removing a web push subscription (`{type: "push", sender:
    <person>, payload: {action: add|remove, endpoint, p256dh?, auth?}}`), from the HTTP
    gateway or the push worker: only with the admin flag (never an agent's frame)."""
    try:
        frame, payload = body["frame"], body["frame"]["payload"]
        origin, workspace, ref = body["origin"], body["ws"], frame["id"]
        action, endpoint = payload["action"], payload["endpoint"]
        if (
            body.get("admin") is True
            and all(_nonempty_str(v) for v in (origin, workspace, ref, endpoint))
            and action in store_push.ACTIONS
            and len(endpoint) <= PUSH_ENDPOINT_MAX
        ):
            change = store_push.PushChange(origin, workspace, body.get("tk"), ref, action, endpoint)
            if action == store_push.REMOVE:
                return change
            person, p256dh, auth = frame["sender"], payload["p256dh"], payload["auth"]
            if all(_nonempty_str(v) and len(v) <= PUSH_FIELD_MAX for v in (person, p256dh, auth)):
                change.person, change.p256dh, change.auth = person, p256dh, auth
                return change
    except (KeyError, TypeError):
        pass
    origin = body.get("origin") if isinstance(body, dict) else None
    raise InvalidInbound(
        "a push item needs the admin flag, action add|remove, an endpoint and (add) the "
        "person (sender), p256dh and auth",
        origin,
    )


def _diagnosis(update: Any) -> dict[str, Any]:
    agent, status, at = update["agent"], update["status"], update["at"]
    if not (_nonempty_str(agent) and len(agent) <= 255 and _nonempty_str(status)):
        raise ValueError("agent and status")
    if isinstance(at, bool) or not isinstance(at, int | float):
        raise ValueError("at")
    out: dict[str, Any] = {"agent": agent, "at": float(at)}
    for key, limit in DIAGNOSIS_FIELDS.items():
        value = update.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            raise ValueError(key)
        out[key] = value or ""
    return out


def push_ack(change: store_push.PushChange) -> AckItem:
    if change.error is not None:
        code, detail = change.error
        return error_ack(change.ref, code, detail, change.tk, change.workspace)
    return AckItem(tk=change.tk, id=change.ref, ws=change.workspace, outcome=change.outcome)


def change_ack(result: ChangeResult) -> AckItem:
    """The durable answer to a change: its event's seq, or what it found, or its refusal."""
    change = result.change
    if result.error is not None:
        code, detail = result.error
        return error_ack(change.ref, code, detail, change.tk, change.workspace)
    item = AckItem(tk=change.tk, id=change.ref, ws=change.workspace, outcome=result.outcome)
    if result.channel is not None:
        item["channel"] = result.channel
    if result.seq is not None:
        item["seq"] = result.seq
    if result.num is not None:
        item["num"] = result.num
    if result.dup:
        item["dup"] = True
    return item


def event_delivery(result: ChangeResult) -> Delivery | None:
    """The `dlv.` item of a change that made an event."""
    if result.frame is None or result.seq is None or result.channel is None:
        return None
    change = result.change
    return Delivery(
        ws=change.workspace,
        channel=result.channel,
        seq=result.seq,
        id=change.ref,
        sender=change.actor,
        mentions=[],
        frame=result.frame,
        num=result.num or 0,
        event=store_conv.EVENT_TYPE_OF[change.kind],
    )


def ts_and_epoch(ts: Any, now: float | None = None) -> tuple[str, float]:
    """The envelope's ts kept as is with its epoch; now when missing or unparsable."""
    if isinstance(ts, str) and ts:
        try:
            parsed = datetime.fromisoformat(ts.strip())
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return ts, parsed.timestamp()
        except ValueError:
            pass
    epoch = time.time() if now is None else now
    if isinstance(ts, str) and ts:
        return ts, epoch
    return datetime.fromtimestamp(epoch, UTC).isoformat(), epoch


# Frame and payload keys the fast path of build_message spells out itself.
_FRAME_KEYS = frozenset(("type", "sender", "id", "ts", "payload"))
_PAYLOAD_KEYS = frozenset(
    ("channel", "content", "metadata", "attachments", "seq", "mentions", "sender_type")
)
_EMPTY_MAP: dict[str, Any] = {}
_EMPTY_LIST: list[Any] = []


def build_message(
    msg: Inbound, seq: int, num: int, thread: tuple[int, str] | None = None
) -> tuple[tuple[Any, ...], Delivery]:
    """(insert parameters in Store.INSERT_COLUMNS order, `dlv.` body) of a new message,
    hub number `num`; a reply has `thread` (its root's num and id) in its payload.

    The delivered envelope is the frame as sent with `seq` and `mentions` added to
    its payload, and content, metadata and attachments added when missing (as
    history replays them). Each JSON value is encoded once and serves both the row
    and the envelope, which is spliced from those pieces unless the agent sent keys
    beyond the documented ones or values of other types.
    """
    frame, payload = msg.frame, msg.payload
    ts, ts_epoch = ts_and_epoch(frame.get("ts"))
    content = payload.get("content") or ""
    mentions_json = dumps(msg.mentions)
    metadata_json = dumps(payload.get("metadata") or {})
    attachments_json = dumps(payload.get("attachments") or [])
    params = (
        num,
        msg.msg_id,
        msg.workspace,
        msg.channel,
        seq,
        ts,
        ts_epoch,
        msg.sender,
        msg.sender_type,
        content,
        mentions_json,
        metadata_json,
        attachments_json,
    )
    if (
        thread is None
        and _FRAME_KEYS.issuperset(frame)
        and _PAYLOAD_KEYS.issuperset(payload)
        and type(payload.get("content", "")) is str
        and type(payload.get("metadata", _EMPTY_MAP)) is dict
        and type(payload.get("attachments", _EMPTY_LIST)) is list
    ):
        enc = encode_basestring
        frame_json = (
            f'{{"type":"message","sender":{enc(msg.sender)},"id":{enc(msg.msg_id)},'
            f'"ts":{enc(ts)},"payload":{{"channel":{enc(msg.channel)},'
            f'"content":{enc(content)},"metadata":{metadata_json},'
            f'"attachments":{attachments_json},"seq":{seq},"mentions":{mentions_json},'
            f'"sender_type":"{msg.sender_type}"}}}}'
        )
    else:
        # Keys beyond the documented ones, or values of other types: kept as sent.
        full = dict(payload)
        full.setdefault("content", "")
        full.setdefault("metadata", {})
        full.setdefault("attachments", [])
        full.update(seq=seq, mentions=msg.mentions, sender_type=msg.sender_type)
        if thread is not None:
            full["thread"] = {"root": thread[1], "num": thread[0]}
        envelope = dict(frame)
        envelope.update(ts=ts, payload=full)
        frame_json = dumps(envelope)
    delivery = Delivery(
        ws=msg.workspace,
        channel=msg.channel,
        seq=seq,
        id=msg.msg_id,
        sender=msg.sender,
        mentions=msg.mentions,
        frame=frame_json,
        num=num,
    )
    return params, delivery


def delivery_from_row(row: dict[str, Any]) -> Delivery:
    """The `dlv.` item of a stored message (row as returned by Store.find_messages)."""
    return Delivery(
        ws=row["workspace_id"],
        channel=row["channel"],
        seq=row["seq"],
        id=row["msg_id"],
        sender=row["sender"],
        mentions=row["mentions"],
        frame=frame_from_row(row),
        num=row["num"],
    )


def ack_body(msg: Inbound, delivery: Delivery, dup: bool) -> AckItem:
    """The durable ack of `msg`, addressed by its submitter's ticket."""
    return AckItem(
        tk=msg.tk,
        id=delivery["id"],
        ws=delivery["ws"],
        channel=delivery["channel"],
        seq=delivery["seq"],
        dup=dup,
        num=delivery["num"],
    )


def error_ack(
    msg_id: str, code: str, detail: str, tk: Any = None, workspace: str | None = None
) -> AckItem:
    return AckItem(tk=tk, id=msg_id, ws=workspace, error=ErrorBody(code=code, detail=detail))
