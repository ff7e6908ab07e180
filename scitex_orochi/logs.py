"""Logging set-up shared by every process: one line per record on stderr."""

from __future__ import annotations

import logging
import sys


def setup_logging(level: str = "INFO", process: str = "orochi") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s {process} %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
