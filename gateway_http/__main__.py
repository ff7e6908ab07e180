"""Entry point: `python -m gateway_http`."""

from __future__ import annotations

import logging
import sys

from aiohttp import web

from scitex_orochi.bus_keys import client_keys
from scitex_orochi.config import SHUTDOWN_DEADLINE_S, Config, ConfigError
from scitex_orochi.logs import setup_logging

from .app import create_app

log = logging.getLogger("orochi.gateway_http")


def main() -> int:
    try:
        cfg = Config.from_env()
        setup_logging(cfg.log_level, "gateway_http")
        client_keys(cfg)  # a missing bus key fails here, by name, before anything starts
    except ConfigError as exc:
        logging.basicConfig()
        log.error("bad configuration: %s", exc)
        return 2
    log.info("http gateway on http://%s:%d", cfg.host, cfg.dashboard_port)
    web.run_app(create_app(cfg), host=cfg.host, port=cfg.dashboard_port, print=None,
                shutdown_timeout=SHUTDOWN_DEADLINE_S / 2, reuse_port=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
