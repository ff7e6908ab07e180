"""`scitex-orochi serve`: run the whole hub (broker, persister, gateways) under supervisord."""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import replace
from pathlib import Path

import click

from ..config import (
    BUS_CLIENT_KEY_NAME,
    BUS_KEYS_DIR_NAME,
    BUS_SERVER_KEY_NAME,
    Config,
    ConfigError,
    db_url_from,
)
from .group import Globals, main


@main.command(
    epilog="""\b
Examples:
  scitex-orochi serve                                # SQLite in ~/.local/share/scitex-orochi
  scitex-orochi serve --ws-procs 2                   # two WebSocket gateways on one port
  SCITEX_OROCHI_DB=postgresql://orochi@127.0.0.1/orochi scitex-orochi serve
  scitex-orochi --port 9600 --dashboard-port 8600 serve --data-dir /tmp/orochi
""",
)
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Data directory (env SCITEX_OROCHI_DATA_DIR).")
@click.option("--db", "db", default=None,
              help="SQLite path or SQLAlchemy URL (env SCITEX_OROCHI_DB).")
@click.option("--ws-procs", type=click.IntRange(1, 64), default=None,
              help="Number of WebSocket gateway processes (env SCITEX_OROCHI_WS_PROCS).")
@click.pass_obj
def serve(g: Globals, data_dir: Path | None, db: str | None, ws_procs: int | None) -> None:
    """Run the hub in the foreground; Ctrl-C or SIGTERM stops every process cleanly.

    Prints the agent URL, the dashboard URL and the tokens. Nothing to configure:
    the database, tokens and sockets live in the data directory.
    """
    from ..supervise import HubSupervisor, SuperviseError, prepare

    try:
        cfg = Config.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    changes: dict = {"host": g.host, "port": g.port, "dashboard_port": g.dashboard_port}
    if data_dir is not None:
        data_dir = data_dir.expanduser().resolve()
        changes.update(data_dir=data_dir, run_dir=data_dir / "run",
                       bus_in=f"ipc://{data_dir / 'run' / 'bus-in.sock'}",
                       bus_out=f"ipc://{data_dir / 'run' / 'bus-out.sock'}",
                       media_root=data_dir / "media")
        if not os.environ.get("SCITEX_OROCHI_BUS_KEYS_DIR"):
            keys_dir = data_dir / BUS_KEYS_DIR_NAME
            changes["bus_keys_dir"] = keys_dir
            if not os.environ.get("SCITEX_OROCHI_BUS_SERVER_KEY"):
                changes["bus_server_key"] = keys_dir / BUS_SERVER_KEY_NAME
            if not os.environ.get("SCITEX_OROCHI_BUS_CLIENT_KEY"):
                changes["bus_client_key"] = keys_dir / BUS_CLIENT_KEY_NAME
        if not os.environ.get("SCITEX_OROCHI_DB") and db is None:
            changes["db_url"] = db_url_from(None, data_dir)
    if db is not None:
        changes["db_url"] = db_url_from(db, data_dir or cfg.data_dir)
    if ws_procs is not None:
        changes["ws_procs"] = ws_procs
    cfg = replace(cfg, **changes)
    try:
        cfg.validate()
        prepared = prepare(cfg)
    except (ConfigError, SuperviseError) as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:  # database unreachable, permissions, ...
        raise click.ClickException(f"could not prepare the hub: {exc}") from None

    hub = HubSupervisor(prepared)
    try:
        proc = hub.start()
    except SuperviseError as exc:
        raise click.ClickException(str(exc)) from None

    def forward(signum: int, _frame: object) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    ready = hub.wait_ready(60.0)
    host = cfg.host if ":" not in cfg.host else f"[{cfg.host}]"
    lines = [
        "",
        "Orochi hub " + ("ready" if ready else "starting (not answering yet)"),
        f"  agents:     ws://{host}:{cfg.port}/?token={prepared.default_token}",
        f"  dashboard:  http://{host}:{cfg.dashboard_port}/?token={prepared.admin_token}",
        f"  admin token:             {prepared.admin_token}"
        + ("  (generated)" if prepared.admin_generated else ""),
        f"  default workspace token: {prepared.default_token}"
        + ("  (generated)" if prepared.default_token_generated else ""),
        f"  database:   {_mask(cfg.db_url)}",
        f"  data dir:   {cfg.data_dir}   gateways: {cfg.ws_procs}",
        f"  bus:        {cfg.bus_in} , {cfg.bus_out}"
        + (f"  (CURVE; keys in {cfg.bus_keys_dir}, see `scitex-orochi bus-keys`)"
           if cfg.bus_curve else ""),
        "  stop with Ctrl-C",
        "",
    ]
    click.echo("\n".join(lines), err=True)
    code = proc.wait()
    click.echo(f"Orochi hub stopped (supervisord exit {code})", err=True)
    sys.exit(0 if code in (0, -signal.SIGTERM) else code)


def _mask(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else url
    return url
