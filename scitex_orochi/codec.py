"""The agent protocol as pure functions: parse and validate frames, build replies.

No sockets here. `parse_frame` turns one WebSocket text frame into a `Frame`
or raises `ProtocolError` with the code the client sees; the builders return
JSON text ready to send. Shapes follow PROTOCOL.md §2–§3.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SERVER_NAME = "orochi-server"

# Close codes (documented in docs/internals.md and the README).
CLOSE_GOING_AWAY = 1001
CLOSE_TOO_BIG = 1009
CLOSE_REPLACED = 4000
CLOSE_AUTH_FAILED = 4001
CLOSE_REAPED = 4002
CLOSE_SLOW_CONSUMER = 4008

CLOSE_REASONS = {
    CLOSE_GOING_AWAY: "Server shutting down",
    CLOSE_REPLACED: "Replaced by new connection",
    CLOSE_AUTH_FAILED: "Authentication failed",
    CLOSE_REAPED: "Idle timeout",
    CLOSE_SLOW_CONSUMER: "Slow consumer: send queue overflowed",
}

MAX_ID_CHARS = 128
MAX_NAME_CHARS = 128
MAX_CHANNEL_CHARS = 200
MAX_TASK_CHARS = 200
MAX_QUERY_LIMIT = 1000
DEFAULT_QUERY_LIMIT = 50
DEFAULT_CHANNEL = "#general"

CLIENT_TYPES = frozenset(
    {"register", "message", "subscribe", "unsubscribe", "query", "presence",
     "heartbeat", "status_update", "gitea"}
)
# Frames that act under an identity and so need a `register` first.
NEEDS_IDENTITY = frozenset(
    {"message", "subscribe", "unsubscribe", "heartbeat", "status_update", "gitea"}
)
HEARTBEAT_KEYS = (
    "cpu_count", "cpu_model", "load_avg_1m", "load_avg_5m", "load_avg_15m",
    "mem_free_mb", "mem_total_mb", "mem_used_percent", "disk_used_percent",
)
AGENT_FIELDS = ("agent_id", "machine", "role", "model", "project", "multiplexer")


class ProtocolError(Exception):
    """A frame the server refuses; `code` and `detail` go to the client in an error frame."""

    def __init__(self, code: str, detail: str, ref: str | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.ref = ref


@dataclass
class Frame:
    type: str
    id: str
    ts: str
    sender: str | None
    payload: dict[str, Any] = field(default_factory=dict)

    def envelope(self) -> dict[str, Any]:
        return {"type": self.type, "sender": self.sender, "id": self.id, "ts": self.ts,
                "payload": self.payload}


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def new_id() -> str:
    return str(uuid.uuid4())


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _invalid(detail: str, ref: str | None) -> ProtocolError:
    return ProtocolError("INVALID_FIELD", detail, ref)


def _opt_str(payload: dict, key: str, ref: str | None, limit: int | None = None) -> str | None:
    value = payload.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid(f"payload.{key} must be a string", ref)
    if limit is not None and len(value) > limit:
        raise _invalid(f"payload.{key} is longer than {limit} characters", ref)
    return value


def _channel(payload: dict, ref: str | None, *, default: str | None = None) -> str:
    value = payload.get("channel", default)
    if value is None:
        raise _invalid("payload.channel is required", ref)
    if not isinstance(value, str):
        raise _invalid("payload.channel must be a string", ref)
    return check_channel_name(value, ref)


def check_channel_name(value: str, ref: str | None = None) -> str:
    if not value or len(value) > MAX_CHANNEL_CHARS:
        raise _invalid(f"channel names are 1..{MAX_CHANNEL_CHARS} characters", ref)
    if any(c.isspace() or ord(c) < 32 or c == "|" for c in value):
        raise _invalid("channel names cannot contain spaces, control characters or '|'", ref)
    return value


def _opt_int(payload: dict, key: str, ref: str | None, lo: int, hi: int | None) -> int | None:
    value = payload.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(f"payload.{key} must be an integer", ref)
    if value < lo or (hi is not None and value > hi):
        bound = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise _invalid(f"payload.{key} must be {bound}", ref)
    return value


def _check_name(value: object, ref: str | None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _invalid("sender (the agent name) must be a non-empty string", ref)
    if len(value) > MAX_NAME_CHARS or any(ord(c) < 32 for c in value):
        raise _invalid(f"sender must be at most {MAX_NAME_CHARS} printable characters", ref)
    return value


def _validate_payload(ftype: str, payload: dict, ref: str, sender: str | None) -> None:
    """Checks types and fills defaults in place; raises ProtocolError."""
    if ftype == "register":
        _check_name(sender, ref)
        channels = payload.get("channels", [DEFAULT_CHANNEL])
        if isinstance(channels, str):
            channels = [channels]
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            raise _invalid("payload.channels must be a list of strings", ref)
        payload["channels"] = list(dict.fromkeys(check_channel_name(c, ref) for c in channels))
        for key in AGENT_FIELDS + ("orochi_current_task",):
            _opt_str(payload, key, ref, 1000)
    elif ftype == "message":
        _channel(payload, ref)
        content = payload.setdefault("content", "")
        if not isinstance(content, str):
            raise _invalid("payload.content must be a string", ref)
        if not isinstance(payload.setdefault("metadata", {}), dict):
            raise _invalid("payload.metadata must be an object", ref)
        if not isinstance(payload.setdefault("attachments", []), list):
            raise _invalid("payload.attachments must be a list", ref)
    elif ftype in ("subscribe", "unsubscribe"):
        _channel(payload, ref)
    elif ftype == "query":
        payload["channel"] = _channel(payload, ref, default=DEFAULT_CHANNEL)
        _opt_str(payload, "since", ref, 64)
        _opt_int(payload, "limit", ref, 1, MAX_QUERY_LIMIT)
        _opt_int(payload, "after_seq", ref, 0, None)
    elif ftype == "heartbeat":
        task = payload.get("orochi_current_task")
        if task is not None and not isinstance(task, str):
            raise _invalid("payload.orochi_current_task must be a string", ref)
    elif ftype == "status_update":
        for key in ("status", "current_task", "orochi_current_task") + AGENT_FIELDS:
            _opt_str(payload, key, ref, 1000)
    elif ftype == "gitea":
        if not isinstance(payload.get("action"), str):
            raise ProtocolError("GITEA_MISSING_PARAM", "payload.action is required", ref)
        if not isinstance(payload.setdefault("params", {}), dict):
            raise _invalid("payload.params must be an object", ref)


def parse_frame(text: str | bytes) -> Frame:
    """One client frame -> Frame. Raises ProtocolError (PARSE_ERROR, UNKNOWN_TYPE, ...).

    The error's `ref` is the frame's id once the frame parsed, so the caller knows
    whether the ack rule applies (it does whenever `ref` is set).
    """
    if isinstance(text, bytes):
        raise ProtocolError("PARSE_ERROR", "binary frames are not supported; send JSON text")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError("PARSE_ERROR", f"Invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProtocolError("PARSE_ERROR", "a frame must be a JSON object")
    ftype = data.get("type")
    if not isinstance(ftype, str) or not ftype:
        raise ProtocolError("PARSE_ERROR", "missing or invalid 'type'")
    fid = data.get("id")
    if fid is None or fid == "":
        fid = new_id()
    elif not isinstance(fid, str) or len(fid) > MAX_ID_CHARS:
        raise ProtocolError("PARSE_ERROR", f"'id' must be a string of at most {MAX_ID_CHARS}")
    ts = data.get("ts")
    if not isinstance(ts, str) or not ts:
        ts = now_iso()
    sender = data.get("sender")
    if sender is not None and not isinstance(sender, str):
        raise _invalid("sender must be a string", fid)
    payload = data.get("payload")
    if payload is None:
        payload = {}
    elif not isinstance(payload, dict):
        raise _invalid("payload must be an object", fid)
    if ftype not in CLIENT_TYPES:
        raise ProtocolError("UNKNOWN_TYPE", f"Unknown message type: {ftype}", fid)
    _validate_payload(ftype, payload, fid, sender)
    return Frame(type=ftype, id=fid, ts=ts, sender=sender, payload=payload)


def server_frame(ftype: str, payload: dict[str, Any]) -> str:
    return dumps({"type": ftype, "sender": SERVER_NAME, "id": new_id(), "ts": now_iso(),
                  "payload": payload})


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


def history_reply(channel: str, rows: list[dict[str, Any]], ref: str) -> str:
    return server_frame("message", {"channel": channel, "content": "", "history": rows,
                                    "ref": ref})


def frame_from_row(row: dict[str, Any]) -> str:
    """A delivered-message frame rebuilt from a stored row (used to fill gaps)."""
    return dumps({
        "type": "message", "sender": row["sender"], "id": row["msg_id"], "ts": row["ts"],
        "payload": {"channel": row["channel"], "content": row["content"],
                    "metadata": row.get("metadata") or {},
                    "attachments": row.get("attachments") or [],
                    "mentions": row.get("mentions") or [], "seq": row["seq"]},
    })


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
