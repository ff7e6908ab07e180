"""Facts of the protocol that the hub and the client share: names, ports, close codes,
and the two id and time helpers every envelope uses."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import IntEnum

SERVER_NAME = "orochi-server"  # the `sender` of every frame the hub originates
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9559  # agents' WebSocket port
DEFAULT_DASHBOARD_PORT = 8559  # dashboard, REST, observers
DEFAULT_MAX_FRAME_BYTES = 1024 * 1024  # what the published clients accept, too


class Close(IntEnum):
    """WebSocket close codes (README, docs/internals.md)."""

    GOING_AWAY = 1001
    TOO_BIG = 1009
    REPLACED = 4000  # a newer connection registered the same name
    AUTH_FAILED = 4001  # also: the token was revoked while connected
    REAPED = 4002
    REGISTER_TIMEOUT = 4003
    KICKED = 4005  # an operator kicked the agent (POST /api/agents/<name>/kick)
    SLOW_CONSUMER = 4008
    TOO_MANY_CONNECTIONS = 4029
    DUPLICATE = 4409  # dialect B: a second live socket of one client instance


CLOSE_REASONS: dict[int, str] = {
    Close.GOING_AWAY: "Server shutting down",
    Close.REPLACED: "Replaced by new connection",
    Close.AUTH_FAILED: "Authentication failed",
    Close.REAPED: "Idle timeout",
    Close.REGISTER_TIMEOUT: "No register in time",
    Close.KICKED: "Kicked by an operator",
    Close.SLOW_CONSUMER: "Slow consumer: send queue overflowed",
    Close.TOO_MANY_CONNECTIONS: "Too many connections",
    Close.DUPLICATE: "Duplicate instance",
}


def new_id() -> str:
    return str(uuid.uuid4())


def now_iso() -> str:
    return datetime.now(UTC).isoformat()
