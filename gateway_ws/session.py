"""Per-connection session state (identity, channels, presence record): a pure state machine.

No sockets and no clock: callers pass `now`. The gateway asks `check` before
handling a frame and applies the frame's effect here; what it publishes on the
bus is `record`.
"""

from __future__ import annotations

from typing import Any, cast

from scitex_orochi.hub.bus_bodies import AgentRecord
from scitex_orochi.hub.presence import compact
from scitex_orochi.protocol import codec
from scitex_orochi.protocol.errors import ErrorCode


class Session:
    __slots__ = (
        "workspace",
        "is_admin",
        "conn_id",
        "gw",
        "name",
        "channels",
        "record",
        "last_seen",
        "capabilities",
        "mention_only",
    )

    def __init__(self, workspace: str, is_admin: bool, conn_id: str, gw: str, now: float) -> None:
        self.workspace = workspace
        self.is_admin = is_admin
        self.conn_id = conn_id
        self.gw = gw
        self.name: str | None = None
        self.channels: list[str] = []
        self.record: AgentRecord = {}  # filled by register
        self.last_seen = now
        self.capabilities: frozenset[str] = frozenset()  # what register asked for ("events")
        self.mention_only: set[str] = set()  # channels joined for mentions only

    @property
    def registered(self) -> bool:
        return self.name is not None

    def check(self, frame: codec.Envelope) -> None:
        """Raise ProtocolError for frames this session may not send (identity rules)."""
        if frame.type not in codec.NEEDS_IDENTITY:
            return
        if self.name is None:
            raise codec.ProtocolError(
                ErrorCode.NOT_REGISTERED, f"send 'register' before '{frame.type}'", frame.id
            )
        if frame.sender not in (None, "", self.name):
            raise codec.ProtocolError(
                ErrorCode.SENDER_MISMATCH,
                f"this connection is registered as {self.name!r}, not {frame.sender!r}",
                frame.id,
            )

    def seen(self, now: float) -> None:
        self.last_seen = now

    def register(self, frame: codec.Envelope, now: float) -> tuple[list[str], str | None]:
        """Take the identity in a register frame.

        Returns (channels left, previous name): the caller updates routing with them.
        """
        p = frame.payload
        name = frame.sender
        assert name is not None  # validated by the codec
        previous = self.name if self.name != name else None
        left = list(self.channels)
        self.name = name
        self.channels = list(p["channels"])
        self.capabilities = codec.capabilities(p)
        self.mention_only = set()
        machine = p.get("machine") or ""
        self.record = compact(
            {
                "name": name,
                "ws": self.workspace,
                "conn": self.conn_id,
                "gw": self.gw,
                "since": now,
                "channels": list(self.channels),
                "agent_id": p.get("agent_id") or (f"{name}@{machine}" if machine else name),
                "machine": machine,
                "role": p.get("role") or "",
                "model": p.get("model") or "",
                "project": p.get("project") or "",
                "multiplexer": p.get("multiplexer") or "",
                "status": "online",
                "current_task": p.get("orochi_current_task") or "",
                "subagent_count": _int_or(p.get("orochi_subagent_count"), 0),
                "resources": {},
                "last_seen": now,
            }
        )
        if p.get("transient") is True:  # a one-shot client (CLI): not kept as dead when gone
            self.record["transient"] = True
        return left, previous

    @property
    def participant(self) -> str:
        """This session's key in DM names: `agent:<name>`."""
        return f"agent:{self.name}"

    @property
    def wants_events(self) -> bool:
        return "events" in self.capabilities

    def subscribe(self, channel: str, mention_only: bool = False) -> bool:
        """Join (or change how one is in) a channel; whether anything changed."""
        was = channel in self.mention_only
        if channel in self.channels and was == mention_only:
            return False
        if channel not in self.channels:
            self.channels.append(channel)
        if mention_only:
            self.mention_only.add(channel)
        else:
            self.mention_only.discard(channel)
        self.record["channels"] = list(self.channels)
        return True

    def unsubscribe(self, channel: str) -> bool:
        if channel not in self.channels:
            return False
        self.channels.remove(channel)
        self.mention_only.discard(channel)
        self.record["channels"] = list(self.channels)
        return True

    def heartbeat(self, payload: dict[str, Any]) -> None:
        self.record["resources"] = codec.heartbeat_resources(payload)
        if isinstance(payload.get("orochi_current_task"), str):
            self.record["current_task"] = payload["orochi_current_task"][: codec.MAX_TASK_CHARS]
        count = payload.get("orochi_subagent_count")
        if isinstance(count, int) and not isinstance(count, bool):
            self.record["subagent_count"] = count

    def status(self, payload: dict[str, Any]) -> None:
        if payload.get("status"):
            self.record["status"] = payload["status"]
        task = payload.get("orochi_current_task", payload.get("current_task"))
        if task is not None:
            self.record["current_task"] = task[: codec.MAX_TASK_CHARS]
        for key in codec.AGENT_FIELDS:
            if payload.get(key):
                self.record[key] = payload[key]

    def presence_record(self) -> AgentRecord:
        self.record["last_seen"] = self.last_seen
        return self.record


def _int_or(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def fleet_record(record: AgentRecord) -> dict[str, Any]:
    """A presence record with dialect B's keys beside AgentRecord's: `shared` (several
    sockets hold the name), `instance_id` (4409), `subagents`, `rtt_ms`, `echo_rtt_ms`."""
    return cast(dict[str, Any], record)
