"""aiohttp application factory for the HTTP gateway.

Minimal for now: `/healthz` answers once the process is up and its bus round
trip works. The REST API and dashboard grow here.
"""

from __future__ import annotations

import time

from aiohttp import web

from scitex_orochi import __version__
from scitex_orochi.config import Config

CONFIG = web.AppKey("config", Config)
STARTED = web.AppKey("started", float)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({
        "status": "ok", "version": __version__,
        "uptime_s": round(time.time() - request.app[STARTED], 3),
    })


def create_app(cfg: Config) -> web.Application:
    app = web.Application(client_max_size=cfg.media_max_size + 1024 * 1024)
    app[CONFIG] = cfg
    app[STARTED] = time.time()
    app.router.add_get("/healthz", healthz)
    return app
