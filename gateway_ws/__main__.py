"""Entry point: `python -m gateway_ws`."""

from __future__ import annotations

import asyncio
import logging
import sys

from scitex_orochi.hub.bus_keys import client_keys
from scitex_orochi.hub.config import Config, ConfigError
from scitex_orochi.hub.files import restrict_umask
from scitex_orochi.hub.logs import setup_logging
from scitex_orochi.hub.store import Store

from .service import Gateway

log = logging.getLogger("orochi.gateway_ws")


def main() -> int:
    restrict_umask()  # before any file is created: data files are 0600
    try:
        cfg = Config.from_env()
        setup_logging(cfg.log.level, "gateway_ws", cfg.legacy_env)
        client_keys(cfg)  # a missing bus key fails here, by name, before anything starts
    except ConfigError as exc:
        logging.basicConfig()
        log.error("bad configuration: %s", exc)
        return 2
    store = Store(cfg.db.url, readonly=True)
    asyncio.run(Gateway(cfg, store).run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
