"""Every error the hub's server side raises, under one root: `HubError`.

Each error carries its wire code (`scitex_orochi.protocol.errors.ErrorCode`), a
`detail` for people, the input `field` to blame when there is one, and `extra`
fields for the answer's body. The HTTP status comes from the code through the one
table, `protocol.errors.http_status`; the HTTP gateway's middleware renders any
`HubError` as `{"error": detail, "status": ..., "field"?: ..., **extra}`.

    HubError                    the root                                  (any code)
    ├── ConfigError             a setting is missing or malformed         SERVER_ERROR
    ├── BusError                the bus cannot be reached, or no CURVE    SERVER_ERROR
    ├── SuperviseError          the hub's processes could not be started  SERVER_ERROR
    ├── RpcTimeout              hub/peer.py: no bus service answered      SERVER_ERROR
    ├── RpcError                hub/peer.py: a served handler's refusal,  (its body's)
    │                           carried to the requester as its body
    ├── IngestTimeout           the persister did not confirm in time     PERSIST_TIMEOUT
    ├── IngestFull              too many bytes wait for the persister     OVERLOADED
    ├── StoreError              the store refuses (hub/store_admin.py)    SERVER_ERROR
    │   ├── WorkspaceNotFound   no such workspace                         NOT_FOUND
    │   ├── Conflict            a duplicate name, the default workspace   CONFLICT
    │   ├── InviteError         the invite cannot be used                 GONE
    │   │   ├── UnknownInvite   no such invite                            NOT_FOUND
    │   │   └── InviteGone      used up or expired                        GONE
    │   └── ReadOnlyStore       a write on a store opened read-only       SERVER_ERROR
    ├── InvalidInbound          persister/rows.py: a body it cannot store INVALID_MESSAGE
    ├── ActionError             bridges/gitea/actions.py: bad action      GITEA_UNKNOWN_ACTION,
    │                           or parameter                              GITEA_MISSING_PARAM
    ├── GiteaForbidden          bridges/gitea/authority.py                FORBIDDEN
    ├── GiteaApiError           bridges/gitea/api.py: Gitea failed        GITEA_API_ERROR
    │   └── WorkerTimeout       gateway_http/gitea_routes.py: no answer   GITEA_API_ERROR
    └── ApiError                gateway_http/errors.py: a REST refusal    (any code)
        └── MessageRefused      gateway_http/posting.py: the persister    INVALID_MESSAGE,
                                refused a posted message                  DUPLICATE_ID

Two statuses are relayed rather than looked up, both on the Gitea path and both
documented there: Gitea's own 4xx answer (`GiteaApiError`), and 504 when the
worker does not answer (`WorkerTimeout`).

Outside this tree: `scitex_orochi.protocol.codec.ProtocolError` (the pure protocol
imports nothing of the hub; it carries an `ErrorCode` and a `field` too), and the
agent client's own tree, `scitex_orochi.client.errors.OrochiError`.

`BusError`, `IngestTimeout` and `IngestFull` are defined here for `hub/bus.py` and
`hub/ingest.py` to import (they still define their own until the bus peer lands).
"""

from __future__ import annotations

from typing import Any

from scitex_orochi.hub.bus_bodies import ErrorBody
from scitex_orochi.protocol.errors import ErrorCode, http_status

__all__ = [
    "BusError",
    "ConfigError",
    "Conflict",
    "HubError",
    "IngestFull",
    "IngestTimeout",
    "InviteError",
    "InviteGone",
    "ReadOnlyStore",
    "RpcError",
    "RpcTimeout",
    "StoreError",
    "SuperviseError",
    "UnknownInvite",
    "WorkspaceNotFound",
    "as_code",
]


class HubError(Exception):
    """The root of the server's errors: a code, a detail, and what the answer shows.

    `code` defaults to the class's own; `field` names the input to blame; `extra`
    holds more JSON fields of the answer's body (`limit`, `id`, ...).
    """

    code: ErrorCode = ErrorCode.SERVER_ERROR
    # The body names the code when an agent sees the same code over its socket
    # (Gitea, refused messages); elsewhere REST bodies have never carried one.
    code_in_body: bool = False

    def __init__(
        self,
        detail: str = "",
        *,
        code: ErrorCode | None = None,
        field: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = ErrorCode(code)
        self.field = field
        self.extra = extra

    @property
    def http_status(self) -> int:
        """The HTTP status of this error's code (`protocol.errors.HTTP_STATUS`)."""
        return http_status(self.code)

    @property
    def body(self) -> dict[str, Any]:
        """The JSON body of the error's HTTP answer."""
        body: dict[str, Any] = {"error": self.detail, "status": self.http_status}
        if self.field is not None:
            body["field"] = self.field
        if self.code_in_body:
            body["code"] = str(self.code)
        body.update(self.extra)
        return body


def as_code(value: Any, default: ErrorCode) -> ErrorCode:
    """The `ErrorCode` of a code that came from another process, else `default`."""
    try:
        return ErrorCode(value)
    except ValueError:
        return default


# ---- configuration, bus, supervision ---------------------------------------------
class ConfigError(HubError, ValueError):
    """A configuration value is missing or malformed."""


class BusError(HubError, RuntimeError):
    """The bus could not be reached in time, or a tcp endpoint was given no CURVE keys."""


class SuperviseError(HubError, RuntimeError):
    """The hub could not be started."""


# ---- request / reply over the bus (hub/peer.py) ----------------------------------
class RpcTimeout(HubError, TimeoutError):
    """No bus service answered in time (it may not be running)."""


class RpcError(HubError):
    """Raised by a served handler: the request is answered with this error body."""

    def __init__(self, error: ErrorBody) -> None:
        super().__init__(
            str(error.get("detail", "")), code=as_code(error.get("code"), ErrorCode.SERVER_ERROR)
        )
        self.error = error


# ---- ingest -----------------------------------------------------------------------
class IngestTimeout(HubError, TimeoutError):
    """The persister did not confirm the message in time (it stays queued for republish)."""

    code = ErrorCode.PERSIST_TIMEOUT


class IngestFull(HubError, RuntimeError):
    """Too many bytes are waiting for the persister: refuse new messages for now."""

    code = ErrorCode.OVERLOADED

    def __init__(self, pending_bytes: int, limit: int) -> None:
        super().__init__(
            f"{pending_bytes} bytes of messages are waiting to be stored "
            f"(limit {limit}); retry shortly"
        )
        self.pending_bytes = pending_bytes
        self.limit = limit


# ---- the store --------------------------------------------------------------------
class StoreError(HubError):
    """Base of the store's errors: WorkspaceNotFound, Conflict, InviteError, ReadOnlyStore."""


class WorkspaceNotFound(StoreError):
    """The workspace does not exist."""

    code = ErrorCode.NOT_FOUND


class Conflict(StoreError):
    """The change would break a rule (duplicate name, deleting the default workspace)."""

    code = ErrorCode.CONFLICT


class InviteError(StoreError):
    """The invite cannot be used: unknown, used up or expired."""

    code = ErrorCode.GONE


class UnknownInvite(InviteError):
    """No invite has this code."""

    code = ErrorCode.NOT_FOUND


class InviteGone(InviteError):
    """The invite was used up or has expired."""

    code = ErrorCode.GONE


class ReadOnlyStore(StoreError):
    """A write was attempted on a store opened read-only."""
