"""The HTTP gateway's access log: one line per request, with every secret taken out.

Tokens travel in query strings (`/ws?token=`, `/media/...?token=`, `/?token=`),
tickets in `/ws?ticket=`, and tokens and invite codes in the paths of the admin
routes (`/api/workspaces/{id}/tokens/{token}`, `.../invites/{code}`). `redact_target`
replaces each of them with `***`; the access line carries no request header but
the User-Agent (never Authorization, Cookie or Referer). Lines for error answers
(status >= 400) are rate-limited per status by the repeat filter of
`scitex_orochi.hub.logs`, so a flood of refused requests costs a bounded number of lines.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

access_log = logging.getLogger("orochi.gateway_http.access")

REDACTED = "***"
MAX_TARGET_CHARS = 500
MAX_AGENT_CHARS = 120
# Query parameters whose value is a credential (compared lower-case).
SECRET_PARAMS = frozenset(
    {
        "token",
        "ticket",
        "invite",
        "access_token",
        "api_key",
        "apikey",
        "key",
        "secret",
        "password",
        "auth",
        "authorization",
    }
)
SECRET_PARAM_PARTS = ("token", "secret", "password", "ticket")
# Path segments that are credentials: tokens and invite codes in the admin routes.
_SECRET_SEGMENT_RE = re.compile(r"^(/api/workspaces/[^/?]+/(?:tokens|invites)/)[^/?]+")
# Anything shaped like one of our credentials, wherever it shows up.
_CREDENTIAL_RE = re.compile(r"\b(wks|inv|wst)_[A-Za-z0-9_-]{8,}")


def secret_param(name: str) -> bool:
    lowered = unquote(name).lower()
    return lowered in SECRET_PARAMS or any(part in lowered for part in SECRET_PARAM_PARTS)


def redact_query(query: str) -> str:
    parts = []
    for item in query.split("&"):
        name, eq, _value = item.partition("=")
        parts.append(f"{name}={REDACTED}" if eq and secret_param(name) else item)
    return "&".join(parts)


def redact_target(target: str) -> str:
    """A request target (path and query, raw) safe to log."""
    path, qmark, query = target.partition("?")
    path = _SECRET_SEGMENT_RE.sub(lambda m: m.group(1) + REDACTED, path)
    out = path + (qmark + redact_query(query) if qmark else "")
    out = _CREDENTIAL_RE.sub(lambda m: f"{m.group(1)}_{REDACTED}", out)
    if len(out) > MAX_TARGET_CHARS:
        out = out[:MAX_TARGET_CHARS] + "..."
    return out


def _printable(text: str, limit: int) -> str:
    return "".join(c if c.isprintable() and c != '"' else "?" for c in text[:limit])


class AccessLogger(AbstractAccessLogger):
    """`remote "METHOD target HTTP/x.y" status bytes seconds "user agent"`, secrets redacted."""

    def __init__(self, logger: logging.Logger = access_log, log_format: str = "") -> None:
        # aiohttp passes its own access logger and format; ours are fixed.
        super().__init__(access_log, log_format)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        status = response.status
        version = request.version
        self.logger.info(
            '%s "%s %s HTTP/%d.%d" %d %d %.3fs "%s"',
            request.remote or "-",
            _printable(request.method, 20),
            _printable(redact_target(request.raw_path), MAX_TARGET_CHARS + 3),
            version.major,
            version.minor,
            status,
            response.body_length,
            time,
            _printable(request.headers.get("User-Agent", "-"), MAX_AGENT_CHARS),
            # Successful answers are ordinary traffic; error answers are what floods.
            extra={"rate_key": None if status < 400 else f"access status {status}"},
        )
