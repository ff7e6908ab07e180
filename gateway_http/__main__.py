"""Entry point: `python -m gateway_http`.

Served through `edge.EdgeRunner` (connection limits, request-head timeout,
redacting access log) rather than `web.run_app`, in the same order: the app's
start-up (the bus round trip) finishes before the port opens, and SIGTERM or
SIGINT closes the port, lets requests in flight finish within half the
shutdown deadline, then stops the bus client.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from aiohttp import web

from scitex_orochi.hub.bus_keys import client_keys
from scitex_orochi.hub.config import SHUTDOWN_DEADLINE_S, Config, ConfigError
from scitex_orochi.hub.files import restrict_umask
from scitex_orochi.hub.logs import setup_logging

from .accesslog import AccessLogger
from .app import create_app
from .edge import KEEPALIVE_S, EdgeRunner

log = logging.getLogger("orochi.gateway_http")

LISTEN_BACKLOG = 1024  # aiohttp's 128 drops SYNs under a burst of connections


async def serve(cfg: Config) -> None:
    runner = EdgeRunner(
        create_app(cfg),
        access_log_class=AccessLogger,
        keepalive_timeout=KEEPALIVE_S,
        shutdown_timeout=SHUTDOWN_DEADLINE_S / 2,
    )
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        site = web.TCPSite(runner, cfg.host, cfg.http.port, backlog=LISTEN_BACKLOG, reuse_port=True)
        await site.start()
        log.info("http gateway on http://%s:%d", cfg.host, cfg.http.port)
        await stop.wait()
        log.info("stopping")
    finally:
        await runner.cleanup()


def main() -> int:
    restrict_umask()  # before any file is created: data files are 0600
    try:
        cfg = Config.from_env()
        setup_logging(cfg.log.level, "gateway_http", cfg.legacy_env)
        client_keys(cfg)  # a missing bus key fails here, by name, before anything starts
    except ConfigError as exc:
        logging.basicConfig()
        log.error("bad configuration: %s", exc)
        return 2
    asyncio.run(serve(cfg))
    return 0


if __name__ == "__main__":
    sys.exit(main())
