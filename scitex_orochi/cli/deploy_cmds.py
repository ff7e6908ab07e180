"""`scitex-orochi init` (a deployment directory) and `scitex-orochi deploy stable|dev|status`
(docker compose on it)."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from scitex_orochi.cli.compose import (
    CONTAINER_DASHBOARD_PORT,
    CONTAINER_PORT,
    DEFAULT_IMAGE,
    INSTANCES,
    InitOptions,
    compose_file,
    find_checkout,
    project,
    render,
)
from scitex_orochi.cli.group import main
from scitex_orochi.cli.output import EXIT_CONNECT, EXIT_USAGE, emit_json

DOCKER_INFO_TIMEOUT_S = 5.0
INSTALL_HINT = (
    "install Docker Engine with the compose plugin (https://docs.docker.com/engine/install/), "
    "or Docker Desktop"
)
ENGINE_HINT = (
    "start the engine (`sudo systemctl start docker`, or open Docker Desktop), or point "
    "DOCKER_HOST at a reachable one; `permission denied` on the socket: add your user to "
    "the `docker` group (then log in again)"
)


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


# ---- init ----------------------------------------------------------------------------------
@main.command(
    "init",
    epilog=f"""\b
Examples:
  scitex-orochi init                         # ./orochi-deploy from this checkout's Dockerfile
  scitex-orochi init /srv/orochi --dry-run   # what it would write
  scitex-orochi init /srv/orochi --image ghcr.io/me/orochi:1.2 --public-host hub.example.org
  scitex-orochi init /srv/orochi --force --json

\b
Writes docker-compose.stable.yml (ports {CONTAINER_PORT}/{CONTAINER_DASHBOARD_PORT}),
docker-compose.dev.yml (ports {CONTAINER_PORT + 1}/{CONTAINER_DASHBOARD_PORT + 1}; its
dashboard follows the stable hub) and .env.example (the secret variables, no values).
Then: cp .env.example .env, fill it in, `scitex-orochi deploy stable --dir DIR`.

\b
Exit codes:
  0  written (or, with --dry-run, listed)
  1  could not write a file
  2  a file exists (use --force) or a bad option
""",
)
@click.argument("directory", required=False, default="orochi-deploy", type=click.Path())
@click.option("--image", default=DEFAULT_IMAGE, show_default=True, help="Image name to run.")
@click.option(
    "--build-context",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory with the Dockerfile (default: this checkout, if it is one).",
)
@click.option("--no-build", is_flag=True, help="Run --image only, never build it.")
@click.option(
    "--public-host",
    default="localhost",
    show_default=True,
    help="How browsers reach the hubs (dev dashboard origin, stable upstream URL).",
)
@click.option("--stable-port", type=int, default=CONTAINER_PORT, show_default=True)
@click.option(
    "--stable-dashboard-port", type=int, default=CONTAINER_DASHBOARD_PORT, show_default=True
)
@click.option("--dev-port", type=int, default=CONTAINER_PORT + 1, show_default=True)
@click.option(
    "--dev-dashboard-port", type=int, default=CONTAINER_DASHBOARD_PORT + 1, show_default=True
)
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@click.option("--dry-run", is_flag=True, help="List the files it would write; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Report as JSON.")
def init_cmd(
    directory: str,
    image: str,
    build_context: Path | None,
    no_build: bool,
    public_host: str,
    stable_port: int,
    stable_dashboard_port: int,
    dev_port: int,
    dev_dashboard_port: int,
    force: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Write a deployment directory: Docker Compose files for a stable and a dev hub and
    an .env.example naming the secret variables (never their values)."""
    ports = [stable_port, stable_dashboard_port, dev_port, dev_dashboard_port]
    if len(set(ports)) != len(ports) or not all(0 < p < 65536 for p in ports):
        _fail(f"the four ports must be distinct and in 1..65535, got {ports}", EXIT_USAGE)
    context = None if no_build else (build_context or find_checkout())
    if context is not None:
        context = context.resolve()
        if not (context / "Dockerfile").is_file():
            _fail(f"--build-context {context}: no Dockerfile there", EXIT_USAGE)
    opts = InitOptions(
        image=image,
        build_context=context,
        public_host=public_host,
        stable_port=stable_port,
        stable_dashboard_port=stable_dashboard_port,
        dev_port=dev_port,
        dev_dashboard_port=dev_dashboard_port,
    )
    target = Path(directory)
    files = render(opts)
    paths = {name: target / name for name in files}
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not force:
        _fail(f"{', '.join(existing)} already exist(s); --force overwrites", EXIT_USAGE)
    report: dict[str, Any] = {
        "directory": str(target.resolve()),
        "files": [str(p) for p in paths.values()],
        "overwrites": existing,
        "image": image,
        "build_context": str(context) if context else None,
        "ports": {
            "stable": {"agents": stable_port, "dashboard": stable_dashboard_port},
            "dev": {"agents": dev_port, "dashboard": dev_dashboard_port},
        },
    }
    if dry_run:
        if as_json:
            emit_json({"dry_run": True, **report})
        else:
            click.echo(f"[dry-run] would write into {report['directory']}:")
            for path in paths.values():
                note = "  (overwrite)" if str(path) in existing else ""
                click.echo(f"  {path}{note}")
        return
    try:
        target.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            paths[name].write_text(text)
    except OSError as exc:
        _fail(f"could not write: {exc}", 1)
    if as_json:
        emit_json({"written": True, **report})
        return
    for path in paths.values():
        click.echo(f"wrote {path}")
    click.echo(
        f"next: cp {target / '.env.example'} {target / '.env'} (fill in the secrets, "
        f"chmod 600), then scitex-orochi deploy stable --dir {shlex.quote(str(target))}"
    )


# ---- deploy --------------------------------------------------------------------------------
def compose_base() -> list[str]:
    """`docker compose` (the plugin), else the standalone `docker-compose`."""
    docker = shutil.which("docker")
    if docker:
        try:
            probe = subprocess.run(
                [docker, "compose", "version"],
                capture_output=True,
                timeout=DOCKER_INFO_TIMEOUT_S,
            )
            if probe.returncode == 0:
                return [docker, "compose"]
        except (OSError, subprocess.TimeoutExpired):
            pass
    standalone = shutil.which("docker-compose")
    if standalone:
        return [standalone]
    _fail(f"Docker Compose is not installed (no `docker compose`): {INSTALL_HINT}", EXIT_CONNECT)
    raise AssertionError  # unreachable


def check_engine() -> None:
    """Exit at once, saying how to fix it, when there is no docker CLI or no engine."""
    docker = shutil.which("docker")
    if docker is None:
        _fail(f"the `docker` command is not installed (not on PATH): {INSTALL_HINT}", EXIT_CONNECT)
        return
    try:
        info = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=DOCKER_INFO_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        _fail(
            f"the Docker engine did not answer within {DOCKER_INFO_TIMEOUT_S:g}s "
            f"(`docker info`): {ENGINE_HINT}",
            EXIT_CONNECT,
        )
        return
    except OSError as exc:
        _fail(f"could not run docker: {exc}: {INSTALL_HINT}", EXIT_CONNECT)
        return
    if info.returncode != 0 or not info.stdout.strip():
        detail = (info.stderr or info.stdout).strip().splitlines()
        last = detail[-1] if detail else f"exit {info.returncode}"
        _fail(f"cannot reach the Docker engine ({last}): {ENGINE_HINT}", EXIT_CONNECT)


def _files(directory: Path, instances: tuple[str, ...]) -> list[Path]:
    """The compose files, or exit 2 naming the missing ones."""
    files = [directory / compose_file(i) for i in instances]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        _fail(
            f"{', '.join(missing)} not found: run `scitex-orochi init {directory}` first",
            EXIT_USAGE,
        )
    return files


def _commands(
    base: list[str], instances: tuple[str, ...], directory: Path, status: bool, as_json: bool
) -> list[list[str]]:
    action = (
        (["ps", "--format", "json"] if as_json else ["ps"]) if status else ["up", "-d", "--build"]
    )
    return [
        [*base, "-p", project(i), "-f", str(directory / compose_file(i)), *action]
        for i in instances
    ]


def _parse_ps(text: str) -> list[Any]:
    text = text.strip()
    if not text:
        return []
    try:
        data = json.loads(text)
        return data if isinstance(data, list) else [data]
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]


@main.command(
    "deploy",
    epilog="""\b
Examples:
  scitex-orochi deploy stable                  # docker compose -f ./orochi-deploy/... up -d --build
  scitex-orochi deploy dev --dir /srv/orochi
  scitex-orochi deploy status --dir /srv/orochi --json
  scitex-orochi deploy stable --dry-run        # print the commands, run nothing

\b
Exit codes:
  0  done
  1  docker compose failed (its output says why)
  2  no deployment directory (run `scitex-orochi init DIR`) or a bad option
  3  no docker CLI, no compose, or the Docker engine is not reachable
""",
)
@click.argument("target", type=click.Choice([*INSTANCES, "status"]))
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("orochi-deploy"),
    show_default=True,
    help="The directory `scitex-orochi init` wrote.",
)
@click.option("--dry-run", is_flag=True, help="Print the docker compose commands; run nothing.")
@click.option("--json", "as_json", is_flag=True, help="Report as JSON.")
def deploy_cmd(target: str, directory: Path, dry_run: bool, as_json: bool) -> None:
    """Start (or rebuild and restart) the stable or the dev hub with docker compose, or
    show both hubs' containers (`status`)."""
    status = target == "status"
    instances = INSTANCES if status else (target,)
    if dry_run:
        commands = _commands(["docker", "compose"], instances, directory, status, as_json)
        if as_json:
            emit_json({"dry_run": True, "target": target, "commands": commands})
        else:
            for command in commands:
                click.echo(f"[dry-run] would run: {shlex.join(command)}")
        return
    _files(directory, instances)
    check_engine()
    base = compose_base()
    results: list[dict[str, Any]] = []
    code = 0
    for instance, command in zip(
        instances, _commands(base, instances, directory, status, as_json), strict=True
    ):
        if not as_json:
            click.echo(f"$ {shlex.join(command)}", err=True)
        proc = subprocess.run(command, capture_output=as_json, text=True)
        code = code or (1 if proc.returncode else 0)
        if as_json:
            entry: dict[str, Any] = {"instance": instance, "exit_code": proc.returncode}
            if status and proc.returncode == 0:
                try:
                    entry["containers"] = _parse_ps(proc.stdout)
                except json.JSONDecodeError:
                    entry["output"] = proc.stdout
            elif proc.returncode:
                entry["error"] = proc.stderr.strip()
            results.append(entry)
    if as_json:
        emit_json({"target": target, "results": results})
    sys.exit(code)
