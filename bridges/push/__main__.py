"""Entry point: `python -m bridges.push`."""

from __future__ import annotations

import asyncio
import sys

from scitex_orochi.hub.config import Config
from scitex_orochi.hub.files import restrict_umask
from scitex_orochi.hub.logs import setup_logging
from scitex_orochi.hub.store import Store

from .service import PushWorker


def main() -> int:
    restrict_umask()  # before any file is created: the VAPID key is 0600
    cfg = Config.from_env()
    setup_logging(cfg.log.level, "push", cfg.legacy_env)
    store = Store(cfg.db.url, readonly=True)  # writes go to the persister
    try:
        return asyncio.run(PushWorker(cfg, store).run())
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main())
