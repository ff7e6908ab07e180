"""Logging set-up shared by every process: one line per record on stderr."""

from __future__ import annotations

import logging
import sys

from .config import take_notices


def setup_logging(level: str = "INFO", process: str = "orochi") -> None:
    """One handler on stderr; then logs the deprecation notices the configuration
    collected while it was built (0.1.0 variable names), once per name."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s {process} %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    log = logging.getLogger(f"orochi.{process}")
    for notice in take_notices():
        log.warning("%s", notice)
