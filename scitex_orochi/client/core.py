"""The agent client's pure parts: messages, frames, reply matching, backoff, resume cursors.

No sockets here. `client.py` feeds frames in and writes what these return, so
every rule about ordering, duplicates and replies is tested with literal input.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from scitex_orochi.client.errors import ServerError
from scitex_orochi.protocol.constants import SERVER_NAME, new_id, now_iso
from scitex_orochi.protocol.conversations import EVENT_TYPES, PARTICIPANT_KINDS, dm_channel
from scitex_orochi.protocol.mentions import extract_mentions

SERVER_SENDER = SERVER_NAME

# What a request waits for besides its ack: the reply the hub sends before the ack.
EXPECTS_HISTORY = "history"
EXPECTS_PRESENCE = "presence"
# What `register` lists in payload.capabilities to receive the change events.
EVENTS_CAPABILITY = "events"


def build_frame(
    type_: str, sender: str, payload: dict[str, Any], frame_id: str | None = None
) -> dict[str, Any]:
    """An envelope of PROTOCOL.md §2."""
    return {
        "type": type_,
        "sender": sender,
        "payload": payload,
        "id": frame_id or new_id(),
        "ts": now_iso(),
    }


def encode(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


def parse_ts(ts: object) -> datetime | None:
    if not isinstance(ts, str) or not ts:
        return None
    try:
        parsed = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _map(value: object) -> dict[str, Any]:
    """`value` if it is an object, else an empty one: frames come from the network."""
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


@dataclass
class Message:
    """A channel message as an agent sees it: delivered live, resumed, or from history."""

    channel: str
    content: str
    sender: str
    mentions: list[str] = field(default_factory=list)
    seq: int | None = None
    id: str = ""
    ts: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    attachments: list[Any] = field(default_factory=list)
    sender_type: str | None = None
    type: str = "message"
    payload: dict[str, Any] = field(default_factory=dict, repr=False)
    # The conversation fields (docs/conversations.md), absent from older hubs' frames.
    num: int | None = None
    thread: dict[str, Any] | None = None

    @property
    def reply_to(self) -> str | int | None:
        """The message this one answers (`metadata.reply_to`), if it is a reply."""
        ref = self.metadata.get("reply_to")
        return ref if isinstance(ref, str | int) and not isinstance(ref, bool) else None

    @property
    def edited_at(self) -> str | None:
        value = self.payload.get("edited_at")
        return value if isinstance(value, str) else None

    @property
    def deleted(self) -> bool:
        return self.payload.get("deleted") is True

    @property
    def reactions(self) -> dict[str, list[Any]]:
        """`{emoji: [reactor, ...]}` on a history row (folded state)."""
        value = self.payload.get("reactions")
        return value if isinstance(value, dict) else {}

    @classmethod
    def from_frame(cls, frame: dict[str, Any]) -> Message:
        """From a delivered envelope (`payload.seq` added by our hub)."""
        payload = _map(frame.get("payload"))
        content = payload.get("content", "")
        content = content if isinstance(content, str) else str(content)
        mentions = payload.get("mentions")
        return cls(
            channel=str(payload.get("channel", "")),
            content=content,
            sender=str(frame.get("sender", "")),
            mentions=list(mentions) if isinstance(mentions, list) else extract_mentions(content),
            seq=_int_or_none(payload.get("seq")),
            id=str(frame.get("id", "")),
            ts=str(frame.get("ts", "")),
            metadata=_map(payload.get("metadata")),
            attachments=_list(payload.get("attachments")),
            sender_type=payload.get("sender_type"),
            type=str(frame.get("type", "message")),
            payload=payload,
            num=_int_or_none(payload.get("num")),
            thread=_map(payload.get("thread")) or None,
        )

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Message:
        """From a history row: `{msg_id, ts, channel, sender, content, mentions, seq, ...}`."""
        content = row.get("content", "")
        content = content if isinstance(content, str) else str(content)
        mentions = row.get("mentions")
        return cls(
            channel=str(row.get("channel", "")),
            content=content,
            sender=str(row.get("sender", "")),
            mentions=list(mentions) if isinstance(mentions, list) else extract_mentions(content),
            seq=_int_or_none(row.get("seq")),
            id=str(row.get("msg_id") or row.get("id") or ""),
            ts=str(row.get("ts", "")),
            metadata=_map(row.get("metadata")),
            attachments=_list(row.get("attachments")),
            sender_type=row.get("sender_type"),
            payload=dict(row),
            num=_int_or_none(row.get("num")),
            thread=_map(row.get("thread")) or None,
        )

    @property
    def time(self) -> datetime | None:
        return parse_ts(self.ts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ts": self.ts,
            "channel": self.channel,
            "sender": self.sender,
            "content": self.content,
            "mentions": list(self.mentions),
            "seq": self.seq,
            "metadata": self.metadata,
            "attachments": self.attachments,
            "sender_type": self.sender_type,
            # only when the hub gave them: an unchanged message reads as before
            **({"num": self.num} if self.num is not None else {}),
            **({"thread": self.thread} if self.thread else {}),
            **{k: self.payload[k] for k in FOLDED_FIELDS if self.payload.get(k)},
        }


# History rows' folded state (docs/conversations.md), copied by `Message.to_dict`.
FOLDED_FIELDS = ("edited_at", "deleted", "reactions", "reply_count")


@dataclass(frozen=True)
class Sent:
    """What `send` returns once the hub has the message on disk."""

    id: str
    channel: str
    seq: int | None
    dup: bool = False
    num: int | None = None  # the hub number, when the hub's ack carries it


@dataclass(frozen=True)
class Changed:
    """What `react`, `edit` and `delete` return once the change is committed: the ack's
    `outcome` (added, existed, removed, not_found, edited, deleted), the event's `seq`
    in the channel's stream and the message's hub number `num`."""

    ref: str
    outcome: str
    seq: int | None = None
    num: int | None = None

    @classmethod
    def from_ack(cls, ack: dict[str, Any]) -> Changed:
        return cls(
            ref=str(ack.get("ref") or ""),
            outcome=str(ack.get("outcome") or ""),
            seq=_int_or_none(ack.get("seq")),
            num=_int_or_none(ack.get("num")),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "outcome": self.outcome, "seq": self.seq, "num": self.num}


@dataclass
class Event:
    """A change to a channel (`reaction_update`, `message_edit`, `message_delete`), from a
    hub that was asked for them (`OrochiClient(events=True)`); `payload` holds the rest:
    emoji, reactor, action / content, editor, edited_at / deleted_by."""

    type: str
    channel: str
    seq: int | None
    message: str
    num: int | None
    sender: str = SERVER_SENDER
    ts: str = ""
    payload: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_payload(
        cls, type_: str, payload: dict[str, Any], sender: str = SERVER_SENDER, ts: str = ""
    ) -> Event:
        return cls(
            type=type_,
            channel=str(payload.get("channel", "")),
            seq=_int_or_none(payload.get("seq")),
            message=str(payload.get("message", "")),
            num=_int_or_none(payload.get("num")),
            sender=sender,
            ts=ts,
            payload=payload,
        )

    @classmethod
    def from_frame(cls, frame: dict[str, Any]) -> Event:
        return cls.from_payload(
            str(frame.get("type", "")),
            _map(frame.get("payload")),
            str(frame.get("sender", SERVER_SENDER)),
            str(frame.get("ts", "")),
        )

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Event:
        """From a history row of `query` with `after_seq`: `{"event": type, ...fields}`."""
        fields = {k: v for k, v in row.items() if k != "event"}
        return cls.from_payload(str(row.get("event", "")), fields, ts=str(row.get("ts", "")))

    def get(self, key: str, default: Any = None) -> Any:
        """A field of the event's payload (`emoji`, `reactor`, `content`, ...)."""
        return self.payload.get(key, default)

    def to_dict(self) -> dict[str, Any]:
        return {**self.payload, "type": self.type, "sender": self.sender}


@dataclass
class Thread:
    """A thread: its root and the replies, oldest first (REST `GET /api/threads/<num>/`)."""

    root: Message
    replies: list[Message]

    @classmethod
    def from_rest(cls, data: object) -> Thread:
        body = _map(data)
        rows = [r for r in _list(body.get("replies")) if isinstance(r, dict)]
        replies = [Message.from_row(r) for r in rows]
        replies.sort(key=lambda m: (m.seq or 0, m.ts))
        return cls(root=Message.from_row(_map(body.get("root"))), replies=replies)

    def to_dict(self) -> dict[str, Any]:
        return {"root": self.root.to_dict(), "replies": [m.to_dict() for m in self.replies]}


# A message as the calls that name one take it: a Message or Sent, its envelope id, or its
# hub number (an integer, or a string of digits).
MessageLike = Message | Sent | str | int


def message_ref(message: MessageLike) -> str | int:
    """The wire name of a message (docs/conversations.md): a number for digits, else the id."""
    if isinstance(message, Message):
        if message.id:
            return message.id
        if message.num is not None:
            return message.num
        raise ValueError("this message has neither an id nor a number")
    if isinstance(message, Sent):
        return message.id
    if isinstance(message, bool) or not isinstance(message, str | int):
        raise TypeError(f"a message is a Message, Sent, id or number, not {message!r}")
    text = message.strip() if isinstance(message, str) else ""
    if isinstance(message, str) and not (text.isascii() and text.isdigit()):
        if not text:
            raise ValueError("empty message id")
        return text
    number = int(text) if isinstance(message, str) else message
    if number < 1:
        raise ValueError(f"message numbers are positive, not {number}")
    return number


def channel_of(message: MessageLike) -> str | None:
    return message.channel if isinstance(message, Message | Sent) and message.channel else None


def participant_key(name: str) -> str:
    """`bob` → `agent:bob`; `agent:bob` and `human:ann` stay as they are."""
    kind, sep, _ = name.partition(":")
    return name if sep and kind in PARTICIPANT_KINDS else f"agent:{name}"


def dm_channel_for(me: str, other: str) -> str:
    """The DM channel of agent `me` and `other` (`dm:agent:a|agent:b`); ValueError
    (ConversationError) for a bad name or a DM with oneself."""
    return dm_channel(participant_key(me), participant_key(other))


def react_payload(ref: str | int, emoji: str, remove: bool = False) -> dict[str, Any]:
    return {"message": ref, "emoji": emoji, "action": "remove" if remove else "add"}


def edit_payload(ref: str | int, content: str) -> dict[str, Any]:
    return {"message": ref, "content": content}


def delete_payload(ref: str | int) -> dict[str, Any]:
    return {"message": ref}


def search_payload(
    words: str,
    channel: str | None = None,
    sender: str | None = None,
    limit: int | None = None,
    before: str | None = None,
    after: str | None = None,
) -> dict[str, Any]:
    """A `query` that searches (docs/conversations.md): only the filters given."""
    payload: dict[str, Any] = {"search": words}
    for key, value in (
        ("channel", channel),
        ("sender", sender),
        ("limit", limit),
        ("before", before),
        ("after", after),
    ):
        if value is not None:
            payload[key] = value
    return payload


def reply_metadata(ref: str | int, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    return {**(metadata or {}), "reply_to": ref}


def item_from_row(row: dict[str, Any]) -> Message | Event:
    """A history row: an event row (`"event": ...`, only to clients with the events
    capability) or a message."""
    return Event.from_row(row) if row.get("event") in EVENT_TYPES else Message.from_row(row)


@dataclass(frozen=True)
class Reply:
    """The ack of a request and the reply frame's payload that came before it, if any."""

    ack: dict[str, Any]
    reply: dict[str, Any] | None = None


def classify(frame: dict[str, Any]) -> str:
    """Which kind of incoming frame this is: ack, error, history, presence, gitea_result,
    message (a channel message for us), event (a change to a channel) or other."""
    type_ = frame.get("type")
    payload = _map(frame.get("payload"))
    if type_ in ("ack", "error", "presence", "gitea_result"):
        return str(type_)
    if type_ in EVENT_TYPES:
        return "event"
    if type_ == "message":
        if frame.get("sender") == SERVER_SENDER and "history" in payload:
            return EXPECTS_HISTORY
        return "message"
    return "other"


def ref_of(frame: dict[str, Any]) -> str | None:
    payload = frame.get("payload")
    ref = payload.get("ref") if isinstance(payload, dict) else None
    return ref if isinstance(ref, str) and ref else None


@dataclass
class _Pending:
    frame: dict[str, Any]
    future: asyncio.Future[Reply]
    expects: str | None
    resend: bool
    reply: dict[str, Any] | None = None


class Requests:
    """Requests in flight, matched to their replies by `ref`, whatever arrives in between.

    A reply without `ref` (an older hub) goes to the oldest request waiting for
    that kind of reply: the hub sends each reply before the ack of its request.
    """

    def __init__(self) -> None:
        self._pending: dict[str, _Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, frame_id: object) -> bool:
        return frame_id in self._pending

    def add(
        self,
        frame: dict[str, Any],
        future: asyncio.Future[Reply],
        expects: str | None = None,
        resend: bool = True,
    ) -> None:
        self._pending[frame["id"]] = _Pending(frame, future, expects, resend)

    def discard(self, frame_id: str) -> None:
        self._pending.pop(frame_id, None)

    def on_reply(self, kind: str, frame: dict[str, Any]) -> bool:
        """Attach a history/presence/gitea reply to its request. False if none wants it."""
        ref = ref_of(frame)
        payload = _map(frame.get("payload"))
        if ref is not None:
            entry = self._pending.get(ref)
            if entry is None:
                return False
            entry.reply = payload
            return True
        for entry in self._pending.values():  # insertion order = send order
            if entry.expects == kind and entry.reply is None:
                entry.reply = payload
                return True
        return False

    def on_ack(self, frame: dict[str, Any]) -> bool:
        ref = ref_of(frame)
        entry = self._pending.pop(ref, None) if ref else None
        if entry is None:
            return False
        if not entry.future.done():
            payload = _map(frame.get("payload"))
            if payload.get("status") == "error":  # read, not carried out (its error had no ref)
                entry.future.set_exception(error_from_payload(payload))
            else:
                entry.future.set_result(Reply(ack=payload, reply=entry.reply))
        return True

    def on_error(self, frame: dict[str, Any]) -> bool:
        ref = ref_of(frame)
        entry = self._pending.pop(ref, None) if ref else None
        if entry is None:
            return False
        payload = _map(frame.get("payload"))
        if not entry.future.done():
            entry.future.set_exception(error_from_payload(payload))
        return True

    def to_resend(self) -> list[dict[str, Any]]:
        """Frames to send again, in their first order, after a reconnect."""
        return [e.frame for e in self._pending.values() if e.resend and not e.future.done()]

    def drop_not_resent(self, exc: BaseException) -> None:
        for frame_id, entry in list(self._pending.items()):
            if not entry.resend:
                del self._pending[frame_id]
                if not entry.future.done():
                    entry.future.set_exception(exc)

    def fail_all(self, exc: BaseException) -> None:
        pending, self._pending = self._pending, {}
        for entry in pending.values():
            if not entry.future.done():
                entry.future.set_exception(exc)


NOT_FOUND_CODES = ("UNKNOWN_CHANNEL", "NO_SUCH_CHANNEL", "UNKNOWN_MESSAGE")


def error_from_payload(payload: dict[str, Any]) -> ServerError:
    from scitex_orochi.client.errors import NotFound

    code = str(payload.get("code") or "ERROR")
    detail = str(payload.get("detail") or payload.get("message") or "")
    if "NOT_FOUND" in code.upper() or code.upper() in NOT_FOUND_CODES:
        return NotFound(code, detail)
    return ServerError(code, detail)


@dataclass(frozen=True)
class Backoff:
    """Jittered exponential backoff: attempt n waits between half and all of
    min(max_s, initial_s * factor**n), so many clients do not reconnect in step."""

    initial_s: float = 0.1
    factor: float = 2.0
    max_s: float = 10.0

    def ceiling(self, attempt: int) -> float:
        return min(self.max_s, self.initial_s * self.factor ** min(attempt, 64))

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        ceiling = self.ceiling(attempt)
        return ceiling / 2 + rand() * ceiling / 2


class Cursors:
    """The last `seq` seen per channel: drops duplicates, spots gaps, and decides what a
    resume yields, so every message reaches `listen()` once and in order.

    Subscribed channels are tracked: a jump in `seq` is a gap to fill from history.
    Other channels (we only get mentions there) keep a cursor but gaps are normal.
    """

    def __init__(self, me: str) -> None:
        self.me = me
        self.tracked: set[str] = set()
        self.last: dict[str, int] = {}
        self._filling: dict[str, list[Message]] = {}
        self._gaps: list[str] = []
        # Events yielded live beyond the cursor (out of order, or during a fill): a fill
        # that returns them again skips them.
        self._ahead: dict[str, set[int]] = {}

    def track(self, channel: str) -> None:
        self.tracked.add(channel)

    def untrack(self, channel: str) -> None:
        self.tracked.discard(channel)
        self.last.pop(channel, None)

    def note_head(self, channel: str, seq: int | None) -> None:
        """The channel's newest seq when we joined it: resume starts after it."""
        if seq is not None and seq > self.last.get(channel, -1):
            self.last[channel] = seq

    def note_own(self, channel: str, seq: int | None) -> None:
        """Our own message took this seq; it is never delivered to us."""
        last = self.last.get(channel)
        if seq is not None and last is not None and seq == last + 1:
            self.last[channel] = seq

    def accept(self, msg: Message) -> list[Message]:
        """A live message: what to yield now (nothing while its channel is being filled)."""
        if msg.seq is None:
            return [msg]
        channel = msg.channel
        if channel in self._filling:
            self._filling[channel].append(msg)
            return []
        last = self.last.get(channel)
        if last is not None and msg.seq <= last:
            return []
        if last is not None and channel in self.tracked and msg.seq > last + 1:
            self._filling[channel] = [msg]
            self._gaps.append(channel)
            return []
        self.last[channel] = msg.seq
        self._prune(channel)
        return [msg]

    def accept_event(self, event: Event) -> bool:
        """A live event: False if it was seen already. It never waits for a fill (events
        do not hold messages back); the next seq advances the cursor like a message."""
        if event.seq is None:
            return True
        channel, seq = event.channel, event.seq
        last = self.last.get(channel)
        ahead = self._ahead.setdefault(channel, set())
        if (last is not None and seq <= last) or seq in ahead:
            return False
        if channel not in self._filling and (last is None or seq == last + 1):
            self.last[channel] = seq
            self._prune(channel)
        else:
            ahead.add(seq)
        return True

    def _prune(self, channel: str) -> None:
        """Forget events the cursor passed; step over those right after it."""
        ahead = self._ahead.get(channel)
        if not ahead or channel in self._filling:
            return
        last = self.last.get(channel)
        if last is None:
            return
        while last + 1 in ahead:
            last += 1
        self.last[channel] = last
        ahead.difference_update({s for s in ahead if s <= last})

    def take_gaps(self) -> list[str]:
        gaps, self._gaps = self._gaps, []
        return gaps

    def resumable(self) -> list[str]:
        return sorted(self.last)

    def begin_fill(self, channel: str) -> int | None:
        """Hold live messages of the channel; returns the seq to query after."""
        self._filling.setdefault(channel, [])
        return self.last.get(channel)

    def is_filling(self, channel: str) -> bool:
        return channel in self._filling

    def fill(self, channel: str, rows: Iterable[Message | Event]) -> list[Message | Event]:
        """Rows from history (any order): the ones this agent should see, oldest first."""
        out: list[Message | Event] = []
        ahead = self._ahead.get(channel, set())
        for item in sorted((m for m in rows if m.seq is not None), key=lambda m: m.seq or 0):
            assert item.seq is not None
            if item.seq <= self.last.get(channel, -1):
                continue
            self.last[channel] = item.seq
            if isinstance(item, Event):
                if item.seq not in ahead:
                    out.append(item)
            elif self._wants(channel, item):
                out.append(item)
        self._prune(channel)
        return out

    def end_fill(self, channel: str) -> list[Message | Event]:
        """Release the live messages held during the fill, without duplicates."""
        held = self._filling.pop(channel, [])
        return self.fill(channel, held)

    def _wants(self, channel: str, msg: Message) -> bool:
        if msg.sender == self.me:
            return False
        return channel in self.tracked or self.me in msg.mentions
