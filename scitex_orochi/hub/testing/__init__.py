"""Start a real hub for tests, benchmarks and agent authors: `Hub().start()`.

The same `supervise.prepare()` and `HubSupervisor` as `scitex-orochi serve`, in a
temporary data dir on free ports of 127.0.0.1, so what a test or the benchmark
starts is what a user starts. `scitex_orochi.hub.testing.pg` gives a throwaway
PostgreSQL cluster from Debian's binaries.

    from scitex_orochi.hub.testing import Hub

    with Hub(extra_env={"SCITEX_OROCHI_MSG_RATE_PER_S": "5"}) as hub:
        url = hub.agent_url()          # ws://127.0.0.1:<port>/?token=wks_...

    Hub(settings={"ws": {"msg_burst": 5}})  # the same as overrides (Config.load)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from scitex_orochi.hub.config import Config, process_environ
from scitex_orochi.hub.supervise import HubSupervisor, prepare


def harness_setting(name: str, default: str) -> str:
    """A knob of this test harness (OROCHI_TEST_*), not a hub setting: read here only."""
    return os.environ.get(name) or default


START_TIMEOUT_S = float(harness_setting("OROCHI_TEST_START_TIMEOUT_S", "60"))
POLL_S = 0.05
# Short enough for a test to see presence change quickly; republish soon after a loss.
TEST_ENV = {
    "SCITEX_OROCHI_PRESENCE_SNAPSHOT_S": "0.5",
    "SCITEX_OROCHI_REPUBLISH_AFTER_S": "0.3",
    "SCITEX_OROCHI_LOG_LEVEL": "INFO",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait(predicate: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.1f}s waiting for {what}")
        time.sleep(POLL_S)


class Hub:
    """A supervised hub (broker, persister, gateways, bridges when configured)."""

    def __init__(
        self,
        ws_procs: int = 1,
        db_url: str | None = None,
        extra_env: dict[str, str] | None = None,
        port: int | None = None,
        dashboard_port: int | None = None,
        base_env: dict[str, str] | None = None,
        log_name: str = "hub.log",
        test_timings: bool = True,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        """`test_timings`: fast presence snapshots and republishing (TEST_ENV), for
        tests; the benchmark runs with the defaults a user gets. `settings`: overrides of
        the configuration (`Config.load`); every process of the hub runs with them."""
        self.root = Path(tempfile.mkdtemp(prefix="oro", dir="/tmp"))
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.dashboard_port = dashboard_port or free_port()
        env = {
            k: v
            for k, v in (process_environ() if base_env is None else base_env).items()
            if not k.startswith("SCITEX_OROCHI_")
        }
        env.update(
            {
                "SCITEX_OROCHI_HOST": self.host,
                "SCITEX_OROCHI_PORT": str(self.port),
                "SCITEX_OROCHI_DASHBOARD_PORT": str(self.dashboard_port),
                "SCITEX_OROCHI_DATA_DIR": str(self.root),
                "SCITEX_OROCHI_WS_PROCS": str(ws_procs),
                "SCITEX_OROCHI_LOG_STDOUT": "true",  # every program's lines in the hub's one log
                **(TEST_ENV if test_timings else {}),
            }
        )
        if db_url:
            env["SCITEX_OROCHI_DB"] = db_url
        env.update(extra_env or {})
        self.cfg = Config.load(env, settings)
        self.log_path = self.root / log_name
        self.prepared = prepare(self.cfg, env)
        self.env = self.prepared.env
        self.admin_token = self.prepared.admin_token
        self.default_token = self.prepared.default_token
        self.ws_url = f"ws://{self.host}:{self.port}"
        self.http_url = f"http://{self.host}:{self.dashboard_port}"
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._log = os.fdopen(fd, "ab")
        self.sup = HubSupervisor(self.prepared, stdout=self._log)

    # ---- lifecycle -------------------------------------------------------------------
    def start(self, timeout_s: float = START_TIMEOUT_S) -> Hub:
        self.sup.start()
        if not self.sup.wait_ready(timeout_s):
            raise RuntimeError(f"hub did not start; log:\n{self.log()}")
        # Ready means every gateway is past its bus handshake: all programs RUNNING.
        _wait(self.all_running, timeout_s, "all programs RUNNING")
        return self

    def stop(self, fast: bool = True) -> int | None:
        """Stop the hub. `fast` signals every process at once instead of supervisord's
        one-priority-at-a-time order (clean shutdown itself is tested separately)."""
        if fast and self.sup.proc is not None and self.sup.proc.poll() is None:
            pids = [pid for _state, pid in self.status().values() if pid]
            self.sup.proc.send_signal(signal.SIGTERM)
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        code = self.sup.stop()
        self._log.close()
        return code

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Hub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            self.cleanup()

    # ---- what a test needs -------------------------------------------------------------
    def agent_url(self, token: str | None = None) -> str:
        return f"{self.ws_url}/?token={token or self.default_token}"

    def log(self, chars: int = 8000) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]

    def ctl(self, *args: str) -> subprocess.CompletedProcess:
        return self.sup.ctl(*args)

    def status(self) -> dict[str, tuple[str, int | None]]:
        result = {}
        for line in self.sup.ctl("status").stdout.splitlines():
            parts = line.split()
            if len(parts) >= 2:
                pid = None
                if "pid" in parts:
                    pid = int(parts[parts.index("pid") + 1].rstrip(","))
                result[parts[0]] = (parts[1], pid)
        return result

    def all_running(self) -> bool:
        """Every program RUNNING, except optional ones (bridges) that were never started."""
        lines = self.sup.ctl("status").stdout.splitlines()
        if not lines:
            return False
        for line in lines:
            parts = line.split()
            if len(parts) < 2:
                continue
            if parts[1] != "RUNNING" and not (parts[1] == "STOPPED" and "Not started" in line):
                return False
        return True

    def pid(self, program: str) -> int:
        state, pid = self.status()[program]
        assert state == "RUNNING" and pid, (program, state)
        return pid

    def kill(self, program: str, sig: int = signal.SIGKILL) -> int:
        """Signal a supervised program (e.g. 'persister', 'gateway_ws:gateway_ws_00')."""
        pid = self.pid(program)
        os.kill(pid, sig)
        return pid

    def wait_restarted(self, program: str, old_pid: int, timeout_s: float = 30.0) -> int:
        def restarted() -> bool:
            state, pid = self.status().get(program, ("", None))
            return state == "RUNNING" and pid not in (None, old_pid)

        _wait(restarted, timeout_s, f"{program} restarted")
        return self.pid(program)

    def wait_port(self, timeout_s: float = 30.0) -> None:
        from scitex_orochi.hub.supervise import wait_port

        assert wait_port(self.host, self.port, timeout_s)

    def store(self) -> Any:
        from scitex_orochi.hub.store import Store

        return Store(self.cfg.db.url, readonly=True)
