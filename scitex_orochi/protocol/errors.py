"""Every error code the hub puts on the wire (error frames, acks, REST bodies), and the
HTTP status each one is answered with over REST.

Codes are never string literals elsewhere: raise or answer with an `ErrorCode`
(a `str` enum, so it serialises as its name). `http_status(code)` is the one
table from code to status.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    # Frames that cannot be read or used (PROTOCOL.md §2).
    PARSE_ERROR = "PARSE_ERROR"
    UNKNOWN_TYPE = "UNKNOWN_TYPE"
    UNSUPPORTED_TYPE = "UNSUPPORTED_TYPE"  # a type this socket does not take (observers)
    INVALID_FIELD = "INVALID_FIELD"
    # Identity and authority.
    AUTH_FAILED = "AUTH_FAILED"
    NOT_REGISTERED = "NOT_REGISTERED"
    SENDER_MISMATCH = "SENDER_MISMATCH"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    GONE = "GONE"  # an invite used up or expired
    # Messages the persister refuses.
    INVALID_MESSAGE = "INVALID_MESSAGE"
    DUPLICATE_ID = "DUPLICATE_ID"
    # Conversations (PROTOCOL.md §10).
    UNKNOWN_MESSAGE = "UNKNOWN_MESSAGE"  # a reaction, edit or delete of no stored message
    MESSAGE_DELETED = "MESSAGE_DELETED"  # an edit or reaction of a tombstone
    NOT_A_MEMBER = "NOT_A_MEMBER"  # a DM one is not a participant of
    # Bounds and fairness (docs/security.md).
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    RATE_LIMITED = "RATE_LIMITED"
    OVERLOADED = "OVERLOADED"
    TOO_MANY_CONNECTIONS = "TOO_MANY_CONNECTIONS"
    TOO_LARGE = "TOO_LARGE"
    PERSIST_TIMEOUT = "PERSIST_TIMEOUT"
    # Gitea (PROTOCOL.md §3, §8).
    GITEA_UNKNOWN_ACTION = "GITEA_UNKNOWN_ACTION"
    GITEA_MISSING_PARAM = "GITEA_MISSING_PARAM"
    GITEA_API_ERROR = "GITEA_API_ERROR"
    GITEA_NOT_CONFIGURED = "GITEA_NOT_CONFIGURED"
    # Bridges and the server itself.
    TELEGRAM_BRIDGE_ERROR = "TELEGRAM_BRIDGE_ERROR"
    SERVER_ERROR = "SERVER_ERROR"


HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.PARSE_ERROR: 400,
    ErrorCode.UNKNOWN_TYPE: 400,
    ErrorCode.UNSUPPORTED_TYPE: 400,
    ErrorCode.INVALID_FIELD: 400,
    ErrorCode.AUTH_FAILED: 401,
    ErrorCode.NOT_REGISTERED: 400,
    ErrorCode.SENDER_MISMATCH: 403,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.GONE: 410,
    ErrorCode.INVALID_MESSAGE: 400,
    ErrorCode.DUPLICATE_ID: 409,
    ErrorCode.UNKNOWN_MESSAGE: 404,
    ErrorCode.MESSAGE_DELETED: 409,
    ErrorCode.NOT_A_MEMBER: 403,
    ErrorCode.LIMIT_EXCEEDED: 400,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.OVERLOADED: 503,
    ErrorCode.TOO_MANY_CONNECTIONS: 503,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.PERSIST_TIMEOUT: 503,
    ErrorCode.GITEA_UNKNOWN_ACTION: 400,
    ErrorCode.GITEA_MISSING_PARAM: 400,
    ErrorCode.GITEA_API_ERROR: 502,
    ErrorCode.GITEA_NOT_CONFIGURED: 503,
    ErrorCode.TELEGRAM_BRIDGE_ERROR: 500,
    ErrorCode.SERVER_ERROR: 500,
}


def http_status(code: str) -> int:
    """The HTTP status of a wire code (500 for a code this table does not know)."""
    try:
        return HTTP_STATUS[ErrorCode(code)]
    except ValueError:
        return 500
