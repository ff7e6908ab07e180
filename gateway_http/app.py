"""aiohttp application factory for the HTTP gateway: REST API, dashboard, observers, media.

`create_app(cfg)` builds the resources (one typed key each, gateway_http/keys.py),
wires the route modules (one per area, the Gitea routes and the Telegram webhook
among them), the Host check (hosts.py), the JSON error and CORS middlewares and
the connection guard that `edge.EdgeRunner` serves with. The bus side
(`service.HttpHub`) is started and stopped in `cleanup_ctx`; the port opens only
after its bus round trip works, so a listening gateway is a working one.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from scitex_orochi.hub.config import Config

from . import (
    agent_relay,
    api_agents,
    api_conversations,
    api_fleet,
    api_messages,
    api_operators,
    api_push,
    api_skills,
    api_workspaces,
    dashboard,
    gitea_routes,
    media_hash,
    metrics,
    observers,
    telegram_webhook,
    tickets,
    uploads,
    upstream,
)
from .edge import EDGE, ConnectionGuard
from .errors import cors_middleware, error_middleware
from .hosts import HostPolicy, HostWorkspaces, host_middleware
from .keys import (
    ADMIN_STORE,
    AUTH_CACHE,
    BUS,
    CONFIG,
    COUNTERS,
    OBSERVERS,
    PRESENCE,
    STARTED,
    STORE,
)
from .media import MEDIA, MediaStore
from .service import HttpHub

__all__ = ["create_app"]

ROUTE_MODULES = (
    metrics,
    api_agents,
    api_operators,
    api_push,
    api_messages,
    api_conversations,
    api_fleet,
    api_skills,
    api_workspaces,
    uploads,
    media_hash,
    observers,
    agent_relay,
    tickets,
    dashboard,
    gitea_routes,
    telegram_webhook,
    upstream,
)


def provide_bus_side(app: web.Application, hub: HttpHub) -> None:
    """The resources the bus side owns, each under its key: the one place that knows
    HttpHub's attributes."""
    app[BUS] = hub
    app[STORE] = hub.store
    app[ADMIN_STORE] = hub.admin_store
    app[PRESENCE] = hub.replica
    app[AUTH_CACHE] = hub.auth_cache
    app[OBSERVERS] = hub.observers
    app[COUNTERS] = hub.counters


def _bus_context(hub: HttpHub) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        await hub.start()
        yield
        await hub.stop()

    return context


def create_app(cfg: Config, hub: HttpHub | None = None) -> web.Application:
    """The gateway application; `hub` may be given (tests), else it is built here and
    joins the bus at startup."""
    hub = hub or HttpHub(cfg)
    policy = HostPolicy.from_config(cfg)
    middlewares: list[Middleware] = [error_middleware]
    if cfg.http.cors_origins:
        middlewares.insert(0, cors_middleware(cfg.http.cors_origins))
    middlewares.insert(0, host_middleware(policy, HostWorkspaces(policy, hub.store)))
    # Every route reads its body through bodies.py with its own limit; this only
    # bounds what a stray request.read() could buffer.
    app = web.Application(client_max_size=cfg.ws.max_frame_bytes, middlewares=middlewares)
    app[CONFIG] = cfg
    app[STARTED] = time.time()
    app[EDGE] = ConnectionGuard(cfg.http.max_conn_per_addr, cfg.http.max_connections)
    app[MEDIA] = MediaStore(cfg.http.media_root, cfg.http.media_max_bytes)
    provide_bus_side(app, hub)
    app.cleanup_ctx.append(_bus_context(hub))
    for module in ROUTE_MODULES:
        module.setup(app)
    return app
