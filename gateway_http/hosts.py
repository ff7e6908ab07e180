"""DNS-rebinding guard: the dashboard port answers only Host names it was told about.

A web page on `evil.example` can point its own name at 127.0.0.1 and then talk
to a hub on the user's machine with the browser's help; the `Host` header still
says `evil.example`. Allowed: the configured host (`SCITEX_OROCHI_HOST`),
`localhost`, any IP literal (v4, or v6 in brackets; with or without a port),
the names in `SCITEX_OROCHI_ALLOWED_HOSTS` (a leading dot allows a domain and
its subdomains, `*` allows any name) and the host of
`SCITEX_OROCHI_TELEGRAM_WEBHOOK_URL`. Anything else gets 421 with a JSON error
naming the setting to change. A request without a Host header (HTTP/1.0) is
not a browser's and passes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Middleware

from scitex_orochi.hub.config import ENV_PREFIX, Config

from .errors import Handler, error_response

SETTING = f"{ENV_PREFIX}ALLOWED_HOSTS"
ALWAYS_ALLOWED = ("localhost",)


def host_name(header: str) -> str:
    """The name in a Host header: port, brackets and a trailing dot removed, lower-case."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    if value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


def is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def workspace_subdomain(name: str, base_hosts: Iterable[str]) -> str | None:
    """The workspace a `<workspace>.<base host>` name addresses, or None.

    The extension point for per-workspace subdomains: none are served yet, so
    no such name is allowed by this rule.
    """
    return None


class HostPolicy:
    def __init__(
        self, configured_host: str, allowed: Iterable[str], extra: Iterable[str] = ()
    ) -> None:
        names = {host_name(n) for n in (*ALWAYS_ALLOWED, configured_host, *allowed, *extra) if n}
        self.any = "*" in names
        self.suffixes = tuple(n for n in names if n.startswith("."))
        self.names = frozenset(n for n in names if not n.startswith("."))

    @classmethod
    def from_config(cls, cfg: Config) -> HostPolicy:
        extra = []
        if cfg.telegram.webhook_url:
            extra.append(urlsplit(cfg.telegram.webhook_url).hostname or "")
        return cls(cfg.host, cfg.http.allowed_hosts, extra)

    def allows(self, header: str | None) -> bool:
        if header is None or self.any:
            return True
        name = host_name(header)
        if name in self.names or is_ip_literal(name):
            return True
        if any(name.endswith(s) or name == s[1:] for s in self.suffixes):
            return True
        return workspace_subdomain(name, self.names) is not None


def host_middleware(policy: HostPolicy) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        header = request.headers.get("Host")
        if not policy.allows(header):
            shown = "".join(c if c.isprintable() else "?" for c in (header or ""))[:100]
            return error_response(
                421,
                f"this hub does not answer for host {shown!r}: add it to {SETTING} "
                f"(comma-separated names) to allow it",
                setting=SETTING,
            )
        return await handler(request)

    return middleware
