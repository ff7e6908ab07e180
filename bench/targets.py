"""The servers under test: start, describe and stop each one on free loopback ports.

- `OursTarget`: this repo's hub under supervisord, through the same
  `supervise.prepare` + `HubSupervisor` that `scitex-orochi serve` uses, in a
  temporary data dir (SQLite, or a PostgreSQL URL).
- `PublishedTarget`: the published `scitex-orochi` standalone server
  (`scitex-orochi-server`) from its own virtual environment, installed on first
  use under the bench cache dir.
- `CeilingTarget`: `bench.ceiling`, a bare relay that does no work.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
PUBLISHED_VERSION = "0.17.0"
PUBLISHED_ADMIN_TOKEN = "bench-admin-token"
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "scitex-orochi-bench"
PIP_TIMEOUT_S = 1200


class TargetError(RuntimeError):
    """A server under test could not be installed or started."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_port(port: int, timeout_s: float, proc: subprocess.Popen | None = None) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((HOST, port)) == 0:
                return True
        time.sleep(0.05)
    return False


def descendants(root: int) -> list[int]:
    """`root` and every process below it, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_ticks(pid: int) -> int:
    """utime + stime of one process, in clock ticks."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    fields = stat[stat.rfind(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def process_name(pid: int) -> str:
    """`-m module` of a python process (e.g. persister), else the executable's name."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return str(pid)
    args = [a.decode(errors="replace") for a in raw if a]
    if "-m" in args and args.index("-m") + 1 < len(args):
        return args[args.index("-m") + 1].rsplit(".", 1)[-1]
    return Path(args[0]).name if args else str(pid)


def started_pid(proc: subprocess.Popen[bytes] | None) -> int:
    if proc is None:
        raise TargetError("the target is not running")
    return proc.pid


def _kill_group(proc: subprocess.Popen, timeout_s: float = STOP_TIMEOUT_S) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


class Target:
    """One server under test; `url(token)` is what an agent connects to."""

    name = "?"
    label = "?"
    acks_durable = False
    has_history = False

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=f"orb{self.name[:3]}", dir="/tmp"))
        self.port = free_port()
        self.log_path = self.root / "server.log"

    @property
    def token(self) -> str:
        return ""

    @property
    def url(self) -> str:
        return f"ws://{HOST}:{self.port}/?token={self.token}"

    def start(self) -> Target:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def root_pid(self) -> int:
        raise NotImplementedError

    def pids(self) -> list[int]:
        return descendants(self.root_pid())

    def cpu_by_process(self) -> dict[int, tuple[str, int]]:
        """pid -> (name, CPU ticks so far) for every process of the target."""
        return {pid: (process_name(pid), cpu_ticks(pid)) for pid in self.pids()}

    def rss_kb(self) -> int:
        """Resident memory of every process of the target, in KiB."""
        return sum(rss_kb(pid) for pid in self.pids())

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Target:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            self.cleanup()


class OursTarget(Target):
    """Our hub, started by `scitex_orochi.hub.testing.Hub` (as the tests start it) with
    the settings a user gets."""

    name = "ours"
    label = "ours (this repo)"
    acks_durable = True
    has_history = True

    def __init__(
        self, db_url: str | None = None, ws_procs: int = 1, extra_env: dict[str, str] | None = None
    ) -> None:
        super().__init__()
        from scitex_orochi.hub.testing import Hub

        self.hub = Hub(
            ws_procs=ws_procs,
            db_url=db_url,
            port=self.port,
            extra_env={"SCITEX_OROCHI_LOG_LEVEL": "WARNING", **(extra_env or {})},
            log_name="server.log",
            test_timings=False,
        )
        self.cfg = self.hub.cfg
        self.log_path = self.hub.log_path

    @property
    def token(self) -> str:
        return self.hub.default_token

    @property
    def db_url(self) -> str:
        return self.cfg.db.url

    def workspace_url(self, name: str) -> str:
        """The agent URL of another workspace (created on first use)."""
        from scitex_orochi.hub.store import Store

        tokens = self.__dict__.setdefault("_workspace_tokens", {})
        if name not in tokens:
            store = Store(self.db_url)
            try:
                tokens[name] = store.create_workspace(name)[1]
            finally:
                store.close()
        return f"ws://{HOST}:{self.port}/?token={tokens[name]}"

    def start(self) -> OursTarget:
        try:
            self.hub.start(START_TIMEOUT_S)
        except (RuntimeError, TimeoutError):
            self.stop()
            raise TargetError(f"our hub did not start; log:\n{self.log_tail()}") from None
        return self

    def root_pid(self) -> int:
        return started_pid(self.hub.sup.proc)

    def program_pids(self) -> dict[str, int]:
        """Supervised program name -> pid (for py-spy)."""
        return {
            name: pid
            for name, (state, pid) in self.hub.status().items()
            if state == "RUNNING" and pid
        }

    def stop(self) -> None:
        if self.hub.sup.proc is not None:
            self.hub.stop()

    def cleanup(self) -> None:
        self.hub.cleanup()
        super().cleanup()


def published_venv(version: str = PUBLISHED_VERSION, log=print) -> Path:
    """The venv with the published server, created and installed on first use."""
    venv = CACHE_DIR / f"pub-{version}"
    server = venv / "bin" / "scitex-orochi-server"
    if server.exists():
        return venv
    log(
        f"installing the published scitex-orochi=={version} into {venv} "
        f"(first run only; this takes a few minutes)"
    )
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    proc = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", f"scitex-orochi=={version}"],
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT_S,
    )
    if proc.returncode != 0 or not server.exists():
        raise TargetError(
            f"pip install scitex-orochi=={version} failed:\n"
            f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
    return venv


class PublishedTarget(Target):
    name = "published"
    label = f"published {PUBLISHED_VERSION}"
    has_history = True

    def __init__(self, version: str = PUBLISHED_VERSION, log=print) -> None:
        super().__init__()
        self.version = version
        self.label = f"published {version}"
        self.venv = published_venv(version, log)
        self.db_path = self.root / "orochi.db"
        self.proc: subprocess.Popen | None = None

    @property
    def token(self) -> str:
        return PUBLISHED_ADMIN_TOKEN

    def start(self) -> PublishedTarget:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCITEX_OROCHI_")}
        env.update(
            {
                "SCITEX_OROCHI_HOST": HOST,
                "SCITEX_OROCHI_PORT": str(self.port),
                "SCITEX_OROCHI_DASHBOARD_PORT": str(free_port()),
                "SCITEX_OROCHI_DB": str(self.db_path),
                "SCITEX_OROCHI_ADMIN_TOKEN": PUBLISHED_ADMIN_TOKEN,
                "SCITEX_OROCHI_MEDIA_ROOT": str(self.root / "media"),
                "SCITEX_OROCHI_GITEA_URL": "http://127.0.0.1:9",
                "HOME": str(self.root),  # keeps its push/config files out of the user's home
                "PYTHONUNBUFFERED": "1",
            }
        )
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [str(self.venv / "bin" / "scitex-orochi-server")],
                env=env,
                cwd=self.root,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if not wait_port(self.port, START_TIMEOUT_S, self.proc):
            self.stop()
            raise TargetError(f"the published server did not start; log:\n{self.log_tail()}")
        return self

    def root_pid(self) -> int:
        return started_pid(self.proc)

    def stop(self) -> None:
        # It logs "Shutdown complete" on SIGTERM and keeps serving (PROTOCOL.md §9).
        if self.proc is not None:
            _kill_group(self.proc, timeout_s=2.0)


class CeilingTarget(Target):
    name = "ceiling"
    label = "ceiling (bare relay)"

    def __init__(self) -> None:
        super().__init__()
        self.proc: subprocess.Popen | None = None

    def start(self) -> CeilingTarget:
        repo = Path(__file__).resolve().parent.parent
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo), env.get("PYTHONPATH")]))
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bench.ceiling", "--host", HOST, "--port", str(self.port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if not wait_port(self.port, START_TIMEOUT_S, self.proc):
            self.stop()
            raise TargetError(f"the ceiling server did not start; log:\n{self.log_tail()}")
        return self

    def root_pid(self) -> int:
        return started_pid(self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            _kill_group(self.proc)


def make_target(name: str, log=print, **kwargs) -> Target:
    if name == "ours":
        return OursTarget(**kwargs)
    if name == "published":
        return PublishedTarget(log=log)
    if name == "ceiling":
        return CeilingTarget()
    raise TargetError(f"unknown target {name!r} (ours, published, ceiling)")
