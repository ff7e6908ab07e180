"""The agent protocol as pure functions: parse and validate frames, build replies.

No sockets here. `parse_frame` turns one WebSocket text frame into an `Envelope`
or raises `ProtocolError` with the code the client sees; the builders return
JSON text ready to send. Shapes follow PROTOCOL.md §2–§3.
"""

from __future__ import annotations

import json
import math
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Final

from . import conversations as conv
from .constants import SERVER_NAME, Close, new_id, now_iso
from .errors import ErrorCode

# Close codes by name, for the gateways (the enum is `constants.Close`).
CLOSE_GOING_AWAY = Close.GOING_AWAY
CLOSE_TOO_BIG = Close.TOO_BIG
CLOSE_REPLACED = Close.REPLACED
CLOSE_AUTH_FAILED = Close.AUTH_FAILED
CLOSE_REAPED = Close.REAPED
CLOSE_REGISTER_TIMEOUT = Close.REGISTER_TIMEOUT
CLOSE_KICKED = Close.KICKED
CLOSE_SLOW_CONSUMER = Close.SLOW_CONSUMER
CLOSE_TOO_MANY_CONNECTIONS = Close.TOO_MANY_CONNECTIONS
CLOSE_DUPLICATE = Close.DUPLICATE

MAX_ID_CHARS = 128
MAX_TS_CHARS = 64
MAX_NAME_CHARS = 128
MAX_CHANNEL_CHARS = 200
MAX_TASK_CHARS = 200
MAX_QUERY_LIMIT = 1000
MAX_REGISTER_CHANNELS = 1000  # a frame's own bound; the gateway enforces its setting
MAX_ATTACHMENTS = 32
MAX_ATTACHMENT_KEYS = 32
MAX_ATTACHMENT_STRING = 4096
INT_MIN, INT_MAX = -(2**63), 2**64 - 1  # what msgpack and the databases carry
DEFAULT_QUERY_LIMIT = 50
DEFAULT_CHANNEL = "#general"

CLIENT_TYPES = frozenset(
    {
        "register",
        "message",
        "subscribe",
        "unsubscribe",
        "query",
        "presence",
        "heartbeat",
        "status_update",
        "gitea",
        "react",
        "edit",
        "delete",
    }
)
# Frames that act under an identity and so need a `register` first.
NEEDS_IDENTITY = frozenset(
    {
        "message",
        "subscribe",
        "unsubscribe",
        "heartbeat",
        "status_update",
        "gitea",
        "react",
        "edit",
        "delete",
    }
)
# Changes to a stored message (PROTOCOL.md §10): written by the persister like a message.
CHANGE_TYPES = frozenset({"react", "edit", "delete"})
# What a `register` may ask for in payload.capabilities; others are ignored.
CAPABILITIES = frozenset({"events"})
MAX_CAPABILITIES = 16
MAX_SEARCH_CHARS = 500
HEARTBEAT_KEYS = (
    "cpu_count",
    "cpu_model",
    "load_avg_1m",
    "load_avg_5m",
    "load_avg_15m",
    "mem_free_mb",
    "mem_total_mb",
    "mem_used_percent",
    "disk_used_percent",
)
AGENT_FIELDS: Final = ("agent_id", "machine", "role", "model", "project", "multiplexer")

# Names nobody may take: the server's own.
SERVER_NAMES = frozenset({SERVER_NAME, "orochi"})
# Names agents may not register: people, bridges and the REST API post under them,
# and mentions of them address groups.
RESERVED_AGENT_NAMES = SERVER_NAMES | frozenset(
    {
        "api",
        "dashboard",
        "telegram",
        "gitea",
        "admin",
        "system",
        "human",
        "all",
        "everyone",
        "here",
        "channel",
    }
)
# Prefixes of DM participant keys (`dm:agent:a|human:b`).
RESERVED_NAME_PREFIXES = ("agent:", "human:", "dm:")
ATTACHMENT_STRING_KEYS = ("url", "filename", "mime_type", "file_id", "kind", "name")
# Characters a name may not contain anywhere: control, format (bidi overrides,
# zero-width), surrogates, unassigned, private use, line and paragraph separators.
_BAD_NAME_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Cn", "Co", "Zl", "Zp"})


class ProtocolError(Exception):
    """A frame the server refuses; `code` and `detail` go to the client in an error frame.

    `field` names the input to blame when one is (`payload.content`, `sender`), so a
    REST answer can name it without reading the detail. Not a `HubError`: this pure
    package imports nothing of the hub (`scitex_orochi.hub.errors`).
    """

    def __init__(
        self,
        code: ErrorCode,
        detail: str,
        ref: str | None = None,
        *,
        field: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = ErrorCode(code)
        self.detail = detail
        self.ref = ref
        self.field = field
        self.extra = extra  # more payload fields of the error frame (e.g. retry_after_s)


@dataclass
class Envelope:
    """A client frame, parsed and validated: `{type, sender, id, ts, payload}`."""

    type: str
    id: str
    ts: str
    sender: str | None
    payload: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The envelope as the bus carries it (the `frame` of an `in.` body)."""
        return {
            "type": self.type,
            "sender": self.sender,
            "id": self.id,
            "ts": self.ts,
            "payload": self.payload,
        }


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _invalid(detail: str, ref: str | None, field: str | None) -> ProtocolError:
    return ProtocolError(ErrorCode.INVALID_FIELD, detail, ref, field=field)


def find_bad_value(value: Any, path: str = "") -> tuple[str, str] | None:
    """(path, problem) of the first value the hub cannot carry, or None.

    JSON lets a client send what msgpack, the databases or a browser cannot take:
    lone surrogates (`"\\ud800"`), NaN and Infinity, integers past 64 bits. One such
    value once stopped a gateway's presence snapshots for every workspace, so every
    frame and body is checked here, at the edge. Iterative: no recursion limit.
    """
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        where, item = stack.pop()
        kind = type(item)
        if kind is str:
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return where or "value", "contains a lone surrogate (not valid Unicode)"
        elif kind is float:
            if not math.isfinite(item):
                return where or "value", "must be a finite number (not NaN or Infinity)"
        elif kind is int:
            if not INT_MIN <= item <= INT_MAX:
                return where or "value", "is an integer outside 64 bits"
        elif kind is dict:
            for key, sub in item.items():
                if type(key) is str and not key.isascii():
                    try:
                        key.encode("utf-8")
                    except UnicodeEncodeError:
                        return where or "value", "has a key with a lone surrogate"
                stack.append((f"{where}.{key}" if where else str(key), sub))
        elif kind is list:
            stack.extend((f"{where}[{i}]", sub) for i, sub in enumerate(item))
    return None


def check_value(value: Any, path: str, ref: str | None = None) -> None:
    """Raise INVALID_FIELD naming the first value the hub cannot carry."""
    bad = find_bad_value(value, path)
    if bad is not None:
        raise _invalid(f"{bad[0]} {bad[1]}", ref, bad[0])


class _Unencodable(ValueError):
    """Raised inside the JSON scanner for a number the hub cannot carry."""


def _checked_int(text: str) -> int:
    value = int(text)
    if len(text) > 18 and not INT_MIN <= value <= INT_MAX:
        raise _Unencodable(text)
    return value


def _checked_float(text: str) -> float:
    value = float(text)
    if value == math.inf or value == -math.inf:  # a literal overflows, it is never NaN
        raise _Unencodable(text)
    return value


def _refuse_constant(name: str) -> Any:
    raise _Unencodable(name)


# The C scanner calls these only for numbers and for NaN/Infinity: checking values as
# they are parsed costs next to nothing, where a regex over every frame cost 11 µs.
_DECODER = json.JSONDecoder(
    parse_int=_checked_int, parse_float=_checked_float, parse_constant=_refuse_constant
)


def loads_checked(text: str) -> tuple[Any, bool]:
    """(value, suspect): the JSON value, and whether it may hold something the hub
    cannot carry (then `find_bad_value` names it). Only an escape that starts a
    surrogate (`\\ud...`) or an out-of-range number makes a frame suspect."""
    try:
        return _DECODER.decode(text), "\\ud" in text or "\\uD" in text
    except _Unencodable:
        return json.loads(text), True


def normalize_name(value: str) -> str:
    return value if value.isascii() else unicodedata.normalize("NFC", value)


def check_name(
    value: object, field: str = "sender", ref: str | None = None, *, agent: bool = True
) -> str:
    """A valid name in NFC: 1..MAX_NAME_CHARS characters, no control, format, bidi or
    zero-width characters, no leading or trailing spaces, no `|`. `agent` names may
    not be reserved ones (server, people, bridges, groups); every name may not be the
    server's. Raises INVALID_FIELD naming `field`."""
    if not isinstance(value, str) or not value:
        raise _invalid(f"{field} (the name) must be a non-empty string", ref, field)
    name = normalize_name(value)
    if len(name) > MAX_NAME_CHARS:
        raise _invalid(f"{field} must be at most {MAX_NAME_CHARS} characters", ref, field)
    if name != name.strip():
        raise _invalid(f"{field} cannot start or end with spaces", ref, field)
    if (
        "|" in name
        or (
            not name.isascii()
            and any(unicodedata.category(c) in _BAD_NAME_CATEGORIES for c in name)
        )
        or any(ord(c) < 32 or ord(c) == 127 for c in name)
    ):
        raise _invalid(
            f"{field} cannot contain control, format, bidi or zero-width characters, or '|'",
            ref,
            field,
        )
    lowered = name.lower()
    if lowered in SERVER_NAMES or (
        agent and (lowered in RESERVED_AGENT_NAMES or lowered.startswith(RESERVED_NAME_PREFIXES))
    ):
        raise _invalid(f"{field} {name!r} is reserved", ref, field)
    return name


def check_attachments(
    value: object, ref: str | None, field: str = "payload.attachments"
) -> list[dict[str, Any]]:
    """Attachments are a list of at most MAX_ATTACHMENTS objects of strings (and numbers,
    e.g. `size`); `url`, `filename`, `mime_type`, ... must be strings when present."""
    if not isinstance(value, list):
        raise _invalid(f"{field} must be a list", ref, field)
    if len(value) > MAX_ATTACHMENTS:
        raise _invalid(f"{field} holds at most {MAX_ATTACHMENTS} attachments", ref, field)
    for i, att in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(att, dict):
            raise _invalid(f"{where} must be an object", ref, where)
        if len(att) > MAX_ATTACHMENT_KEYS:
            raise _invalid(f"{where} has more than {MAX_ATTACHMENT_KEYS} keys", ref, where)
        for key, item in att.items():
            if isinstance(item, str):
                if len(item) > MAX_ATTACHMENT_STRING:
                    raise _invalid(
                        f"{where}.{key} is longer than {MAX_ATTACHMENT_STRING}",
                        ref,
                        f"{where}.{key}",
                    )
            elif key in ATTACHMENT_STRING_KEYS:
                raise _invalid(f"{where}.{key} must be a string", ref, f"{where}.{key}")
            elif item is not None and not isinstance(item, int | float):
                raise _invalid(f"{where}.{key} must be a string or a number", ref, f"{where}.{key}")
    return value


def _opt_str(
    payload: dict[str, Any], key: str, ref: str | None, limit: int | None = None
) -> str | None:
    value = payload.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid(f"payload.{key} must be a string", ref, f"payload.{key}")
    if limit is not None and len(value) > limit:
        raise _invalid(f"payload.{key} is longer than {limit} characters", ref, f"payload.{key}")
    return value


def _channel(payload: dict[str, Any], ref: str | None, *, default: str | None = None) -> str:
    value = payload.get("channel", default)
    if value is None:
        raise _invalid("payload.channel is required", ref, "payload.channel")
    if not isinstance(value, str):
        raise _invalid("payload.channel must be a string", ref, "payload.channel")
    return check_channel_name(value, ref)


def check_channel_name(value: str, ref: str | None = None) -> str:
    """A channel name; `dm:` names must be a canonical DM (`dm:agent:a|agent:b`), the only
    names that may hold `|`."""
    if not value or len(value) > MAX_CHANNEL_CHARS:
        raise _invalid(f"channel names are 1..{MAX_CHANNEL_CHARS} characters", ref, None)
    if value.startswith(conv.DM_PREFIX):
        try:
            conv.dm_participants(value)
        except conv.ConversationError as exc:
            raise _invalid(exc.detail, ref, "payload.channel") from None
        return value
    if any(c.isspace() or ord(c) < 32 or c == "|" for c in value) or (
        not value.isascii() and any(unicodedata.category(c) in _BAD_NAME_CATEGORIES for c in value)
    ):
        raise _invalid(
            "channel names cannot contain spaces, control, format or bidi characters, or '|'",
            ref,
            None,
        )
    return value


def _opt_int(
    payload: dict[str, Any], key: str, ref: str | None, lo: int, hi: int | None
) -> int | None:
    value = payload.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(f"payload.{key} must be an integer", ref, f"payload.{key}")
    if value < lo or (hi is not None and value > hi):
        bound = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise _invalid(f"payload.{key} must be {bound}", ref, f"payload.{key}")
    return value


def _validate_payload(ftype: str, payload: dict[str, Any], ref: str, sender: str | None) -> None:
    """Checks types and fills defaults in place; raises ProtocolError."""
    if ftype == "register":
        check_name(sender, "sender", ref)
        channels = payload.get("channels", [DEFAULT_CHANNEL])
        if isinstance(channels, str):
            channels = [channels]
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            raise _invalid("payload.channels must be a list of strings", ref, "payload.channels")
        if len(channels) > MAX_REGISTER_CHANNELS:
            raise _invalid(
                f"payload.channels holds at most {MAX_REGISTER_CHANNELS}", ref, "payload.channels"
            )
        payload["channels"] = list(dict.fromkeys(check_channel_name(c, ref) for c in channels))
        for key in AGENT_FIELDS + ("orochi_current_task",):
            _opt_str(payload, key, ref, 1000)
        caps = payload.get("capabilities")
        if caps is not None:
            if (
                not isinstance(caps, list)
                or len(caps) > MAX_CAPABILITIES
                or not all(isinstance(c, str) for c in caps)
            ):
                raise _invalid(
                    f"payload.capabilities must be a list of at most {MAX_CAPABILITIES} strings",
                    ref,
                    "payload.capabilities",
                )
    elif ftype == "message":
        _channel(payload, ref)
        content = payload.setdefault("content", "")
        if not isinstance(content, str):
            raise _invalid("payload.content must be a string", ref, "payload.content")
        if not isinstance(payload.setdefault("metadata", {}), dict):
            raise _invalid("payload.metadata must be an object", ref, "payload.metadata")
        check_attachments(payload.setdefault("attachments", []), ref)
    elif ftype in ("subscribe", "unsubscribe"):
        _channel(payload, ref)
        if not isinstance(payload.get("mention_only", False), bool):
            raise _invalid(
                "payload.mention_only must be true or false", ref, "payload.mention_only"
            )
    elif ftype in CHANGE_TYPES:
        _validate_change(ftype, payload, ref)
    elif ftype == "query" and payload.get("search") is not None:
        _validate_search(payload, ref)
    elif ftype == "query":
        payload["channel"] = _channel(payload, ref, default=DEFAULT_CHANNEL)
        _opt_str(payload, "since", ref, 64)
        _opt_int(payload, "limit", ref, 1, MAX_QUERY_LIMIT)
        _opt_int(payload, "after_seq", ref, 0, INT_MAX)
        _opt_int(payload, "before_seq", ref, 1, INT_MAX)
        if payload.get("after_seq") is not None and payload.get("before_seq") is not None:
            raise _invalid(
                "payload.after_seq and payload.before_seq exclude each other",
                ref,
                "payload.after_seq",
            )
    elif ftype == "heartbeat":
        task = payload.get("orochi_current_task")
        if task is not None and not isinstance(task, str):
            raise _invalid(
                "payload.orochi_current_task must be a string", ref, "payload.orochi_current_task"
            )
    elif ftype == "status_update":
        for key in ("status", "current_task", "orochi_current_task") + AGENT_FIELDS:
            _opt_str(payload, key, ref, 1000)
    elif ftype == "gitea":
        if not isinstance(payload.get("action"), str):
            raise ProtocolError(
                ErrorCode.GITEA_MISSING_PARAM,
                "payload.action is required",
                ref,
                field="payload.action",
            )
        if not isinstance(payload.setdefault("params", {}), dict):
            raise _invalid("payload.params must be an object", ref, "payload.params")


def _validate_change(ftype: str, payload: dict[str, Any], ref: str) -> None:
    """react `{message, emoji, action}`, edit `{message, content}`, delete `{message}`;
    `channel` optional (the message's own channel is used; a different one is refused)."""
    try:
        conv.message_ref(payload.get("message"))
        if ftype == "react":
            payload["emoji"] = conv.check_emoji(payload.get("emoji"))
            payload["action"] = conv.check_action(payload.get("action"))
    except conv.ConversationError as exc:
        raise _invalid(exc.detail, ref, exc.field) from None
    if ftype == "edit" and not isinstance(payload.get("content"), str):
        raise _invalid("payload.content must be a string", ref, "payload.content")
    if payload.get("channel") is not None:
        _channel(payload, ref)


def _validate_search(payload: dict[str, Any], ref: str) -> None:
    """query `{search, channel?, sender?, before?, after?, limit?}`."""
    words = payload.get("search")
    if not isinstance(words, str) or not words.strip() or len(words) > MAX_SEARCH_CHARS:
        raise _invalid(
            f"payload.search must be 1..{MAX_SEARCH_CHARS} characters of words",
            ref,
            "payload.search",
        )
    if payload.get("channel") is not None:
        _channel(payload, ref)
    _opt_str(payload, "sender", ref, MAX_NAME_CHARS)
    _opt_str(payload, "before", ref, MAX_TS_CHARS)
    _opt_str(payload, "after", ref, MAX_TS_CHARS)
    _opt_int(payload, "limit", ref, 1, MAX_QUERY_LIMIT)


def capabilities(payload: dict[str, Any]) -> frozenset[str]:
    """The capabilities a validated `register` payload asks for that the hub knows."""
    caps = payload.get("capabilities") or ()
    return CAPABILITIES.intersection(caps)


def parse_frame(text: str | bytes) -> Envelope:
    """One client frame -> Envelope. Raises ProtocolError (PARSE_ERROR, UNKNOWN_TYPE, ...).

    The error's `ref` is the frame's id once the frame parsed, so the caller knows
    whether the ack rule applies (it does whenever `ref` is set).
    """
    if isinstance(text, bytes):
        raise ProtocolError(
            ErrorCode.PARSE_ERROR, "binary frames are not supported; send JSON text"
        )
    try:
        data, suspect = loads_checked(text)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(ErrorCode.PARSE_ERROR, f"Invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.PARSE_ERROR, "a frame must be a JSON object")
    ftype = data.get("type")
    if not isinstance(ftype, str) or not ftype:
        raise ProtocolError(ErrorCode.PARSE_ERROR, "missing or invalid 'type'")
    fid = data.get("id")
    if fid is None or fid == "":
        fid = new_id()
    elif not isinstance(fid, str) or len(fid) > MAX_ID_CHARS:
        raise ProtocolError(
            ErrorCode.PARSE_ERROR, f"'id' must be a string of at most {MAX_ID_CHARS}"
        )
    if suspect:
        check_value(data, "", fid)
    ts = data.get("ts")
    if not isinstance(ts, str) or not ts or len(ts) > MAX_TS_CHARS:
        ts = now_iso()
    sender = data.get("sender")
    if sender is not None:
        if not isinstance(sender, str):
            raise _invalid("sender must be a string", fid, "sender")
        sender = normalize_name(sender)
    payload = data.get("payload")
    if payload is None:
        payload = {}
    elif not isinstance(payload, dict):
        raise _invalid("payload must be an object", fid, "payload")
    if ftype not in CLIENT_TYPES:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"Unknown message type: {ftype}", fid)
    _validate_payload(ftype, payload, fid, sender)
    return Envelope(type=ftype, id=fid, ts=ts, sender=sender, payload=payload)


def validated(
    ftype: str, fid: str, ts: str, sender: str | None, payload: dict[str, Any]
) -> Envelope:
    """An envelope from another dialect's frame (gateway_ws/dialect_b.py), checked and
    defaulted as `parse_frame` checks an A frame of that type."""
    if ftype not in CLIENT_TYPES:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"Unknown message type: {ftype}", fid)
    _validate_payload(ftype, payload, fid, sender)
    return Envelope(type=ftype, id=fid, ts=ts, sender=sender, payload=payload)


def server_frame(ftype: str, payload: dict[str, Any]) -> str:
    return dumps(
        {"type": ftype, "sender": SERVER_NAME, "id": new_id(), "ts": now_iso(), "payload": payload}
    )


def ack(ref: str, **extra: Any) -> str:
    return server_frame("ack", {"status": "ok", "ref": ref, **extra})


def error_ack(ref: str, code: str) -> str:
    """The ack that follows an error reply: the frame was read but not carried out."""
    return server_frame("ack", {"status": "error", "ref": ref, "code": code})


def error(code: str, detail: str, ref: str | None = None, **extra: Any) -> str:
    payload: dict[str, Any] = {"code": code, "detail": detail}
    if ref is not None:
        payload["ref"] = ref
    payload.update(extra)
    return server_frame("error", payload)


def presence_reply(agents: dict[str, list[str]]) -> str:
    return server_frame("presence", {"agents": agents})


def history_reply(
    channel: str, rows: list[dict[str, Any]], ref: str, more: bool | None = None
) -> str:
    payload: dict[str, Any] = {"channel": channel, "content": "", "history": rows, "ref": ref}
    if more is not None:
        payload["more"] = more
    return server_frame("message", payload)


def history_reply_encoded(
    channel: str, encoded_rows: list[str], ref: str, more: bool, search: str | None = None
) -> str:
    """The history reply built around rows already encoded by `page_rows` (`search`: the
    words of a search query, whose results these rows are)."""
    payload: dict[str, Any] = {"channel": channel, "content": "", "ref": ref, "more": more}
    if search is not None:
        payload["search"] = search
    head = server_frame("message", {**payload, "history": None})
    return head.replace('"history":null', '"history":[' + ",".join(encoded_rows) + "]", 1)


REPLY_OVERHEAD_BYTES = 512  # the envelope around a reply's rows, generously


def utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def _shrunk(row: dict[str, Any], budget: int) -> str:
    """A row too large to fit alone: its content cut to the budget, marked truncated;
    metadata and attachments dropped too if that is not enough."""
    small = dict(row, truncated=True)
    content = str(row.get("content") or "")
    room = max(0, budget - utf8_len(dumps(dict(small, content=""))) - 16)
    small["content"] = content.encode("utf-8")[:room].decode("utf-8", errors="ignore")
    encoded = dumps(small)
    if utf8_len(encoded) > budget:
        small.update(metadata={}, attachments=[], content=small["content"][: room // 2])
        encoded = dumps(small)
    return encoded


def page_rows(rows: Any, max_bytes: int) -> tuple[list[str], bool]:
    """Encode rows until `max_bytes` (the whole reply frame) would be exceeded:
    (encoded rows, whether more rows were left out). Reads `rows` lazily, so a
    query's cursor is never drained past what fits. A first row that alone does not
    fit is sent shrunk (`truncated: true`) rather than not at all."""
    budget = max_bytes - REPLY_OVERHEAD_BYTES
    out: list[str] = []
    used = 0
    for row in rows:
        encoded = dumps(row)
        size = utf8_len(encoded) + 1
        if used + size > budget:
            if out:
                return out, True
            encoded = _shrunk(row, budget)
            size = utf8_len(encoded) + 1
        out.append(encoded)
        used += size
    return out, False


def frame_from_row(row: dict[str, Any]) -> str:
    """The delivered envelope of a stored message, as JSON text, rebuilt from its row.

    Byte for byte what the persister delivered live (keys in the same order), so a
    duplicate's redelivery and a gap fill match the first delivery.
    """
    payload = {
        "channel": row["channel"],
        "content": row["content"],
        "metadata": row.get("metadata") or {},
        "attachments": row.get("attachments") or [],
        "seq": row["seq"],
        "mentions": row.get("mentions") or [],
        "sender_type": row.get("sender_type") or "agent",
    }
    if row.get("thread"):
        payload["thread"] = row["thread"]
    return dumps(
        {
            "type": "message",
            "sender": row["sender"],
            "id": row["msg_id"],
            "ts": row["ts"],
            "payload": payload,
        }
    )


def heartbeat_resources(payload: dict[str, Any]) -> dict[str, Any]:
    """The resource keys of a heartbeat, numbers and short strings only."""
    out: dict[str, Any] = {}
    for key in HEARTBEAT_KEYS:
        value = payload.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)) or (isinstance(value, str) and len(value) <= 200):
            out[key] = value
    return out
