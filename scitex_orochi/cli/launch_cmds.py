"""`scitex-orochi launch NAME|all`: agents from `agents/<name>.yaml` as programs of a
supervisord of their own (in the state directory), restarted when they die.

supervisord.conf holds no secret: each program is `python -m scitex_orochi.cli.launch_exec
NAME`, which copies only the variables the YAML names from supervisord's environment (the
one `launch` started it with). A running supervisord is reused; one started without a
variable a new agent needs is reported (`launch --shutdown`, then launch again)."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path
from typing import Any

import click

from scitex_orochi.cli.agent_spec import AgentSpec, SpecError, find, load_all
from scitex_orochi.cli.group import main
from scitex_orochi.cli.output import EXIT_USAGE, emit_json, table

DEFAULT_STATE_DIR = Path.home() / ".scitex" / "orochi" / "launch"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 20.0
NAMES_FILE = "supervisord.env-names"  # the variable NAMES supervisord was started with
POLL_S = 0.05


class LaunchError(Exception):
    pass


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


# ---- supervisord.conf ----------------------------------------------------------------------
def _v(value: object) -> str:
    """A value for supervisord.conf: `%` is its expansion character."""
    return str(value).replace("%", "%%")


def render_conf(state: Path, specs: dict[str, AgentSpec], agents_dir: Path) -> str:
    logs = state / "logs"
    lines = [
        "; The agents of `scitex-orochi launch` (written by it: no secrets, see launch_exec).",
        "[unix_http_server]",
        f"file={_v(state / 'supervisord.sock')}",
        "chmod=0700",
        "",
        "[supervisord]",
        "identifier=orochi-launch",
        "nodaemon=false",
        f"logfile={_v(logs / 'supervisord.log')}",
        "logfile_maxbytes=10MB",
        "logfile_backups=3",
        f"pidfile={_v(state / 'supervisord.pid')}",
        f"childlogdir={_v(logs)}",
        "loglevel=info",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{_v(state / 'supervisord.sock')}",
    ]
    for name, spec in sorted(specs.items()):
        command = shlex.join(
            [
                sys.executable,
                "-m",
                "scitex_orochi.cli.launch_exec",
                name,
                "--agents-dir",
                str(agents_dir),
            ]
        )
        lines += [
            "",
            f"; {spec.path}",
            f"[program:{name}]",
            f"command={_v(command)}",
            "autostart=false",
            "autorestart=true",
            "startsecs=1",
            "startretries=10",
            "stopsignal=TERM",
            "stopwaitsecs=10",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={_v(logs / (name + '.log'))}",
            "stdout_logfile_maxbytes=10MB",
            "stdout_logfile_backups=3",
        ]
    return "\n".join(lines) + "\n"


def _private_write(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    path.chmod(0o600)


# ---- talking to supervisord ----------------------------------------------------------------
class Supervisor:
    def __init__(self, state: Path) -> None:
        self.state = state
        self.conf = state / "supervisord.conf"
        self.sock = state / "supervisord.sock"
        self.pidfile = state / "supervisord.pid"

    def proxy(self) -> Any:
        from supervisor.xmlrpc import SupervisorTransport

        transport = SupervisorTransport(None, None, f"unix://{self.sock}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def running(self) -> bool:
        if not self.sock.exists():
            return False
        try:
            state = self.proxy().supervisor.getState()
        except (OSError, xmlrpc.client.Error):
            return False
        return bool(state.get("statename") == "RUNNING")

    def pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def start(self, environ: dict[str, str]) -> None:
        logs = self.state / "logs"
        with open(logs / "supervisord.start.log", "w") as err:
            proc = subprocess.run(
                [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.conf)],
                env=environ,
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                timeout=START_TIMEOUT_S,
            )
        if proc.returncode != 0:
            detail = (logs / "supervisord.start.log").read_text().strip()
            raise LaunchError(f"supervisord did not start (exit {proc.returncode}): {detail}")
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.running():
            if time.monotonic() > deadline:
                raise LaunchError(
                    f"supervisord did not answer on {self.sock} within {START_TIMEOUT_S:g}s "
                    f"(see {logs / 'supervisord.log'})"
                )
            time.sleep(POLL_S)
        _private_write(self.state / NAMES_FILE, "\n".join(sorted(environ)) + "\n")

    def started_with(self) -> set[str]:
        try:
            return set((self.state / NAMES_FILE).read_text().split())
        except OSError:
            return set()

    def update(self) -> None:
        """Like `supervisorctl update`: add, change and remove programs as the conf says."""
        rpc = self.proxy().supervisor
        added, changed, removed = rpc.reloadConfig()[0]
        for name in removed + changed:
            rpc.stopProcessGroup(name)
            rpc.removeProcessGroup(name)
        for name in changed + added:
            rpc.addProcessGroup(name)

    def info(self) -> dict[str, dict[str, Any]]:
        return {p["name"]: p for p in self.proxy().supervisor.getAllProcessInfo()}

    def start_program(self, name: str) -> None:
        try:
            self.proxy().supervisor.startProcess(name, True)
        except xmlrpc.client.Fault as fault:
            if "ALREADY_STARTED" not in fault.faultString:
                raise LaunchError(
                    f"agent {name} did not start ({fault.faultString}); see "
                    f"{self.state / 'logs' / (name + '.log')}"
                ) from None

    def stop_program(self, name: str) -> None:
        try:
            self.proxy().supervisor.stopProcess(name, True)
        except xmlrpc.client.Fault as fault:
            if "NOT_RUNNING" not in fault.faultString:
                raise LaunchError(f"could not stop {name}: {fault.faultString}") from None

    def shutdown(self) -> None:
        pid = self.pid()
        try:
            self.proxy().supervisor.shutdown()
        except (OSError, xmlrpc.client.Error):
            pass
        if pid is None:
            return
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _alive(pid):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                break
            time.sleep(POLL_S)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---- the command ---------------------------------------------------------------------------
def _rows(sup: Supervisor, specs: dict[str, AgentSpec]) -> list[dict[str, Any]]:
    info = sup.info() if sup.running() else {}
    rows = []
    for name in sorted(set(specs) | set(info)):
        proc = info.get(name, {})
        spec = specs.get(name)
        rows.append(
            {
                "name": name,
                "state": proc.get("statename", "NOT LAUNCHED"),
                "pid": proc.get("pid") or None,
                "description": proc.get("description", ""),
                "machine": spec.machine if spec and spec.machine else None,
                "role": spec.role if spec and spec.role else None,
                "log": proc.get("stdout_logfile") or None,
            }
        )
    return rows


def _print_rows(rows: list[dict[str, Any]], as_json: bool, supervisor_pid: int | None) -> None:
    if as_json:
        emit_json({"supervisord_pid": supervisor_pid, "agents": rows})
        return
    if not rows:
        click.echo("no agents")
        return
    cols = [("name", "name"), ("state", "state"), ("pid", "pid"), ("role", "role")]
    cols += [("description", "detail")]
    click.echo(table(rows, cols))


@main.command(
    "launch",
    epilog="""\b
Examples:
  scitex-orochi launch all                      # every agents/*.yaml meant for this host
  scitex-orochi launch head-lab1 --agents-dir ~/fleet/agents
  scitex-orochi launch --status --json
  scitex-orochi launch --stop head-lab1
  scitex-orochi launch all --dry-run            # the programs it would run
  scitex-orochi launch --shutdown               # stop every agent and their supervisord

\b
agents/<name>.yaml:
  command: python                 args: [agent.py]        workdir: .
  channels: ["#general"]          machine: lab1           role: head
  env: {LOG_LEVEL: info}          env_from: [SCITEX_OROCHI_TOKEN]
env_from names variables of launch's own environment (never their values); only those
reach the agent, with PATH, HOME, the locale and SCITEX_OROCHI_HOST/_PORT.

\b
Exit codes:
  0  done
  1  supervisord or an agent did not start
  2  a bad YAML file (named, with the key), an unknown agent or a missing variable
""",
)
@click.argument("name", required=False)
@click.option(
    "--agents-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("agents"),
    show_default=True,
    help="Directory of the agents' YAML files.",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_STATE_DIR,
    show_default=True,
    help="supervisord's conf, socket, pid and the agents' logs.",
)
@click.option("--status", "show_status", is_flag=True, help="Show each agent's state.")
@click.option("--stop", "stop_name", metavar="NAME", help="Stop one launched agent.")
@click.option("--shutdown", is_flag=True, help="Stop every agent and the supervisord.")
@click.option("--any-machine", is_flag=True, help="Launch agents meant for other hosts too.")
@click.option("--dry-run", is_flag=True, help="Show what it would do; do nothing.")
@click.option("--json", "as_json", is_flag=True, help="Report as JSON.")
def launch_cmd(
    name: str | None,
    agents_dir: Path,
    state_dir: Path,
    show_status: bool,
    stop_name: str | None,
    shutdown: bool,
    any_machine: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Run agents defined in agents/<name>.yaml (NAME, or `all`) as supervised programs,
    restarted when they die; or show (--status), stop one (--stop) or stop all (--shutdown)."""
    chosen = sum([bool(name), show_status, bool(stop_name), shutdown])
    if chosen != 1:
        _fail("give one of: NAME or all, --status, --stop NAME, --shutdown", EXIT_USAGE)
    agents_dir = agents_dir.resolve()
    state = state_dir.expanduser().resolve()
    sup = Supervisor(state)
    try:
        if show_status:
            specs = load_all(agents_dir) if agents_dir.is_dir() else {}
            _print_rows(_rows(sup, specs), as_json, sup.pid() if sup.running() else None)
        elif stop_name:
            _stop(sup, stop_name, dry_run, as_json)
        elif shutdown:
            _shutdown(sup, dry_run, as_json)
        else:
            assert name is not None
            _launch(sup, name, agents_dir, any_machine, dry_run, as_json)
    except SpecError as exc:
        _fail(str(exc), EXIT_USAGE)
    except LaunchError as exc:
        _fail(str(exc), 1)
    except (OSError, xmlrpc.client.Error) as exc:
        _fail(f"supervisord in {state}: {exc}", 1)


def _stop(sup: Supervisor, name: str, dry_run: bool, as_json: bool) -> None:
    if not sup.running():
        _fail(f"nothing launched: no supervisord answers in {sup.state}", 1)
    if name not in sup.info():
        _fail(f"no launched agent {name!r} (`scitex-orochi launch --status`)", EXIT_USAGE)
    if dry_run:
        _dry({"dry_run": True, "stop": name}, f"stop agent {name}", as_json)
        return
    sup.stop_program(name)
    state = sup.info()[name]["statename"]
    if as_json:
        emit_json({"stopped": name, "state": state})
    else:
        click.echo(f"stopped {name} ({state})")


def _shutdown(sup: Supervisor, dry_run: bool, as_json: bool) -> None:
    running = sup.running()
    pid = sup.pid() if running else None
    if dry_run:
        what = f"stop supervisord {pid} and its agents" if running else "nothing (not running)"
        _dry({"dry_run": True, "shutdown": running, "supervisord_pid": pid}, what, as_json)
        return
    if running:
        sup.shutdown()
    if as_json:
        emit_json({"shutdown": running, "supervisord_pid": pid})
    else:
        click.echo(f"stopped supervisord {pid}" if running else "not running")


def _dry(data: dict[str, Any], what: str, as_json: bool) -> None:
    if as_json:
        emit_json(data)
    else:
        click.echo(f"[dry-run] would {what}")


def _launch(
    sup: Supervisor, name: str, agents_dir: Path, any_machine: bool, dry_run: bool, as_json: bool
) -> None:
    from scitex_orochi.hub.config import process_environ

    specs = load_all(agents_dir)
    host = socket.gethostname()
    if name == "all":
        selected = [s for s in specs.values() if any_machine or s.runs_on(host)]
        skipped = [s.name for s in specs.values() if s not in selected]
        if not specs:
            raise SpecError(f"{agents_dir}: no agent files (*.yaml)")
    else:
        spec = specs.get(name) or find(agents_dir, name)
        if not (any_machine or spec.runs_on(host)):
            raise SpecError(
                f"{spec.path}: `machine` is {spec.machine!r}, this host is {host!r} "
                "(--any-machine launches it here anyway)"
            )
        selected, skipped = [spec], []
    environ = process_environ()
    missing = sorted({n for s in selected for n in s.env_from if not environ.get(n)})
    if missing:
        raise SpecError(
            f"set {', '.join(missing)} in launch's environment (named in env_from of "
            f"{', '.join(s.name for s in selected if set(s.env_from) & set(missing))})"
        )
    running = sup.running()
    if running:
        lacking = sorted({n for s in selected for n in s.env_from} - sup.started_with())
        if lacking:
            raise LaunchError(
                f"the running supervisord (pid {sup.pid()}) was started without "
                f"{', '.join(lacking)}: `scitex-orochi launch --shutdown --state-dir "
                f"{sup.state}`, then launch again with them set"
            )
    if dry_run:
        data = {
            "dry_run": True,
            "launch": [s.summary() for s in selected],
            "skipped_other_machines": skipped,
            "conf": str(sup.conf),
            "supervisord": "reuse" if running else "start",
        }
        if as_json:
            emit_json(data)
            return
        click.echo(f"[dry-run] would write {sup.conf} and {data['supervisord']} supervisord")
        for s in selected:
            click.echo(f"  {s.name}: {shlex.join(s.argv)}  (in {s.workdir})")
            if s.env_from:
                click.echo(f"    passes through: {', '.join(s.env_from)}")
        for n in skipped:
            click.echo(f"  skipped (another machine): {n}")
        return
    for path in (sup.state, sup.state / "logs"):
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.chmod(0o700)
    _private_write(sup.conf, render_conf(sup.state, specs, agents_dir))
    if running:
        sup.update()
    else:
        sup.start(environ)
    for s in selected:
        sup.start_program(s.name)
    rows = [r for r in _rows(sup, specs) if r["name"] in {s.name for s in selected}]
    if as_json:
        emit_json({"supervisord_pid": sup.pid(), "agents": rows, "skipped": skipped})
        return
    _print_rows(rows, False, sup.pid())
    for n in skipped:
        click.echo(f"skipped (another machine): {n}")
