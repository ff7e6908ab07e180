"""Entry point: `python -m bridges.gitea`."""

from __future__ import annotations

import asyncio
import logging
import sys

from scitex_orochi.hub.config import Config
from scitex_orochi.hub.files import restrict_umask
from scitex_orochi.hub.logs import setup_logging

from .service import GiteaWorker

log = logging.getLogger("orochi.gitea")


def main() -> int:
    restrict_umask()  # before any file is created: data files are 0600
    cfg = Config.from_env()
    setup_logging(cfg.log.level, "gitea", cfg.legacy_env)
    if not cfg.gitea.url:
        log.error("SCITEX_OROCHI_GITEA_URL is not set: the Gitea worker has nothing to talk to")
        return 2
    asyncio.run(GiteaWorker(cfg).run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
