"""`scitex-orochi bus-keys`: where the bus's CURVE keys are, who is authorized, and
minting or withdrawing a client keypair for a gateway on another host."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from scitex_orochi.cli.group import main
from scitex_orochi.cli.output import EXIT_NOT_FOUND, dry_run, emit_json, table
from scitex_orochi.hub.config import Config, ConfigError

HANDOVER = """\b
A remote host needs two files from here and two settings pointing at them:
  server.key               -> SCITEX_OROCHI_BUS_SERVER_KEY
  clients/NAME.key_secret  -> SCITEX_OROCHI_BUS_CLIENT_KEY   (0600; delete it here once copied)
and SCITEX_OROCHI_BUS_IN / _BUS_OUT set to the hub's tcp:// endpoints (docs/bus-curve.md).
The keys dir is SCITEX_OROCHI_BUS_KEYS_DIR (default <data dir>/bus-keys).
"""


def _config() -> Config:
    try:
        return Config.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _require_keys(cfg: Config) -> None:
    if not cfg.bus.keys_dir.is_dir():
        click.echo(
            f"error: no bus keys at {cfg.bus.keys_dir}: `scitex-orochi serve` creates "
            "them at its first start (or set SCITEX_OROCHI_DATA_DIR / "
            "SCITEX_OROCHI_BUS_KEYS_DIR)",
            err=True,
        )
        sys.exit(EXIT_NOT_FOUND)


def describe(cfg: Config) -> dict[str, Any]:
    """What `bus-keys` shows: settings, files and the authorized clients."""
    from scitex_orochi.hub.bus_keys import authorized_keys

    authorized = cfg.bus.authorized_dir
    clients = authorized_keys(authorized) if authorized.is_dir() else {}
    return {
        "curve": cfg.bus.curve,
        "bus_in": cfg.bus.in_endpoint,
        "bus_out": cfg.bus.out_endpoint,
        "keys_dir": str(cfg.bus.keys_dir),
        "server_key": str(cfg.bus.server_key),
        "client_key": str(cfg.bus.client_key),
        "authorized_dir": str(authorized),
        "authorized": [
            {"name": name, "public_key": key.decode(), "file": str(authorized / f"{name}.key")}
            for key, name in sorted(clients.items(), key=lambda kv: kv[1])
        ],
    }


@main.group(
    "bus-keys",
    invoke_without_command=True,
    epilog="""\b
Examples:
  scitex-orochi bus-keys                       # where the keys are, who is authorized
  scitex-orochi bus-keys --json
  scitex-orochi bus-keys add-client gw-host2   # a keypair for a gateway on host2
  scitex-orochi bus-keys remove-client gw-host2
"""
    + "\n"
    + HANDOVER,
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def bus_keys(ctx: click.Context, as_json: bool) -> None:
    """The bus's CURVE keys (used whenever SCITEX_OROCHI_BUS_IN/_OUT is tcp://)."""
    if ctx.invoked_subcommand is not None:
        return
    cfg = _config()
    _require_keys(cfg)
    info = describe(cfg)
    if as_json:
        emit_json(info)
        return
    state = "on" if cfg.bus.curve else "off (both bus endpoints are ipc)"
    click.echo(f"CURVE: {state}   bus: {cfg.bus.in_endpoint} , {cfg.bus.out_endpoint}")
    click.echo(f"keys dir:          {info['keys_dir']}")
    click.echo(f"server public key: {info['server_key']}   (copy to every remote host)")
    click.echo(f"client keypair:    {info['client_key']}   (this host's processes)")
    click.echo(f"authorized clients ({info['authorized_dir']}):")
    if info["authorized"]:
        click.echo(table(info["authorized"], [("name", "name"), ("public_key", "public key")]))
    else:
        click.echo("  none: every client is refused")


@bus_keys.command(
    "add-client",
    epilog="""\b
Examples:
  scitex-orochi bus-keys add-client gw-host2
  scitex-orochi bus-keys add-client gw-host2 --dry-run
  scitex-orochi bus-keys add-client gw-host2 --json
"""
    + "\n"
    + HANDOVER,
)
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("--dry-run", "dry_run_", is_flag=True, help="Show what would be written.")
def add_client(name: str, as_json: bool, dry_run_: bool) -> None:
    """Mint a client keypair for a remote host and authorize its public key.

    The broker admits it at the next connection; no restart is needed.
    """
    from scitex_orochi.hub.bus_keys import CLIENTS_DIR_NAME, add_client, check_client_name

    cfg = _config()
    _require_keys(cfg)
    try:
        check_client_name(name)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    secret_file = cfg.bus.keys_dir / CLIENTS_DIR_NAME / f"{name}.key_secret"
    public_file = cfg.bus.authorized_dir / f"{name}.key"
    if dry_run_:
        dry_run(
            f"mint a bus client keypair for {name}",
            {
                "secret_file": str(secret_file),
                "authorized_file": str(public_file),
                "exists": public_file.exists(),
            },
            as_json,
        )
        return
    try:
        secret_file, public_file = add_client(cfg.bus.keys_dir, name)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    result = _handover(cfg, name, secret_file, public_file)
    if as_json:
        emit_json(result)
        return
    click.echo(f"authorized bus client {name} ({public_file})")
    click.echo("copy to the remote host (then delete the secret here):")
    click.echo(f"  {secret_file}  -> SCITEX_OROCHI_BUS_CLIENT_KEY")
    click.echo(f"  {cfg.bus.server_key}  -> SCITEX_OROCHI_BUS_SERVER_KEY")


def _handover(cfg: Config, name: str, secret_file: Path, public_file: Path) -> dict[str, Any]:
    return {
        "name": name,
        "client_key": str(secret_file),
        "authorized_file": str(public_file),
        "server_key": str(cfg.bus.server_key),
        "env": {
            "SCITEX_OROCHI_BUS_CLIENT_KEY": f"<copy of {secret_file.name}>",
            "SCITEX_OROCHI_BUS_SERVER_KEY": f"<copy of {cfg.bus.server_key.name}>",
            "SCITEX_OROCHI_BUS_IN": cfg.bus.in_endpoint,
            "SCITEX_OROCHI_BUS_OUT": cfg.bus.out_endpoint,
        },
    }


@bus_keys.command(
    "remove-client",
    epilog="""\b
Examples:
  scitex-orochi bus-keys remove-client gw-host2
  scitex-orochi bus-keys remove-client gw-host2 --dry-run

New connections with that key are refused at once; a connection already open stays
until it drops: restart the broker to end it now
(supervisorctl -c <run dir>/supervisord.conf restart broker).
""",
)
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("--dry-run", "dry_run_", is_flag=True, help="Show what would be removed.")
def remove_client(name: str, as_json: bool, dry_run_: bool) -> None:
    """Withdraw a client's authorization (its public key, and its minted keypair if here)."""
    from scitex_orochi.hub.bus_keys import (
        CLIENTS_DIR_NAME,
        LOCAL_CLIENT_NAME,
        check_client_name,
        remove_client,
    )

    cfg = _config()
    _require_keys(cfg)
    try:
        check_client_name(name)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    if name == LOCAL_CLIENT_NAME:
        raise click.UsageError(
            f"{name!r} is this hub host's own key: removing it would cut its processes off the bus"
        )
    files = [
        cfg.bus.authorized_dir / f"{name}.key",
        cfg.bus.keys_dir / CLIENTS_DIR_NAME / f"{name}.key_secret",
    ]
    present = [str(p) for p in files if p.exists()]
    if dry_run_:
        dry_run(f"withdraw bus client {name}", {"remove": present or "nothing"}, as_json)
        return
    if not present:
        click.echo(f"error: no bus client named {name!r}", err=True)
        sys.exit(EXIT_NOT_FOUND)
    removed = [str(p) for p in remove_client(cfg.bus.keys_dir, name)]
    if as_json:
        emit_json({"name": name, "removed": removed})
        return
    click.echo(f"withdrew bus client {name}: removed {', '.join(removed)}")
