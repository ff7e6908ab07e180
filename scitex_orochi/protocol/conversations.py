"""Conversations (PROTOCOL.md §10): DM channel names, message references, emoji, the
change events of a channel's seq stream and how they fold into a message's state.

Pure: no I/O, no clock (times are passed in). The gateways validate frames with these
rules, the persister folds stored events with them, and history shows their result.

- A DM channel is `dm:<p>|<q>` with two distinct participants, each `agent:<name>`
  or `human:<name>`, sorted (as upstream), so one pair has one channel.
- A message is named by its envelope `id` (a string, what dialect A knows) or its
  hub number `num` (an integer: dialect B's `id`, permalinks).
- Events: `reaction_update`, `message_edit`, `message_delete`, each carrying the
  channel's `seq`; `fold` applies them, in seq order, to a message's folded state.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from typing import Any, Literal

DM_PREFIX = "dm:"
PARTICIPANT_KINDS = ("agent", "human")
MAX_PARTICIPANT_NAME_CHARS = 128
MAX_EMOJI_CHARS = 32  # a few code points: a flag, a skin tone, a ZWJ sequence
MAX_MESSAGE_ID_CHARS = 255
MAX_NUM = 2**63 - 1

EVENT_TYPES = ("reaction_update", "message_edit", "message_delete")
EventKind = Literal["reaction", "edit", "delete"]
ReactionAction = Literal["add", "remove"]
# Format characters an emoji may hold: ZWJ sequences and variation selectors.
_EMOJI_FORMAT_OK = frozenset({"\u200d", "\ufe0e", "\ufe0f"})


class ConversationError(ValueError):
    """Input that breaks a conversation rule; `field` names what to blame."""

    def __init__(self, detail: str, field: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


# ---- DM channels ----------------------------------------------------------------------
def is_dm(channel: object) -> bool:
    return isinstance(channel, str) and channel.startswith(DM_PREFIX)


def participant(kind: str, name: str) -> str:
    """`agent:<name>` or `human:<name>`, checked."""
    key = f"{kind}:{name}"
    _check_participant(key, "participant")
    return key


def _check_participant(key: str, field: str) -> tuple[str, str]:
    kind, sep, name = key.partition(":")
    if not sep or kind not in PARTICIPANT_KINDS:
        raise ConversationError(f"{field} {key!r} must be agent:<name> or human:<name>", field)
    if not name or name != name.strip() or len(name) > MAX_PARTICIPANT_NAME_CHARS:
        raise ConversationError(
            f"{field} {key!r}: the name must be 1..{MAX_PARTICIPANT_NAME_CHARS} characters "
            "without edge spaces",
            field,
        )
    if any(c == "|" or c.isspace() or unicodedata.category(c)[0] == "C" for c in name):
        raise ConversationError(
            f"{field} {key!r}: the name cannot hold '|', spaces or control characters", field
        )
    if unicodedata.normalize("NFC", name) != name:
        raise ConversationError(f"{field} {key!r}: the name must be in NFC", field)
    return kind, name


def dm_channel(first: str, second: str) -> str:
    """The one channel of two participants (`agent:a`, `human:b`), in either order."""
    for key in (first, second):
        _check_participant(key, "participant")
    if first == second:
        raise ConversationError("a DM needs two different participants", "participant")
    low, high = sorted((first, second))
    return f"{DM_PREFIX}{low}|{high}"


def dm_participants(channel: str, field: str = "payload.channel") -> tuple[str, str]:
    """The two participants of a DM channel name; ConversationError if it is not one in
    canonical form (two distinct, valid, sorted participants)."""
    if not channel.startswith(DM_PREFIX):
        raise ConversationError(f"{channel!r} is not a DM channel (dm:<p>|<q>)", field)
    parts = channel[len(DM_PREFIX) :].split("|")
    if len(parts) != 2:
        raise ConversationError(
            f"{channel!r}: a DM channel names exactly two participants, dm:<p>|<q>", field
        )
    for key in parts:
        _check_participant(key, field)
    if parts[0] == parts[1]:
        raise ConversationError(f"{channel!r}: the two participants must differ", field)
    if parts[0] > parts[1]:
        raise ConversationError(
            f"{channel!r}: participants are sorted; the channel is "
            f"{DM_PREFIX}{parts[1]}|{parts[0]}",
            field,
        )
    return parts[0], parts[1]


def may_use_dm(channel: str, key: str) -> bool:
    """Whether the participant `key` (`agent:<name>`) is one of the DM's two."""
    return key in dm_participants(channel)


# ---- message references and emoji ---------------------------------------------------
@dataclass(frozen=True, slots=True)
class MessageRef:
    """A message named by its envelope id or by its hub number."""

    id: str | None = None
    num: int | None = None

    def __str__(self) -> str:
        return f"#{self.num}" if self.num is not None else repr(self.id)


def message_ref(value: object, field: str = "payload.message") -> MessageRef:
    """`"<id>"`, or a hub number as an integer (or its digits, as REST paths give it)."""
    if isinstance(value, bool):
        raise ConversationError(f"{field} must be a message id or number", field)
    if isinstance(value, int):
        if not 1 <= value <= MAX_NUM:
            raise ConversationError(f"{field} must be a positive message number", field)
        return MessageRef(num=value)
    if isinstance(value, str):
        if not value or len(value) > MAX_MESSAGE_ID_CHARS:
            raise ConversationError(f"{field} must be 1..{MAX_MESSAGE_ID_CHARS} characters", field)
        return MessageRef(id=value)
    raise ConversationError(f"{field} must be a message id (string) or number (integer)", field)


def check_emoji(value: object, field: str = "payload.emoji") -> str:
    """A short non-empty emoji (or `:name:`), NFC, no spaces or control characters."""
    if not isinstance(value, str) or not value:
        raise ConversationError(f"{field} must be a non-empty string", field)
    emoji = unicodedata.normalize("NFC", value)
    if len(emoji) > MAX_EMOJI_CHARS:
        raise ConversationError(f"{field} is longer than {MAX_EMOJI_CHARS} characters", field)
    for char in emoji:
        category = unicodedata.category(char)
        if (
            char.isspace()
            or category in ("Cc", "Cs", "Co", "Cn")
            or (category == "Cf" and char not in _EMOJI_FORMAT_OK)
        ):
            raise ConversationError(
                f"{field} cannot hold spaces, control or format characters", field
            )
    return emoji


def check_action(value: object, field: str = "payload.action") -> ReactionAction:
    if value is None or value == "add":
        return "add"
    if value == "remove":
        return "remove"
    raise ConversationError(f"{field} must be 'add' or 'remove'", field)


# ---- events and folding ---------------------------------------------------------------
def reaction_update(
    *,
    channel: str,
    seq: int,
    message: str,
    num: int,
    emoji: str,
    reactor: str,
    action: ReactionAction,
) -> dict[str, Any]:
    """The payload of a `reaction_update` event (PROTOCOL.md §10)."""
    return {
        "channel": channel,
        "seq": seq,
        "message": message,
        "num": num,
        "emoji": emoji,
        "reactor": reactor,
        "action": action,
    }


def message_edit(
    *,
    channel: str,
    seq: int,
    message: str,
    num: int,
    content: str,
    editor: str,
    edited_at: str,
) -> dict[str, Any]:
    """The payload of a `message_edit` event."""
    return {
        "channel": channel,
        "seq": seq,
        "message": message,
        "num": num,
        "content": content,
        "editor": editor,
        "edited_at": edited_at,
    }


def message_delete(
    *, channel: str, seq: int, message: str, num: int, deleted_by: str
) -> dict[str, Any]:
    """The payload of a `message_delete` event."""
    return {
        "channel": channel,
        "seq": seq,
        "message": message,
        "num": num,
        "deleted_by": deleted_by,
    }


SERVER_SENDER = "orochi-server"
_PAYLOAD_KEYS = {
    "reaction_update": ("channel", "seq", "message", "num", "emoji", "reactor", "action"),
    "message_edit": ("channel", "seq", "message", "num", "content", "editor", "edited_at"),
    "message_delete": ("channel", "seq", "message", "num", "deleted_by"),
}


def event_frame(event_type: str, ref: str, ts: str, payload: dict[str, Any]) -> str:
    """The envelope of a change event as JSON text: what the persister delivers live and
    what a gap fill rebuilds from the stored event, byte for byte."""
    frame = {"type": event_type, "sender": SERVER_SENDER, "id": ref, "ts": ts}
    body = {key: payload[key] for key in _PAYLOAD_KEYS[event_type]}
    return json.dumps({**frame, "payload": body}, ensure_ascii=False, separators=(",", ":"))


def frame_from_event_row(row: dict[str, Any]) -> str:
    """The delivered envelope of a history event row (`{"event", "id", "ts", ...}`)."""
    return event_frame(row["event"], row["id"], row["ts"], row)


def may_change(sender: str, actor: str, *, is_admin: bool) -> bool:
    """Only the original sender, or the admin token, edits or deletes a message."""
    return is_admin or actor == sender


def fold(message: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    """A history row's current state after its events, applied in seq order.

    `message` has `content` (and optionally `reactions`); each event is the payload of
    one of EVENT_TYPES with its `type`. Edits replace the content and set `edited_at`;
    a delete leaves a tombstone (`deleted: true`, no content) that later edits do not
    revive; reactions are `{emoji: [reactors]}` in the order first added, a reactor
    once per emoji. The input is not modified."""
    state = dict(message)
    reactions: dict[str, list[str]] = {
        emoji: list(who) for emoji, who in (message.get("reactions") or {}).items()
    }
    for event in sorted(events, key=lambda e: int(e["seq"])):
        kind = event.get("type")
        if kind == "message_delete":
            state["deleted"] = True
            state["content"] = ""
            state["deleted_by"] = event["deleted_by"]
        elif kind == "message_edit":
            if not state.get("deleted"):
                state["content"] = event["content"]
                state["edited_at"] = event["edited_at"]
        elif kind == "reaction_update":
            who = reactions.setdefault(event["emoji"], [])
            if event["action"] == "add":
                if event["reactor"] not in who:
                    who.append(event["reactor"])
            elif event["reactor"] in who:
                who.remove(event["reactor"])
            if not who:
                del reactions[event["emoji"]]
        else:
            raise ValueError(f"not a change event: {kind!r}")
    state["reactions"] = reactions
    return state
