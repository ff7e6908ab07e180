"""Entry point: `python -m bridges.telegram`."""

from __future__ import annotations

import asyncio
import logging
import sys

from scitex_orochi.hub.config import Config
from scitex_orochi.hub.files import restrict_umask
from scitex_orochi.hub.logs import setup_logging
from scitex_orochi.hub.store import Store

from .service import TelegramBridge

log = logging.getLogger("orochi.telegram")


def main() -> int:
    restrict_umask()  # before any file is created: data files are 0600
    cfg = Config.from_env()
    setup_logging(cfg.log.level, "telegram", cfg.legacy_env)
    if not cfg.telegram.enabled:
        log.error("the Telegram bridge is disabled: set SCITEX_OROCHI_TELEGRAM_BRIDGE_ENABLED=true")
        return 2
    store = Store(cfg.db.url, readonly=True)
    try:
        return asyncio.run(TelegramBridge(cfg, store).run())
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main())
