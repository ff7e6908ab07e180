"""Stable and dev dashboards: a dashboard that follows another hub, and the browser-origin
rule of the observer socket.

Following (the dev side): with `SCITEX_OROCHI_DASHBOARD_WS_UPSTREAM` set (the upstream
hub's base URL, scitex_orochi/hub/upstream.py), `GET /upstream` tells the page,
before any sign-in, which hub it shows: `{"upstream": {url, origin, ws, host}}`, or
`{"upstream": null}`. The page then signs in with a token *of the upstream*, reads
REST from the upstream's origin and opens the upstream's observer socket (static/
upstream.js); it does not write (no posting, reactions, edits or uploads). The page's
Content-Security-Policy lets it connect to that origin.

Being followed (the stable side): a browser's cross-origin request carries `Origin`.
The observer socket (`/ws`) accepts a handshake without `Origin` (agents, CLI and other
non-browser clients), from the hub's own origin (the `Host`, or `X-Forwarded-Host`
behind a proxy, which a page cannot set on a WebSocket), or from an origin listed in
`SCITEX_OROCHI_CORS_ORIGINS` (`*`: any); any other gets 403 before the upgrade, so a
page elsewhere cannot drive a signed-in person's socket. REST answers the listed
origins' CORS preflights and requests (errors.cors_middleware).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from scitex_orochi.hub.config import ENV_PREFIX, Config
from scitex_orochi.hub.upstream import DEFAULT_PORTS, Upstream, origin_of, parse_upstream
from scitex_orochi.protocol.errors import ErrorCode

from .errors import ApiError
from .keys import CONFIG

CORS_SETTING = f"{ENV_PREFIX}CORS_ORIGINS"


def upstream_of(cfg: Config) -> Upstream | None:
    raw = cfg.http.dashboard_ws_upstream
    return parse_upstream(raw) if raw else None


def connect_src(cfg: Config) -> str:
    """The page's CSP connect-src: itself, WebSockets, and the upstream when following."""
    upstream = upstream_of(cfg)
    extra = f" {upstream.origin}" if upstream else ""
    return f"connect-src 'self'{extra} ws: wss:"


def _host_port(netloc: str, scheme: str) -> tuple[str, int | None] | None:
    try:
        parts = urlsplit(f"//{netloc.strip()}")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.hostname.lower().rstrip("."), port or DEFAULT_PORTS.get(scheme)


def is_own_origin(request: web.Request, origin: str) -> bool:
    """`origin` names the host the request was sent to (its Host or X-Forwarded-Host)."""
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return False
    mine = (parts.hostname.lower().rstrip("."), port or DEFAULT_PORTS[scheme])
    forwarded = request.headers.get("X-Forwarded-Host", "").split(",")[0]
    for header in (request.headers.get("Host", ""), forwarded):
        if header and _host_port(header, scheme) == mine:
            return True
    return False


def origin_allowed(request: web.Request, origins: tuple[str, ...]) -> bool:
    """The browser-origin rule of the observer socket (see the module's doc)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    listed = {origin_of(o) for o in origins}
    return "*" in listed or origin_of(origin) in listed or is_own_origin(request, origin)


def check_ws_origin(request: web.Request) -> None:
    """403 (before the upgrade) for a browser page of an origin not allowed."""
    if not origin_allowed(request, request.app[CONFIG].http.cors_origins):
        origin = request.headers.get("Origin", "")[:200]
        raise ApiError(
            ErrorCode.FORBIDDEN,
            f"origin {origin!r} may not open the live feed; list it in {CORS_SETTING}",
        )


async def upstream(request: web.Request) -> web.Response:
    """`{"upstream": {url, origin, ws, host} | null}`: no token needed (the page asks
    before sign-in, to know whose token to ask for; its CSP names the origin anyway)."""
    found = upstream_of(request.app[CONFIG])
    return web.json_response(
        {"upstream": found.as_json() if found else None},
        headers={"Cache-Control": "no-cache"},
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/upstream", upstream)
