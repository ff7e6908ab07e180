"""Entry point: `python -m broker`."""

from __future__ import annotations

import logging
import sys

from scitex_orochi.hub.bus_keys import load_server
from scitex_orochi.hub.config import Config, ConfigError
from scitex_orochi.hub.files import restrict_umask
from scitex_orochi.hub.logs import setup_logging

from .service import block_stop_signals, serve

log = logging.getLogger("orochi.broker")


def main() -> int:
    block_stop_signals()  # a SIGTERM while starting waits for the stop waiter, not lost
    restrict_umask()  # before any file is created: data files are 0600
    try:
        cfg = Config.from_env()
        setup_logging(cfg.log.level, "broker", cfg.legacy_env)
        curve = load_server(cfg) if cfg.bus.curve else None
    except ConfigError as exc:
        logging.basicConfig()
        log.error("bad configuration: %s", exc)
        return 2
    serve(cfg.bus.in_endpoint, cfg.bus.out_endpoint, curve)
    return 0


if __name__ == "__main__":
    sys.exit(main())
