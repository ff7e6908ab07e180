"""aiohttp application factory for the HTTP gateway: REST API, dashboard, observers, media.

`create_app(cfg)` wires the route modules (one per area), the Host check
(hosts.py), the JSON error and CORS middlewares, the connection guard that
`edge.EdgeRunner` serves with, and the bus client (`HttpHub`) started and
stopped in `cleanup_ctx`. The port opens only after the bus round trip works, so a
listening gateway is a working one. Bridges add their routes through
`gateway_http.gitea_routes.setup(app)` / `gateway_http.telegram_webhook.setup(app)`
when those modules exist.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import AsyncIterator

from aiohttp import web

from scitex_orochi.hub.config import Config

from . import (
    api_agents,
    api_messages,
    api_workspaces,
    dashboard,
    metrics,
    observers,
    tickets,
    uploads,
)
from .edge import ConnectionGuard
from .errors import cors_middleware, error_middleware
from .hosts import HostPolicy, host_middleware
from .keys import CONFIG, EDGE, HUB, STARTED
from .service import HttpHub

log = logging.getLogger("orochi.gateway_http")

OPTIONAL_ROUTE_MODULES = ("gateway_http.gitea_routes", "gateway_http.telegram_webhook")

__all__ = ["CONFIG", "HUB", "STARTED", "create_app"]


def _hub_context(hub: HttpHub | None):
    async def context(app: web.Application) -> AsyncIterator[None]:
        app[HUB] = hub or HttpHub(app[CONFIG])
        await app[HUB].start()
        yield
        await app[HUB].stop()

    return context


def _optional_routes(app: web.Application) -> None:
    for name in OPTIONAL_ROUTE_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise  # the module exists but one of its imports is missing: say so
            continue
        module.setup(app)
        log.info("routes of %s added", name)


def create_app(cfg: Config, hub: HttpHub | None = None) -> web.Application:
    """The gateway application; `hub` may be given (tests), else it is built at startup."""
    middlewares = [error_middleware]
    if cfg.cors_origins:
        middlewares.insert(0, cors_middleware(cfg.cors_origins))
    middlewares.insert(0, host_middleware(HostPolicy.from_config(cfg)))
    # Every route reads its body through bodies.py with its own limit; this only
    # bounds what a stray request.read() could buffer.
    app = web.Application(client_max_size=cfg.max_frame_bytes, middlewares=middlewares)
    app[CONFIG] = cfg
    app[STARTED] = time.time()
    app[EDGE] = ConnectionGuard(cfg.http_max_conn_per_addr, cfg.http_max_connections)
    app.cleanup_ctx.append(_hub_context(hub))
    for module in (metrics, api_agents, api_messages, api_workspaces, uploads, observers,
                   tickets, dashboard):
        module.setup(app)
    _optional_routes(app)
    return app
