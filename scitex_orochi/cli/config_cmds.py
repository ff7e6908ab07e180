"""The options `serve` takes that are settings of the hub, and building its configuration
from them.

Command-line options are overrides applied before derived values are computed, so
`--data-dir X` puts the run dir, bus sockets, database, media, logs and keys under X
(except those set explicitly in the environment).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from scitex_orochi.cli.group import warn_legacy
from scitex_orochi.hub.config import Config, process_environ

# The shared options of the `main` group that are hub settings too.
GLOBAL_OVERRIDES = {"host": "host", "port": "ws.port", "dashboard_port": "http.port"}


def hub_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--data-dir, --db and --ws-procs, for `serve` and `check-config`."""
    options = [
        click.option("--data-dir", type=click.Path(path_type=Path), default=None,
                     help="Data directory (env SCITEX_OROCHI_DATA_DIR); run dir, bus sockets, "
                          "database, media, logs and keys follow it unless set themselves."),
        click.option("--db", "db", default=None,
                     help="SQLite path or SQLAlchemy URL (env SCITEX_OROCHI_DB)."),
        click.option("--ws-procs", type=click.IntRange(1, 64), default=None,
                     help="Number of WebSocket gateway processes (env SCITEX_OROCHI_WS_PROCS)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def hub_overrides(data_dir: Path | None, db: str | None, ws_procs: int | None) -> dict[str, Any]:
    """The command line's settings: the group's --host/--port/--dashboard-port when given
    there (from the environment the configuration reads them itself), and hub_options."""
    root = click.get_current_context().find_root()
    out: dict[str, Any] = {key: root.params[param] for param, key in GLOBAL_OVERRIDES.items()
                           if root.get_parameter_source(param) == ParameterSource.COMMANDLINE}
    if data_dir is not None:
        out["data_dir"] = data_dir.expanduser().resolve()
    if db is not None:
        out["db.url"] = db
    if ws_procs is not None:
        out["ws.procs"] = ws_procs
    return out


def load_config(overrides: Mapping[str, Any]) -> tuple[Config, list[tuple[str, str | None]]]:
    """The configuration (0.1.0 names warned about on stderr)."""
    cfg = Config.load(process_environ(), overrides)
    warn_legacy(cfg.legacy_env)
    return cfg, []
