"""Dialect B, the fleet dialect (../shared/FLEET.md): the 0.6-era sidecar and the 0.13+ CLI.

An adapter beside dialect A (dialect.py), nothing more: `parse` reads B's frames
into the `codec.Envelope`s the core already handles (the identity is the
`?agent=` name of the connection, `text` stands for `content`, a bare channel
name gets its `#`, `metadata.attachments` become the message's attachments), and
the reply methods shape B's flat frames (`registered`, `subscribed`,
`{type:"error",code,message}`; no acks). B's liveness frames (`task_update`,
`subagents_update`, `pong`, `echo_pong`) become envelopes of those B-only types,
whose handlers (handlers.py) update the presence record silently.

One instance per connection: it holds the connection's name and the `echo`
nonces it sent (for the round-trip time of each `echo_pong`). `delivery` is the
same for every instance, so DeliveryCore encodes a delivery once for all B
recipients.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from scitex_orochi.hub.bus_bodies import Delivery
from scitex_orochi.protocol import codec
from scitex_orochi.protocol.constants import new_id, now_iso
from scitex_orochi.protocol.errors import ErrorCode

PATH = "/ws/agent/"
MAX_SUBAGENTS = 32
MAX_SUBAGENT_FIELD_CHARS = 200
MAX_INSTANCE_ID_CHARS = 128
ECHOES_KEPT = 4  # echo nonces awaiting their echo_pong, per connection
# register payload keys kept (strings): those of the presence record.
REGISTER_KEYS = (*codec.AGENT_FIELDS, "orochi_current_task")
# B-only frame types: handled by handlers.py, never parsed from an A frame.
B_TYPES = frozenset({"task_update", "subagents_update", "pong", "echo_pong"})

# Our codes as B's clients know them (FLEET §3); others go lower-cased.
B_CODES: dict[str, str] = {
    ErrorCode.NOT_REGISTERED: "not_registered",
    ErrorCode.NOT_A_MEMBER: "acl_denied",
    ErrorCode.FORBIDDEN: "acl_denied",
    ErrorCode.SENDER_MISMATCH: "acl_denied",
}
SUBSCRIPTION_TYPES = ("subscribe", "unsubscribe")


def wants_b(path: str, query: dict[str, list[str]]) -> str | None:
    """The agent name when a connection speaks B: path `/ws/agent/` with `?agent=`."""
    if path != PATH:
        return None
    names = query.get("agent")
    return names[0] if names else None


def b_channel(value: object) -> object:
    """A bare channel name gets a `#`, except a DM's (`dm:...`)."""
    if isinstance(value, str) and value and not value.startswith(("#", "dm:")):
        return "#" + value
    return value


def _flat(obj: dict[str, Any]) -> str:
    return codec.dumps(obj)


def _invalid(detail: str, ref: str, field: str) -> codec.ProtocolError:
    return codec.ProtocolError(ErrorCode.INVALID_FIELD, detail, ref, field=field)


class DialectB:
    name = "B"
    exclusive_names = False  # several sockets may hold one name; each gets the traffic
    all_events = True  # thread, reaction, edit and delete events always

    __slots__ = ("agent", "echoes", "last_ref", "last_type", "next_ping", "next_echo")

    def __init__(self, agent: str) -> None:
        self.agent = agent  # the `?agent=` name: this connection's identity
        self.echoes: dict[str, float] = {}  # nonce -> wall time sent
        self.last_ref = ""  # the last frame read, for B's subscription_failed
        self.last_type = ""
        self.next_ping = 0.0  # monotonic times the I/O layer sends the next ping / echo
        self.next_echo = 0.0

    def __repr__(self) -> str:
        return f"<DialectB {self.agent}>"

    # ---- frames in -------------------------------------------------------------------
    def parse(self, raw: str | bytes) -> codec.Envelope:
        if isinstance(raw, bytes):
            raise codec.ProtocolError(
                ErrorCode.PARSE_ERROR, "binary frames are not supported; send JSON text"
            )
        try:
            data, suspect = codec.loads_checked(raw)
        except (ValueError, RecursionError) as exc:
            raise codec.ProtocolError(ErrorCode.PARSE_ERROR, f"Invalid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise codec.ProtocolError(ErrorCode.PARSE_ERROR, "a frame must be a JSON object")
        ftype = data.get("type")
        if not isinstance(ftype, str) or not ftype:
            raise codec.ProtocolError(ErrorCode.PARSE_ERROR, "missing or invalid 'type'")
        fid = data.get("id")
        if not isinstance(fid, str) or not fid or len(fid) > codec.MAX_ID_CHARS:
            fid = new_id()  # B clients send no ids; the CLI's A-shaped frames do
        self.last_ref, self.last_type = fid, ftype
        if suspect:
            codec.check_value(data, "", fid)
        ts = data.get("ts")
        if not isinstance(ts, str) or not ts or len(ts) > codec.MAX_TS_CHARS:
            ts = now_iso()
        payload = data.get("payload")
        if payload is None:
            payload = {}
        elif not isinstance(payload, dict):
            raise _invalid("payload must be an object", fid, "payload")
        reader = _READERS.get(ftype)
        if reader is None:
            raise codec.ProtocolError(ErrorCode.UNKNOWN_TYPE, f"Unknown message type: {ftype}", fid)
        return reader(self, fid, ts, payload, data)

    def _register(
        self, fid: str, ts: str, p: dict[str, Any], data: dict[str, Any]
    ) -> codec.Envelope:
        out: dict[str, Any] = {k: p[k] for k in REGISTER_KEYS if isinstance(p.get(k), str)}
        if not out.get("machine") and isinstance(p.get("hostname"), str):
            out["machine"] = p["hostname"]
        # orochi_claude_md (a whole CLAUDE.md, bounded by the frame size) is accepted and
        # not kept: nothing of it goes into the presence record.
        channels = p.get("channels")
        if isinstance(channels, str):
            channels = [channels]
        if channels is not None and not isinstance(channels, list):
            raise _invalid("payload.channels must be a list", fid, "payload.channels")
        out["channels"] = [b_channel(c) for c in channels or []]
        instance = p.get("instance_id")
        if isinstance(instance, str) and instance and "start_ts_unix" in p:
            out["instance_id"] = instance[:MAX_INSTANCE_ID_CHARS]
        if p.get("transient") is True:
            out["transient"] = True
        return codec.validated("register", fid, ts, self.agent, out)

    def _message(
        self, fid: str, ts: str, p: dict[str, Any], data: dict[str, Any]
    ) -> codec.Envelope:
        metadata = p.get("metadata")
        if metadata is None:
            metadata = {}
        elif not isinstance(metadata, dict):
            raise _invalid("payload.metadata must be an object", fid, "payload.metadata")
        metadata = dict(metadata)
        attachments = metadata.pop("attachments", None) or p.get("attachments") or []
        text = p.get("text")
        if text is None:
            text = p.get("content", "")
        out = {
            "channel": b_channel(p.get("channel")),
            "content": text,
            "metadata": metadata,
            "attachments": attachments,
        }
        return codec.validated("message", fid, ts, self.agent, out)

    def _subscription(
        self, fid: str, ts: str, p: dict[str, Any], data: dict[str, Any]
    ) -> codec.Envelope:
        out = {
            "channel": b_channel(p.get("channel")),
            "mention_only": p.get("mention_only") is True,
        }
        return codec.validated(str(data["type"]), fid, ts, self.agent, out)

    def _passed(self, fid: str, ts: str, p: dict[str, Any], data: dict[str, Any]) -> codec.Envelope:
        """heartbeat, presence, query: A's payloads (query's channel may be bare)."""
        if "channel" in p:
            p["channel"] = b_channel(p["channel"])
        return codec.validated(str(data["type"]), fid, ts, self.agent, p)

    def _task(self, fid: str, ts: str, p: dict[str, Any], data: dict[str, Any]) -> codec.Envelope:
        task = p.get("task")
        if task is None:
            task = ""
        if not isinstance(task, str):
            raise _invalid("payload.task must be a string", fid, "payload.task")
        return codec.Envelope(
            "task_update", fid, ts, self.agent, {"task": task[: codec.MAX_TASK_CHARS]}
        )

    def _subagents(
        self, fid: str, ts: str, p: dict[str, Any], data: dict[str, Any]
    ) -> codec.Envelope:
        subagents = p.get("subagents")
        if subagents is None:
            subagents = []
        if not isinstance(subagents, list):
            raise _invalid("payload.subagents must be a list", fid, "payload.subagents")
        kept = []
        for item in subagents[:MAX_SUBAGENTS]:
            if isinstance(item, dict):
                kept.append(
                    {
                        key: item[key][:MAX_SUBAGENT_FIELD_CHARS]
                        for key in ("name", "task", "status")
                        if isinstance(item.get(key), str)
                    }
                )
        body = {"count": len(subagents), "subagents": kept}
        return codec.Envelope("subagents_update", fid, ts, self.agent, body)

    def _pong(self, fid: str, ts: str, p: dict[str, Any], data: dict[str, Any]) -> codec.Envelope:
        sent = p.get("ts", data.get("ts"))
        if isinstance(sent, bool) or not isinstance(sent, int | float):
            sent = None
        return codec.Envelope("pong", fid, ts, self.agent, {"ts": sent})

    def _echo_pong(
        self, fid: str, ts: str, p: dict[str, Any], data: dict[str, Any]
    ) -> codec.Envelope:
        nonce = data.get("nonce", p.get("nonce"))
        sent = self.echoes.pop(nonce, None) if isinstance(nonce, str) else None
        return codec.Envelope("echo_pong", fid, ts, self.agent, {"sent": sent})

    # ---- liveness (the I/O layer sends these on its timers) ---------------------------
    @staticmethod
    def ping(wall: float) -> str:
        return _flat({"type": "ping", "ts": wall})

    def echo(self, wall: float) -> str:
        nonce = secrets.token_hex(8)
        self.echoes[nonce] = wall
        while len(self.echoes) > ECHOES_KEPT:
            del self.echoes[next(iter(self.echoes))]
        return _flat({"type": "echo", "nonce": nonce})

    # ---- replies -----------------------------------------------------------------------
    @staticmethod
    def ack(ref: str, **fields: Any) -> str | None:
        return None  # B acks nothing

    def _code(self, code: str, detail: str, ref: str | None) -> str:
        if code == ErrorCode.INVALID_FIELD and detail.startswith("payload.channel is required"):
            return "channel_required"
        if ref is not None and ref == self.last_ref and self.last_type in SUBSCRIPTION_TYPES:
            if code not in B_CODES:
                return "subscription_failed"
        return B_CODES.get(code, str(code).lower())

    def error(self, code: str, detail: str, ref: str | None, **extra: Any) -> str | None:
        return _flat({"type": "error", "code": self._code(code, detail, ref), "message": detail})

    def refusal(self, code: str, detail: str, ref: str, **extra: Any) -> list[str]:
        return [_flat({"type": "error", "code": self._code(code, detail, ref), "message": detail})]

    def unreadable(self, exc: codec.ProtocolError) -> list[str]:
        return self.refusal(exc.code, exc.detail, exc.ref or "")

    @staticmethod
    def registered(ref: str, channels: list[str], **fields: Any) -> str | None:
        return _flat({"type": "registered", "channels": list(channels)})

    @staticmethod
    def subscribed(
        ref: str, action: str, channel: str, channels: list[str], mention_only: bool
    ) -> str | None:
        kind = "subscribed" if action == "subscribe" else "unsubscribed"
        return _flat(
            {
                "type": kind,
                "channel": channel,
                "channels": list(channels),
                "mention_only": mention_only,
            }
        )

    @staticmethod
    def history(
        channel: str, encoded_rows: list[str], ref: str, more: bool, search: str | None = None
    ) -> str | None:
        # The CLI reads payload.history: A's reply shape (upstream never answers).
        return codec.history_reply_encoded(channel, encoded_rows, ref, more, search)

    @staticmethod
    def presence(agents: dict[str, list[str]]) -> str | None:
        return codec.presence_reply(agents)

    @staticmethod
    def gitea_result(action: str, result: Any, ref: str) -> str | None:
        return codec.server_frame("gitea_result", {"action": action, "result": result, "ref": ref})

    @staticmethod
    def refused_connection(code: str, detail: str) -> str:
        return _flat({"type": "error", "code": B_CODES.get(code, code.lower()), "message": detail})

    # ---- deliveries ----------------------------------------------------------------------
    @staticmethod
    def delivery(body: Delivery) -> str | None:
        """A delivery as B's flat frame: `message` with the integer `id` (the hub number),
        `thread_reply` for a reply, or one of the change events; None for what B has no
        frame for."""
        return b_delivery(body)


def b_delivery(body: Delivery) -> str | None:
    frame = json.loads(body["frame"])
    p = frame.get("payload") or {}
    num = body.get("num") or p.get("num") or 0
    event = body.get("event")
    if event == "reaction_update":
        return _flat(
            {
                "type": "reaction_update",
                "message_id": p.get("num") or num,
                "emoji": p.get("emoji"),
                "reactor": p.get("reactor"),
                "action": "added" if p.get("action") == "add" else "removed",
            }
        )
    if event == "message_edit":
        return _flat(
            {
                "type": "message_edit",
                "message_id": p.get("num") or num,
                "sender": p.get("editor"),
                "channel": p.get("channel"),
                "text": p.get("content"),
                "edited_at": p.get("edited_at"),
            }
        )
    if event == "message_delete":
        return _flat(
            {
                "type": "message_delete",
                "message_id": p.get("num") or num,
                "sender": p.get("deleted_by"),
                "channel": p.get("channel"),
            }
        )
    if event or frame.get("type") != "message":
        return None
    metadata = dict(p.get("metadata") or {})
    if p.get("attachments"):
        metadata["attachments"] = p["attachments"]
    common = {
        "sender": frame.get("sender"),
        "sender_type": p.get("sender_type") or "agent",
        "channel": p.get("channel"),
        "text": p.get("content") or "",
        "ts": frame.get("ts"),
        "metadata": metadata,
    }
    thread = p.get("thread")
    if isinstance(thread, dict) and thread.get("num"):
        return _flat(
            {"type": "thread_reply", "parent_id": thread["num"], "reply_id": num, **common}
        )
    return _flat({"type": "message", "id": num, **common})


_READERS = {
    "register": DialectB._register,
    "message": DialectB._message,
    "subscribe": DialectB._subscription,
    "unsubscribe": DialectB._subscription,
    "heartbeat": DialectB._passed,
    "presence": DialectB._passed,
    "query": DialectB._passed,
    "task_update": DialectB._task,
    "subagents_update": DialectB._subagents,
    "pong": DialectB._pong,
    "echo_pong": DialectB._echo_pong,
}
