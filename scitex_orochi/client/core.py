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
from scitex_orochi.protocol.mentions import extract_mentions

SERVER_SENDER = SERVER_NAME

# What a request waits for besides its ack: the reply the hub sends before the ack.
EXPECTS_HISTORY = "history"
EXPECTS_PRESENCE = "presence"


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
        }


@dataclass(frozen=True)
class Sent:
    """What `send` returns once the hub has the message on disk."""

    id: str
    channel: str
    seq: int | None
    dup: bool = False


@dataclass(frozen=True)
class Reply:
    """The ack of a request and the reply frame's payload that came before it, if any."""

    ack: dict[str, Any]
    reply: dict[str, Any] | None = None


def classify(frame: dict[str, Any]) -> str:
    """Which kind of incoming frame this is: ack, error, history, presence, gitea_result,
    message (a channel message for us) or other (events we do not act on)."""
    type_ = frame.get("type")
    payload = _map(frame.get("payload"))
    if type_ in ("ack", "error", "presence", "gitea_result"):
        return str(type_)
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


def error_from_payload(payload: dict[str, Any]) -> ServerError:
    from scitex_orochi.client.errors import NotFound

    code = str(payload.get("code") or "ERROR")
    detail = str(payload.get("detail") or payload.get("message") or "")
    if "NOT_FOUND" in code or code in ("UNKNOWN_CHANNEL", "NO_SUCH_CHANNEL"):
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
        return [msg]

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

    def fill(self, channel: str, rows: Iterable[Message]) -> list[Message]:
        """Rows from history (any order): the ones this agent should see, oldest first."""
        out: list[Message] = []
        for msg in sorted((m for m in rows if m.seq is not None), key=lambda m: m.seq or 0):
            assert msg.seq is not None
            if msg.seq <= self.last.get(channel, -1):
                continue
            self.last[channel] = msg.seq
            if self._wants(channel, msg):
                out.append(msg)
        return out

    def end_fill(self, channel: str) -> list[Message]:
        """Release the live messages held during the fill, without duplicates."""
        held = self._filling.pop(channel, [])
        return self.fill(channel, held)

    def _wants(self, channel: str, msg: Message) -> bool:
        if msg.sender == self.me:
            return False
        return channel in self.tracked or self.me in msg.mentions
