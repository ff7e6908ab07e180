"""DNS-rebinding guard: the dashboard port answers only Host names it was told about.

A web page on `evil.example` can point its own name at 127.0.0.1 and then talk
to a hub on the user's machine with the browser's help; the `Host` header still
says `evil.example`. Allowed: the configured host (`SCITEX_OROCHI_HOST`),
`localhost`, any IP literal (v4, or v6 in brackets; with or without a port),
the names in `SCITEX_OROCHI_ALLOWED_HOSTS` (a leading dot allows a domain and
its subdomains, `*` allows any name) and the host of
`SCITEX_OROCHI_TELEGRAM_WEBHOOK_URL`, and each base host of
`SCITEX_OROCHI_BASE_HOST` with its one-label subdomains (`<workspace>.<base>`:
the base is the operator's domain, so its subdomains are too). Anything else
gets 421 with a JSON error naming the setting to change. A request without a
Host header (HTTP/1.0) is not a browser's and passes.

`HostWorkspaces` turns a `<label>.<base>` Host into the workspace it opens: the
workspace whose id is the label, or whose name, lower-cased, is; at most every
HOST_CACHE_S from the database. `auth.py` makes it the request's workspace.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import time
from collections.abc import Iterable
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Middleware

from scitex_orochi.hub.config import ENV_PREFIX, Config
from scitex_orochi.hub.store import Store

from .errors import Handler, error_response

SETTING = f"{ENV_PREFIX}ALLOWED_HOSTS"
BASE_SETTING = f"{ENV_PREFIX}BASE_HOST"
ALWAYS_ALLOWED = ("localhost",)
LABEL_RE = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
HOST_CACHE_S = 2.0
HOST_CACHE_MAX = 1000
# The workspace the request's Host opens (`<workspace>.<base>`), set by host_middleware.
HOST_WORKSPACE = web.RequestKey("host_workspace", str)


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
    """The label of a `<label>.<base host>` name (one DNS label), or None."""
    for base in base_hosts:
        if name.endswith("." + base):
            label = name[: -len(base) - 1]
            if LABEL_RE.fullmatch(label):
                return label
    return None


class HostPolicy:
    def __init__(
        self,
        configured_host: str,
        allowed: Iterable[str],
        extra: Iterable[str] = (),
        base_hosts: Iterable[str] = (),
    ) -> None:
        self.base_hosts = tuple(host_name(b) for b in base_hosts if b)
        names = {
            host_name(n)
            for n in (*ALWAYS_ALLOWED, configured_host, *allowed, *extra, *self.base_hosts)
            if n
        }
        self.any = "*" in names
        self.suffixes = tuple(n for n in names if n.startswith("."))
        self.names = frozenset(n for n in names if not n.startswith("."))

    @classmethod
    def from_config(cls, cfg: Config) -> HostPolicy:
        extra = []
        if cfg.telegram.webhook_url:
            extra.append(urlsplit(cfg.telegram.webhook_url).hostname or "")
        return cls(cfg.host, cfg.http.allowed_hosts, extra, cfg.http.base_hosts)

    def workspace_label(self, header: str | None) -> str | None:
        """The workspace label of a `<label>.<base>` Host, or None."""
        if header is None or not self.base_hosts:
            return None
        return workspace_subdomain(host_name(header), self.base_hosts)

    def allows(self, header: str | None) -> bool:
        if header is None or self.any:
            return True
        name = host_name(header)
        if name in self.names or is_ip_literal(name):
            return True
        if any(name.endswith(s) or name == s[1:] for s in self.suffixes):
            return True
        return workspace_subdomain(name, self.base_hosts) is not None


class HostWorkspaces:
    """Subdomain label -> workspace id (None: no such workspace), cached briefly."""

    def __init__(self, policy: HostPolicy, store: Store) -> None:
        self.policy = policy
        self.store = store
        self._cache: dict[str, tuple[float, str | None]] = {}

    def _lookup(self, label: str) -> str | None:
        for ws in self.store.list_workspaces():
            if ws["id"].lower() == label or str(ws["name"]).strip().lower() == label:
                return str(ws["id"])
        return None

    async def resolve(self, label: str) -> str | None:
        now = time.monotonic()
        hit = self._cache.get(label)
        if hit is not None and now - hit[0] < HOST_CACHE_S:
            return hit[1]
        workspace = await asyncio.to_thread(self._lookup, label)
        if len(self._cache) >= HOST_CACHE_MAX:
            self._cache.clear()
        self._cache[label] = (now, workspace)
        return workspace


def host_middleware(policy: HostPolicy, workspaces: HostWorkspaces | None = None) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        header = request.headers.get("Host")
        label = policy.workspace_label(header)
        if label is not None and workspaces is not None:
            workspace = await workspaces.resolve(label)
            if workspace is None:
                return error_response(
                    404, f"no workspace {label!r} on this hub", setting=BASE_SETTING
                )
            request[HOST_WORKSPACE] = workspace
        elif not policy.allows(header):
            shown = "".join(c if c.isprintable() else "?" for c in (header or ""))[:100]
            return error_response(
                421,
                f"this hub does not answer for host {shown!r}: add it to {SETTING} "
                f"(comma-separated names) to allow it",
                setting=SETTING,
            )
        return await handler(request)

    return middleware
