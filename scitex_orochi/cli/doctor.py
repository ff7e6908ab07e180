"""`scitex-orochi doctor`: check every part of a hub and say what to fix.

Checks, in order: configuration, supervised processes (local hub), both ports,
the HTTP API, the database, a bus round trip, and a message round trip through
the whole path (gateway → bus → persister → ack with seq).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import asdict, dataclass
from typing import Any

import click

from scitex_orochi.cli.group import Globals, main, warn_legacy
from scitex_orochi.cli.output import EXIT_CODES_HELP, colour_enabled, emit_json, paint
from scitex_orochi.client.errors import OrochiError

CHECK_TIMEOUT_S = 5.0
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0", ""}


@dataclass
class Check:
    name: str
    ok: bool | None  # None: skipped
    detail: str
    hint: str = ""


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=CHECK_TIMEOUT_S):
            return True
    except OSError:
        return False


def check_config(g: Globals) -> tuple[Check, Any]:
    from scitex_orochi.hub.config import Config, ConfigError

    try:  # the hub these options reach (they read the same variables)
        cfg = Config.from_env(
            overrides={"host": g.host, "ws.port": g.port, "http.port": g.dashboard_port}
        )
    except ConfigError as exc:
        return Check(
            "config",
            False,
            str(exc),
            "fix the SCITEX_OROCHI_* variable named "
            "(`scitex-orochi check-config` shows every setting)",
        ), None
    warn_legacy(cfg.legacy_env)
    return Check("config", True, f"data dir {cfg.data_dir}"), cfg


def check_processes(cfg: Any) -> list[Check]:
    conf = cfg.run_dir / "supervisord.conf"
    if not conf.exists():
        return [
            Check(
                "processes",
                None,
                f"no {conf}",
                "start the hub here with `scitex-orochi serve`, or this hub runs "
                "elsewhere (set SCITEX_OROCHI_RUN_DIR to check it)",
            )
        ]
    ctl = shutil.which("supervisorctl") or os.path.join(
        os.path.dirname(sys.executable), "supervisorctl"
    )
    try:
        out = subprocess.run(
            [ctl, "-c", str(conf), "status"],
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT_S * 2,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [
            Check(
                "processes",
                False,
                f"supervisorctl failed: {exc}",
                "is supervisor installed (pip install supervisor)?",
            )
        ]
    checks = []
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) < 2 or "refused" in line or "no such file" in line.lower():
            continue
        detail = " ".join(parts[1:])
        if parts[1] == "STOPPED" and "Not started" in detail:
            # autostart=false: an optional bridge that is not configured
            checks.append(Check(f"process {parts[0]}", None, "not started (not configured)"))
            continue
        running = parts[1] == "RUNNING"
        checks.append(
            Check(
                f"process {parts[0]}",
                running,
                detail,
                ""
                if running
                else f"see {_log_hint(cfg, parts[0])}; supervisorctl -c {conf} restart {parts[0]}",
            )
        )
    if not checks:
        lines = (out.stdout or out.stderr).strip().splitlines()
        return [
            Check(
                "processes",
                False,
                lines[0] if lines else "no status",
                "supervisord is not running: start the hub with `scitex-orochi serve`",
            )
        ]
    return checks


def _log_hint(cfg: Any, program: str) -> str:
    if cfg.log.stdout:
        return "the output of `scitex-orochi serve`"
    return f"{cfg.log.dir}/{program.split(':')[-1]}.log"


def check_ports(cfg: Any) -> list[Check]:
    out = []
    for label, port, env in (
        ("agent port", cfg.ws.port, "SCITEX_OROCHI_PORT"),
        ("dashboard port", cfg.http.port, "SCITEX_OROCHI_DASHBOARD_PORT"),
    ):
        ok = _port_open(cfg.host, port)
        out.append(
            Check(
                label,
                ok,
                f"{cfg.host}:{port} {'open' if ok else 'closed'}",
                "" if ok else f"is the hub running? is {env}/--host right?",
            )
        )
    return out


def check_http(g: Globals) -> Check:
    from scitex_orochi.client.rest import RestClient, http_url

    try:
        stats = RestClient(
            http_url(g.host, g.dashboard_port), g.token, timeout=CHECK_TIMEOUT_S
        ).get("/api/stats")
    except OrochiError as exc:
        return Check("http api", False, str(exc).split(";")[0], "check the gateway_http process")
    online = stats.get("agents_online", "?") if isinstance(stats, dict) else "?"
    return Check("http api", True, f"/api/stats answered ({online} agents online)")


def check_database(cfg: Any) -> Check:
    try:
        from scitex_orochi.hub.store import Store
    except ImportError as exc:
        return Check(
            "database", False, f"cannot import the store: {exc}", "reinstall scitex-orochi"
        )
    try:
        store = Store(cfg.db.url, readonly=True)
        try:
            version = store.schema_version()
        finally:
            store.close()
    except Exception as exc:  # noqa: BLE001 - any driver error is the finding here
        return Check(
            "database",
            False,
            f"{_mask(cfg.db.url)}: {exc.__class__.__name__}: {exc}",
            "check SCITEX_OROCHI_DB and that the database server is up",
        )
    if not version:
        return Check(
            "database",
            False,
            f"{_mask(cfg.db.url)}: no schema",
            "run `scitex-orochi serve` once to create it",
        )
    return Check("database", True, f"{_mask(cfg.db.url)} (schema v{version})")


def check_bus(cfg: Any) -> Check:
    try:
        from scitex_orochi.hub.bus import SyncBus, new_origin
        from scitex_orochi.hub.errors import BusError
    except ImportError as exc:
        return Check("bus", False, f"cannot import the bus client: {exc}", "reinstall pyzmq")
    from scitex_orochi.hub.config import ConfigError

    try:
        bus = SyncBus.from_config(cfg, new_origin("doctor"))
    except ConfigError as exc:
        return Check("bus", False, str(exc), "see `scitex-orochi bus-keys -h`")
    try:
        bus.wait_ready(3)
    except BusError as exc:
        return Check("bus", False, str(exc), "check the broker process and SCITEX_OROCHI_BUS_*")
    finally:
        bus.close()
    return Check(
        "bus",
        True,
        f"round trip {cfg.bus.in_endpoint} -> {cfg.bus.out_endpoint}"
        + (" (curve)" if cfg.bus.curve else ""),
    )


def check_message(g: Globals) -> Check:
    """A message through the whole path, into the internal channel `#.doctor`: stored
    and acked with its seq like any message, but never listed (no channel left behind),
    from a transient agent (not kept as a dead agent afterwards)."""
    from scitex_orochi.client.agent import OrochiClient
    from scitex_orochi.protocol.channels import DOCTOR_CHANNEL

    async def round_trip() -> Any:
        name = f"doctor-{os.getpid()}"
        async with OrochiClient(
            name,
            host=g.host,
            port=g.port,
            token=g.token,
            channels=[DOCTOR_CHANNEL],
            reconnect=False,
            resume=False,
            timeout=CHECK_TIMEOUT_S * 2,
            connect_timeout=CHECK_TIMEOUT_S,
            extra_register={"transient": True},
        ) as client:
            return await client.send(DOCTOR_CHANNEL, f"doctor check from {socket.gethostname()}")

    try:
        sent = asyncio.run(round_trip())
    except OrochiError as exc:
        return Check(
            "message round trip",
            False,
            str(exc).split(";")[0],
            "check the token, gateway_ws and persister processes",
        )
    if sent.seq is None:
        return Check(
            "message round trip",
            False,
            "acked without a seq: not stored",
            "check the persister process",
        )
    return Check(
        "message round trip",
        True,
        f"stored as seq {sent.seq} in {DOCTOR_CHANNEL} (internal, never listed)",
    )


def _mask(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def run_checks(g: Globals) -> list[Check]:
    checks = []
    config, cfg = check_config(g)
    checks.append(config)
    local = g.host in LOCAL_HOSTS
    if cfg is not None and local:
        checks += check_processes(cfg)
    if cfg is not None:
        checks += check_ports(cfg)
    checks.append(check_http(g))
    if cfg is not None and local:
        checks.append(check_database(cfg))
        checks.append(check_bus(cfg))
    checks.append(check_message(g))
    return checks


@main.command(
    epilog="""\b
Examples:
  scitex-orochi doctor
  scitex-orochi --host 10.0.0.5 doctor     # a remote hub: ports, API, message round trip
  scitex-orochi doctor --json

Exit code 0 when every check passes, 1 when any fails.
"""
    + "\n"
    + EXIT_CODES_HELP
)
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@click.pass_obj
def doctor(g: Globals, as_json: bool) -> None:
    """Check each supervised process, the ports, the database, the bus and a message
    round trip, and print what to fix."""
    checks = run_checks(g)
    failed = [c for c in checks if c.ok is False]
    if as_json:
        emit_json({"ok": not failed, "checks": [asdict(c) for c in checks]})
    else:
        colour = colour_enabled()
        width = max(len(c.name) for c in checks)
        for c in checks:
            mark = {
                True: paint("✓", "green", colour),
                False: paint("✗", "red", colour),
                None: paint("-", "yellow", colour),
            }[c.ok]
            click.echo(f"{mark} {c.name.ljust(width)}  {c.detail}")
            if c.hint and c.ok is not True:
                click.echo(f"  {' ' * width}  {paint('→ ' + c.hint, 'yellow', colour)}")
        click.echo(
            paint(f"{len(failed)} problem(s) found", "red", colour)
            if failed
            else paint("all checks passed", "green", colour)
        )
    sys.exit(1 if failed else 0)
