"""Conversations in the store (docs/conversations.md): folded history rows, message
references, and the persister's writes of changes, replies and DM messages.

`fold_rows` turns history rows into their current state (reactions, reply counts,
thread roots) with three indexed lookups per page. `write` is the persister's
conversation path: one transaction for a run of items, each a change (reaction,
edit, delete: the channel's next seq in `channel_events` plus its effect) or a
message that needs the database to be stored (a reply, whose root is looked up;
a DM's first message, which records its participants). Rules come from the pure
`scitex_orochi.protocol.conversations`; a refused item is a result with an error,
never an exception (exceptions are database failures: the whole run is retried).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from scitex_orochi.hub.tables import (
    channel_events,
    dm_participants,
    message_edits,
    messages,
    reactions,
    subscriptions,
)
from scitex_orochi.protocol import conversations as conv
from scitex_orochi.protocol.errors import ErrorCode

KIND_OF = {"react": "reaction", "edit": "edit", "delete": "delete"}
EVENT_TYPE_OF = {"reaction": "reaction_update", "edit": "message_edit", "delete": "message_delete"}
FOLD_CHUNK = 500

_MESSAGE_COLUMNS = (
    messages.c.pk,
    messages.c.msg_id,
    messages.c.workspace_id,
    messages.c.channel,
    messages.c.sender,
    messages.c.thread_root,
    messages.c.deleted,
    messages.c.content,
)


# ---- reading --------------------------------------------------------------------------
def fold_rows(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Complete history rows (from `store._row_dict`, with `num` and the private
    `_thread_root`) in place: `thread` on replies, `reply_count` on roots, `reactions`."""
    if not rows:
        return
    nums = [r["num"] for r in rows]
    by_num = {r["num"]: r for r in rows}
    for start in range(0, len(nums), FOLD_CHUNK):
        chunk = nums[start : start + FOLD_CHUNK]
        got = conn.execute(
            sa.select(reactions.c.message_num, reactions.c.emoji, reactions.c.reactor)
            .where(reactions.c.message_num.in_(chunk))
            .order_by(reactions.c.message_num, reactions.c.created_at, reactions.c.reactor)
        )
        for num, emoji, reactor in got:
            by_num[num].setdefault("reactions", {}).setdefault(emoji, []).append(reactor)
        by_ws: dict[str, list[int]] = {}
        for num in chunk:
            by_ws.setdefault(by_num[num]["_ws"], []).append(num)
        for workspace_id, ws_nums in by_ws.items():
            counts = conn.execute(
                sa.select(messages.c.thread_root, sa.func.count())
                .where(messages.c.workspace_id == workspace_id, messages.c.thread_root.in_(ws_nums))
                .group_by(messages.c.thread_root)
            )
            for root, count in counts:
                by_num[root]["reply_count"] = int(count)
    roots = {r["_thread_root"] for r in rows if r["_thread_root"] is not None}
    root_ids: dict[int, str] = {}
    for root in roots:
        if root in by_num:
            root_ids[root] = by_num[root]["msg_id"]
    missing = [n for n in roots if n not in root_ids]
    for start in range(0, len(missing), FOLD_CHUNK):
        chunk = missing[start : start + FOLD_CHUNK]
        for pk, msg_id in conn.execute(
            sa.select(messages.c.pk, messages.c.msg_id).where(messages.c.pk.in_(chunk))
        ):
            root_ids[pk] = msg_id
    for row in rows:
        root = row.pop("_thread_root")
        del row["_ws"]
        if root is not None and root in root_ids:
            row["thread"] = {"root": root_ids[root], "num": root}


def find_message(conn: Connection, workspace_id: str, ref: conv.MessageRef) -> Any:
    """The stored message a reference names, inside the workspace; None if none."""
    query = sa.select(*_MESSAGE_COLUMNS).where(messages.c.workspace_id == workspace_id)
    if ref.num is not None:
        query = query.where(messages.c.pk == ref.num)
    else:
        query = query.where(messages.c.msg_id == ref.id)
    return conn.execute(query).first()


def parse_ref(value: object) -> conv.MessageRef | None:
    """A reference from `metadata.reply_to` (an id, a num, or a num's digits); None if it
    cannot name a message (then it stays opaque metadata, as before threads existed)."""
    if isinstance(value, str) and value.isdigit() and len(value) < 19:
        value = int(value)
    try:
        return conv.message_ref(value)
    except conv.ConversationError:
        return None


# ---- writing: the persister's conversation path ----------------------------------------
@dataclass(slots=True)
class Change:
    """A validated react/edit/delete from the bus (persister.changes.parse_change)."""

    origin: str
    workspace: str
    tk: Any
    ref: str  # the frame's id: one change per (workspace, ref)
    kind: str  # reaction | edit | delete
    actor: str
    actor_type: str
    is_admin: bool
    target: conv.MessageRef
    channel: str | None
    ts: str
    ts_epoch: float
    emoji: str = ""
    action: str = "add"
    content: str = ""

    @property
    def actor_key(self) -> str:
        return f"{self.actor_type}:{self.actor}"


@dataclass(slots=True)
class ChangeResult:
    """What one change did: an event (`seq`, `frame`), nothing (`outcome` existed or
    not_found), or a refusal (`error`)."""

    change: Change
    outcome: str = ""
    seq: int | None = None
    num: int | None = None
    channel: str | None = None
    message_id: str | None = None
    frame: str | None = None  # the event envelope delivered on the channel
    dup: bool = False
    error: tuple[str, str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


Alloc = Callable[[str, str], int]  # (workspace, channel) -> the next seq


def event_frame(kind: str, ref: str, ts: str, payload: dict[str, Any]) -> str:
    return conv.event_frame(EVENT_TYPE_OF[kind], ref, ts, payload)


def event_rows(
    conn: Connection, workspace_id: str, channel: str, after_seq: int, limit: int
) -> list[dict[str, Any]]:
    """A channel's change events after `after_seq`, oldest first, as history rows:
    `{"event": <type>, "id": <ref>, "ts", **payload}` (conv.frame_from_event_row)."""
    ev, m = channel_events.c, messages.c
    rows = conn.execute(
        sa.select(ev.seq, ev.kind, ev.ref, ev.ts, ev.actor, ev.data, ev.message_num, m.msg_id)
        .select_from(channel_events.join(messages, m.pk == ev.message_num))
        .where(ev.workspace_id == workspace_id, ev.channel == channel, ev.seq > after_seq)
        .order_by(ev.seq)
        .limit(limit)
    )
    out = []
    for r in rows:
        payload = event_payload(
            r.kind, channel, r.seq, r.msg_id, r.message_num, r.actor, r.ts, r.data or {}
        )
        out.append({"event": EVENT_TYPE_OF[r.kind], "id": r.ref, "ts": r.ts, **payload})
    return out


def event_payload(
    kind: str,
    channel: str,
    seq: int,
    message: str,
    num: int,
    actor: str,
    ts: str,
    data: dict[str, Any],
) -> dict[str, Any]:
    if kind == "reaction":
        return conv.reaction_update(
            channel=channel,
            seq=seq,
            message=message,
            num=num,
            emoji=data["emoji"],
            reactor=actor,
            action=data["action"],
        )
    if kind == "edit":
        return conv.message_edit(
            channel=channel,
            seq=seq,
            message=message,
            num=num,
            content=data["content"],
            editor=actor,
            edited_at=ts,
        )
    return conv.message_delete(channel=channel, seq=seq, message=message, num=num, deleted_by=actor)


def _outcome_of(kind: str, data: dict[str, Any]) -> str:
    if kind == "reaction":
        return "added" if data.get("action") == "add" else "removed"
    return "edited" if kind == "edit" else "deleted"


def apply_change(conn: Connection, change: Change, alloc: Alloc) -> ChangeResult:
    """One change inside the caller's transaction."""
    result = ChangeResult(change)
    ev = channel_events.c
    prior = conn.execute(
        sa.select(ev.channel, ev.seq, ev.kind, ev.message_num, ev.data).where(
            ev.workspace_id == change.workspace, ev.ref == change.ref
        )
    ).first()
    if prior is not None:  # a republished frame: answer as the first time
        result.dup, result.seq, result.num = True, prior.seq, prior.message_num
        result.channel = prior.channel
        result.outcome = _outcome_of(prior.kind, prior.data or {})
        return result
    target = find_message(conn, change.workspace, change.target)
    if target is None:
        result.error = (ErrorCode.UNKNOWN_MESSAGE, f"no message {change.target} in this workspace")
        return result
    result.num, result.channel, result.message_id = target.pk, target.channel, target.msg_id
    if change.channel is not None and change.channel != target.channel:
        result.error = (
            ErrorCode.INVALID_FIELD,
            f"message {change.target} is in {target.channel}, not {change.channel}",
        )
        return result
    if conv.is_dm(target.channel) and not change.is_admin:
        if change.actor_key not in conv.dm_participants(target.channel):
            result.error = (ErrorCode.NOT_A_MEMBER, f"{change.actor} is not in this DM")
            return result
    if target.deleted:
        result.error = (ErrorCode.MESSAGE_DELETED, f"message {change.target} was deleted")
        return result
    data: dict[str, Any]
    if change.kind == "reaction":
        data = {"emoji": change.emoji, "action": change.action}
        key = (
            reactions.c.message_num == target.pk,
            reactions.c.emoji == change.emoji,
            reactions.c.reactor == change.actor,
        )
        there = conn.execute(sa.select(reactions.c.reactor).where(*key)).first() is not None
        if change.action == "add":
            if there:
                result.outcome = "existed"
                return result
            conn.execute(
                reactions.insert().values(
                    message_num=target.pk,
                    emoji=change.emoji,
                    reactor=change.actor,
                    workspace_id=change.workspace,
                    created_at=change.ts,
                )
            )
        else:
            if not there:
                result.outcome = "not_found"
                return result
            conn.execute(reactions.delete().where(*key))
    else:
        if not conv.may_change(target.sender, change.actor, is_admin=change.is_admin):
            result.error = (
                ErrorCode.FORBIDDEN,
                f"only {target.sender} (or the admin token) may {change.kind} this message",
            )
            return result
        if change.kind == "edit":
            data = {"content": change.content}
            conn.execute(
                message_edits.insert().values(
                    message_num=target.pk,
                    workspace_id=change.workspace,
                    editor=change.actor,
                    previous_content=target.content,
                    edited_at=change.ts,
                )
            )
            conn.execute(
                messages.update()
                .where(messages.c.pk == target.pk)
                .values(content=change.content, edited_at=change.ts)
            )
        else:
            data = {}
            conn.execute(
                messages.update()
                .where(messages.c.pk == target.pk)
                .values(content="", attachments=[], deleted=True)
            )
            conn.execute(reactions.delete().where(reactions.c.message_num == target.pk))
    seq = alloc(change.workspace, target.channel)
    conn.execute(
        channel_events.insert().values(
            workspace_id=change.workspace,
            channel=target.channel,
            seq=seq,
            kind=change.kind,
            message_num=target.pk,
            actor=change.actor,
            ts=change.ts,
            ts_epoch=change.ts_epoch,
            data=data,
            ref=change.ref,
        )
    )
    result.seq = seq
    result.outcome = _outcome_of(change.kind, data)
    payload = event_payload(
        change.kind, target.channel, seq, target.msg_id, target.pk, change.actor, change.ts, data
    )
    result.frame = event_frame(change.kind, change.ref, change.ts, payload)
    return result


@dataclass(slots=True)
class Subscription:
    """A lasting subscription to record (`join`) or drop (`leave`): not acked to clients,
    no seq; written on the conversation path so the persister stays the one writer."""

    origin: str
    workspace: str
    tk: Any
    ref: str
    agent: str
    channel: str
    join: bool
    mention_only: bool
    ts: str


@dataclass(slots=True)
class Forget:
    """Operators forget agents: their registry entries go (store_registry.forget)."""

    origin: str
    workspace: str
    tk: Any
    ref: str
    names: list[str]
    count: int = 0
    pending: set[str] = field(default_factory=set)  # unwritten entries it dropped


@dataclass(slots=True)
class Diagnosis:
    """Reported health (`POST /api/agents/health/`): each update becomes its agent's
    `last_diagnosis` in the registry (store_registry.diagnose), acked with the count."""

    origin: str
    workspace: str
    tk: Any
    ref: str
    updates: list[dict[str, Any]]  # {agent, status, reason, source, by, at}
    count: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)  # unwritten registry entries


def apply_subscription(conn: Connection, sub: Subscription) -> None:
    s = subscriptions.c
    key = (s.workspace_id == sub.workspace, s.agent == sub.agent, s.channel == sub.channel)
    if not sub.join:
        conn.execute(subscriptions.delete().where(*key))
        return
    there = conn.execute(sa.select(s.mention_only).where(*key)).first()
    if there is None:
        conn.execute(
            subscriptions.insert().values(
                workspace_id=sub.workspace,
                agent=sub.agent,
                channel=sub.channel,
                mention_only=sub.mention_only,
                created_at=sub.ts,
                updated_at=sub.ts,
            )
        )
    elif bool(there.mention_only) != sub.mention_only:
        conn.execute(
            subscriptions.update()
            .where(*key)
            .values(mention_only=sub.mention_only, updated_at=sub.ts)
        )


def lasting_subscriptions(
    conn: Connection, workspace_id: str, agent: str
) -> list[tuple[str, bool]]:
    s = subscriptions.c
    rows = conn.execute(
        sa.select(s.channel, s.mention_only)
        .where(s.workspace_id == workspace_id, s.agent == agent, s.can_read.is_(True))
        .order_by(s.created_at, s.channel)
    )
    return [(r.channel, bool(r.mention_only)) for r in rows]


def record_dm(conn: Connection, workspace_id: str, channel: str, now: str) -> None:
    """A DM's participants, on its first write (idempotent)."""
    d = dm_participants.c
    known = set(
        conn.execute(
            sa.select(d.participant).where(d.workspace_id == workspace_id, d.channel == channel)
        ).scalars()
    )
    for key in conv.dm_participants(channel):
        if key not in known:
            conn.execute(
                dm_participants.insert().values(
                    workspace_id=workspace_id, channel=channel, participant=key, created_at=now
                )
            )


def thread_root_of(conn: Connection, workspace_id: str, channel: str, reply_to: object) -> Any:
    """(root num, root id) of the thread `reply_to` names in `channel`, or None: a reply to
    a reply joins its root's thread; a reference to nothing (or to another channel) is
    kept as opaque metadata."""
    ref = parse_ref(reply_to)
    if ref is None:
        return None
    parent = find_message(conn, workspace_id, ref)
    if parent is None or parent.channel != channel:
        return None
    if parent.thread_root is None:
        return (parent.pk, parent.msg_id)
    root = conn.execute(
        sa.select(messages.c.pk, messages.c.msg_id).where(messages.c.pk == parent.thread_root)
    ).first()
    return (root.pk, root.msg_id) if root is not None else (parent.pk, parent.msg_id)


def stored_ids(conn: Connection, workspace_id: str, ids: Iterable[str]) -> dict[str, Any]:
    """Stored rows of these message ids (full history columns), by id."""
    from scitex_orochi.hub.store import row_columns, row_dict  # noqa: PLC0415 (cycle)

    ids = list(ids)
    if not ids:
        return {}
    rows = conn.execute(
        sa.select(*row_columns(), messages.c.workspace_id).where(
            messages.c.workspace_id == workspace_id, messages.c.msg_id.in_(ids)
        )
    )
    out = {}
    for row in rows:
        item = row_dict(row)
        item["workspace_id"] = row.workspace_id
        out[row.msg_id] = item
    return out
