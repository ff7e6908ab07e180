"""`scitex-orochi serve`: run the whole hub (broker, persister, gateways) under supervisord."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

import click

from scitex_orochi.cli.config_cmds import hub_options, hub_overrides, load_config
from scitex_orochi.cli.group import main
from scitex_orochi.cli.output import EXIT_USAGE
from scitex_orochi.hub.config import ConfigError


@main.command(
    epilog="""\b
Examples:
  scitex-orochi serve                                # SQLite in ~/.local/share/scitex-orochi
  scitex-orochi serve --ws-procs 2                   # two WebSocket gateways on one port
  SCITEX_OROCHI_DB=postgresql://orochi@127.0.0.1/orochi scitex-orochi serve
  scitex-orochi --port 9600 --dashboard-port 8600 serve --data-dir /tmp/orochi

`scitex-orochi check-config` (same options) shows what it would run with.

\b
Exit codes:
  0  stopped by Ctrl-C or SIGTERM
  1  could not start (a port in use, the database, ...)
  2  bad configuration (the error names the variable)
""",
)
@hub_options
def serve(data_dir: Path | None, db: str | None, ws_procs: int | None) -> None:
    """Run the hub in the foreground; Ctrl-C or SIGTERM stops every process cleanly.

    Prints the agent URL, the dashboard URL and the tokens. Nothing to configure:
    the database, tokens and sockets live in the data directory.
    """
    from scitex_orochi.hub.supervise import HubSupervisor, SuperviseError, prepare

    try:
        cfg, _unknown = load_config(hub_overrides(data_dir, db, ws_procs))
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    try:
        prepared = prepare(cfg)
    except SuperviseError as exc:
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
    lines = [
        "",
        "Orochi hub " + ("ready" if ready else "starting (not answering yet)"),
        *banner(prepared),
        "  stop with Ctrl-C",
        "",
    ]
    click.echo("\n".join(lines), err=True)
    code = proc.wait()
    click.echo(f"Orochi hub stopped (supervisord exit {code})", err=True)
    sys.exit(0 if code in (0, -signal.SIGTERM) else code)


def server_main() -> None:
    """`scitex-orochi-server` (0.6.0) and `python -m orochi.server` (0.1.0): the hub, as
    `scitex-orochi serve` runs it, with the same options (settings from the environment)."""
    main(args=["serve", *sys.argv[1:]], prog_name="scitex-orochi-server")


def banner(prepared: Any) -> list[str]:
    """What an agent and a person need. Tokens are shown once, when they are made, and
    never inside a URL (URLs end up in shell history, proxies and screenshots)."""
    cfg = prepared.cfg
    host = cfg.host if ":" not in cfg.host else f"[{cfg.host}]"
    lines = [
        f"  agents:     ws://{host}:{cfg.ws.port}/?token=<workspace token>",
        f"  dashboard:  http://{host}:{cfg.http.port}/  (sign in with the admin token)",
    ]
    if prepared.admin_generated:
        lines.append(
            f"  admin token:             {prepared.admin_token}  (generated, "
            f"kept in {cfg.admin_token_file})"
        )
    if prepared.default_token_generated:
        lines.append(
            f"  default workspace token: {prepared.default_token}  (generated, "
            "kept in the database)"
        )
    if prepared.admin_generated or prepared.default_token_generated:
        lines.append("  (tokens are shown only at the first start: keep them)")
    if not prepared.admin_generated:
        where = (
            "the environment (SCITEX_OROCHI_ADMIN_TOKEN)"
            if cfg.auth.admin_token
            else str(cfg.admin_token_file)
        )
        lines.append(f"  admin token:             in {where}")
    if not prepared.default_token_generated:
        lines.append(
            "  workspace tokens:        scitex-orochi list-tokens default "
            "(list-workspaces for the others)"
        )
    lines += [
        f"  database:   {_mask(cfg.db.url)}",
        f"  data dir:   {cfg.data_dir}   gateways: {cfg.ws.procs}",
        f"  bus:        {cfg.bus.in_endpoint} , {cfg.bus.out_endpoint}"
        + (
            f"  (CURVE; keys in {cfg.bus.keys_dir}, see `scitex-orochi bus-keys`)"
            if cfg.bus.curve
            else ""
        ),
        "  logs:       "
        + (
            "this output (SCITEX_OROCHI_LOG_STDOUT)"
            if cfg.log.stdout
            else f"{cfg.log.dir}/<process>.log (rotated at "
            f"{_size(cfg.log.max_bytes)}, {cfg.log.backups} kept)"
        ),
    ]
    return lines


def _size(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


def _mask(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else url
    return url
