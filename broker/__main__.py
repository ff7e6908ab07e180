"""Entry point: `python -m broker`."""

from __future__ import annotations

from scitex_orochi.config import Config
from scitex_orochi.files import restrict_umask
from scitex_orochi.logs import setup_logging

from .service import serve


def main() -> None:
    restrict_umask()  # before any file is created: data files are 0600
    cfg = Config.from_env()
    setup_logging(cfg.log_level, "broker")
    serve(cfg.bus_in, cfg.bus_out)


if __name__ == "__main__":
    main()
