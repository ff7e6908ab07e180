"""Entry point: `python -m gateway_http`."""

from __future__ import annotations

import logging

from aiohttp import web

from scitex_orochi.config import SHUTDOWN_DEADLINE_S, Config
from scitex_orochi.files import restrict_umask
from scitex_orochi.logs import setup_logging

from .app import create_app

log = logging.getLogger("orochi.gateway_http")


def main() -> None:
    restrict_umask()  # before any file is created: data files are 0600
    cfg = Config.from_env()
    setup_logging(cfg.log_level, "gateway_http")
    log.info("http gateway on http://%s:%d", cfg.host, cfg.dashboard_port)
    web.run_app(create_app(cfg), host=cfg.host, port=cfg.dashboard_port, print=None,
                shutdown_timeout=SHUTDOWN_DEADLINE_S / 2, reuse_port=True)


if __name__ == "__main__":
    main()
