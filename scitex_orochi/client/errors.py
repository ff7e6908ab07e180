"""Every exception the agent client, its REST helper, the CLI and the MCP server raise.

OrochiError
├── ConnectionFailed      the hub cannot be reached (URL and what to check in the text)
├── AuthError             the token was refused (AUTH_FAILED / close 4001 / HTTP 401, 403)
├── Replaced              another connection registered the same name (close 4000)
├── RequestTimeout        no reply to a request within its timeout
├── ClientClosed          the client was closed while a call was waiting
├── FrameTooLarge         a frame is over the hub's size limit; it was not sent
└── ServerError           the hub answered with an error (`code`, `detail`)
    └── NotFound          the thing asked for does not exist (HTTP 404, unknown channel)
"""

from __future__ import annotations


class OrochiError(Exception):
    """Base of every error raised by the Orochi client side."""


class ConnectionFailed(OrochiError):
    """The hub could not be reached, or the connection was lost for good."""

    def __init__(self, message: str, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class AuthError(OrochiError):
    """The hub refused the token. Retrying with the same token cannot help."""


class Replaced(OrochiError):
    """A newer connection registered the same agent name; this one was closed (4000)."""


class RequestTimeout(OrochiError):
    """A request got no reply within its timeout."""


class ClientClosed(OrochiError):
    """The client was closed while a call was still waiting for its reply."""


class FrameTooLarge(OrochiError):
    """A frame is larger than the hub accepts; it was not sent."""


class ServerError(OrochiError):
    """The hub answered a request with an error frame or an HTTP error status."""

    def __init__(self, code: str, detail: str = "", status: int | None = None) -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail
        self.status = status


class NotFound(ServerError):
    """The workspace, invite, channel or other object does not exist."""


__all__ = [
    "AuthError",
    "ClientClosed",
    "ConnectionFailed",
    "FrameTooLarge",
    "NotFound",
    "OrochiError",
    "Replaced",
    "RequestTimeout",
    "ServerError",
]
