"""`scitex-orochi check-config`: the configuration a hub would run with, grouped, each
value with where it came from, secrets masked; and the options it shares with `serve`.

Command-line options are overrides applied before derived values are computed, so
`--data-dir X` puts the run dir, bus sockets, database, media, logs and keys under X
(except those set explicitly in the environment).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from scitex_orochi.cli.group import main, warn_legacy
from scitex_orochi.cli.output import EXIT_USAGE, emit_json
from scitex_orochi.client.settings import CLIENT_ENV
from scitex_orochi.hub.config import Config, ConfigError, process_environ
from scitex_orochi.hub.settings import GROUPS, SETTINGS, Setting
from scitex_orochi.hub.settings_load import (
    DEFAULT,
    DERIVED,
    OVERRIDE,
    describe_value,
    json_value,
    unknown_variables,
)

# The shared options of the `main` group that are hub settings too.
GLOBAL_OVERRIDES = {"host": "host", "port": "ws.port", "dashboard_port": "http.port"}


def hub_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--data-dir, --db and --ws-procs, for `serve` and `check-config`."""
    options = [
        click.option(
            "--data-dir",
            type=click.Path(path_type=Path),
            default=None,
            help="Data directory (env SCITEX_OROCHI_DATA_DIR); run dir, bus sockets, "
            "database, media, logs and keys follow it unless set themselves.",
        ),
        click.option(
            "--db", "db", default=None, help="SQLite path or SQLAlchemy URL (env SCITEX_OROCHI_DB)."
        ),
        click.option(
            "--ws-procs",
            type=click.IntRange(1, 64),
            default=None,
            help="Number of WebSocket gateway processes (env SCITEX_OROCHI_WS_PROCS).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def hub_overrides(data_dir: Path | None, db: str | None, ws_procs: int | None) -> dict[str, Any]:
    """The command line's settings: the group's --host/--port/--dashboard-port when given
    there (from the environment the configuration reads them itself), and hub_options."""
    root = click.get_current_context().find_root()
    out: dict[str, Any] = {
        key: root.params[param]
        for param, key in GLOBAL_OVERRIDES.items()
        if root.get_parameter_source(param) == ParameterSource.COMMANDLINE
    }
    if data_dir is not None:
        out["data_dir"] = data_dir.expanduser().resolve()
    if db is not None:
        out["db.url"] = db
    if ws_procs is not None:
        out["ws.procs"] = ws_procs
    return out


def load_config(overrides: Mapping[str, Any]) -> tuple[Config, list[tuple[str, str | None]]]:
    """The configuration, and the SCITEX_OROCHI_* variables that are no setting (each with
    the closest name); warns about 0.1.0 names and unknown ones on stderr."""
    environ = process_environ()
    cfg = Config.load(environ, overrides)
    warn_legacy(cfg.legacy_env)
    unknown = unknown_variables(environ, CLIENT_ENV)
    for name, close in unknown:
        hint = f" (did you mean {close}?)" if close else ""
        click.echo(f"warning: {name} is not a setting{hint}; it is ignored", err=True)
    return cfg, unknown


def source_text(setting: Setting, source: str) -> str:
    if source == DERIVED:
        return f"derived: {setting.derived_from}"
    if source == OVERRIDE:
        return "command line"
    if source == DEFAULT:
        return DEFAULT
    return source if source.startswith("SCITEX_OROCHI_") else f"{source} (deprecated)"


def report(cfg: Config, unknown: list[tuple[str, str | None]]) -> dict[str, Any]:
    groups: dict[str, dict[str, Any]] = {group: {} for group in GROUPS}
    for s in SETTINGS:
        groups[s.group][s.name] = {
            "value": json_value(s, cfg.value(s.key)),
            "source": cfg.source_name(s.key),
            "variable": "SCITEX_OROCHI_" + s.env,
        }
    return {
        "ok": True,
        "settings": groups,
        "legacy_env": list(cfg.legacy_env),
        "unknown_env": [{"variable": n, "did_you_mean": c} for n, c in unknown],
    }


def render_text(cfg: Config) -> str:
    rows = [
        (s, describe_value(s, cfg.value(s.key)), source_text(s, cfg.source_name(s.key)))
        for s in SETTINGS
    ]
    name_width = max(len(s.name) for s in SETTINGS)
    value_width = min(max(len(value) for _, value, _ in rows), 60)
    lines: list[str] = []
    for group in GROUPS:
        lines.append(group)
        lines += [
            f"  {s.name.ljust(name_width)}  {value.ljust(value_width)}  {source}"
            for s, value, source in rows
            if s.group == group
        ]
    from_env = sum(
        1 for s in SETTINGS if cfg.source_name(s.key) not in (DEFAULT, DERIVED, OVERRIDE)
    )
    given = sum(1 for s in SETTINGS if cfg.source_name(s.key) == OVERRIDE)
    lines.append(
        f"configuration valid ({from_env} from the environment, {given} from the "
        "command line, the rest defaults)"
    )
    return "\n".join(lines)


@main.command(
    "check-config",
    epilog="""\b
Examples:
  scitex-orochi check-config                         # what `serve` would run with
  scitex-orochi check-config --data-dir /srv/orochi  # with serve's overrides
  SCITEX_OROCHI_WS_PROCS=4 scitex-orochi check-config --json

Secrets are masked. Unknown SCITEX_OROCHI_* variables (typos) are warned about.
Every setting: docs/configuration.md.

\b
Exit codes:
  0  the configuration is valid
  2  it is not (the error names the variable)
""",
)
@hub_options
@click.option("--json", "as_json", is_flag=True, help="Print the configuration as JSON.")
def check_config(
    data_dir: Path | None, db: str | None, ws_procs: int | None, as_json: bool
) -> None:
    """Print the effective configuration by group: each value (secrets masked) and where
    it came from (default, derived, a variable, the command line)."""
    try:
        cfg, unknown = load_config(hub_overrides(data_dir, db, ws_procs))
    except ConfigError as exc:
        if as_json:
            emit_json({"ok": False, "error": str(exc)})
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    if as_json:
        emit_json(report(cfg, unknown))
    else:
        click.echo(render_text(cfg))
