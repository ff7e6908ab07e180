"""Entry point: `python -m gateway_ws`."""

from __future__ import annotations

import asyncio

from scitex_orochi.config import Config
from scitex_orochi.files import restrict_umask
from scitex_orochi.logs import setup_logging
from scitex_orochi.store import Store

from .service import Gateway


def main() -> None:
    restrict_umask()  # before any file is created: data files are 0600
    cfg = Config.from_env()
    setup_logging(cfg.log_level, "gateway_ws")
    store = Store(cfg.db_url, readonly=True)
    asyncio.run(Gateway(cfg, store).run())


if __name__ == "__main__":
    main()
