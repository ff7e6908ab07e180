"""A real hub for tests: supervisord running broker, persister, gateways, in a temp dir.

Started through the same `prepare()` and `HubSupervisor` that `scitex-orochi serve`
uses. Ports are free ports on 127.0.0.1; the data dir is short enough for ipc paths.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from scitex_orochi.hub.config import Config
from scitex_orochi.hub.supervise import HubSupervisor, prepare

from util import wait_for

START_TIMEOUT_S = float(os.environ.get("OROCHI_TEST_START_TIMEOUT_S", "60"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Hub:
    def __init__(self, ws_procs: int = 1, db_url: str | None = None,
                 extra_env: dict[str, str] | None = None, port: int | None = None,
                 dashboard_port: int | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="oro", dir="/tmp"))
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.dashboard_port = dashboard_port or free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCITEX_OROCHI_")}
        env.update({
            "SCITEX_OROCHI_HOST": self.host,
            "SCITEX_OROCHI_PORT": str(self.port),
            "SCITEX_OROCHI_DASHBOARD_PORT": str(self.dashboard_port),
            "SCITEX_OROCHI_DATA_DIR": str(self.root),
            "SCITEX_OROCHI_WS_PROCS": str(ws_procs),
            "SCITEX_OROCHI_PRESENCE_SNAPSHOT_S": "0.5",
            "SCITEX_OROCHI_REPUBLISH_AFTER_S": "0.3",
            "SCITEX_OROCHI_LOG_LEVEL": "INFO",
            "SCITEX_OROCHI_LOG_STDOUT": "true",  # program output in hub.log, read by tests
        })
        if db_url:
            env["SCITEX_OROCHI_DB"] = db_url
        env.update(extra_env or {})
        self.cfg = Config.from_env(env)
        self.log_path = self.root / "hub.log"
        self.prepared = prepare(self.cfg, env)
        self.env = self.prepared.env
        self.admin_token = self.prepared.admin_token
        self.default_token = self.prepared.default_token
        self.ws_url = f"ws://{self.host}:{self.port}"
        self.http_url = f"http://{self.host}:{self.dashboard_port}"
        # closed in stop(); private like every file in the data dir
        self._log = os.fdopen(os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                                      0o600), "ab")
        self.sup = HubSupervisor(self.prepared, stdout=self._log)

    def agent_url(self, token: str | None = None) -> str:
        return f"{self.ws_url}/?token={token or self.default_token}"

    def start(self) -> Hub:
        self.sup.start()
        if not self.sup.wait_ready(START_TIMEOUT_S):
            raise RuntimeError(f"hub did not start; log:\n{self.log()}")
        # Ready means every gateway is past its bus handshake: all programs RUNNING.
        wait_for(lambda: self.all_running(), START_TIMEOUT_S, "all programs RUNNING")
        return self

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-8000:]

    def status(self) -> dict[str, tuple[str, int | None]]:
        out = self.sup.ctl("status").stdout
        result = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 2:
                pid = None
                if "pid" in parts:
                    pid = int(parts[parts.index("pid") + 1].rstrip(","))
                result[parts[0]] = (parts[1], pid)
        return result

    def all_running(self) -> bool:
        """Every program RUNNING, except optional ones (bridges) that were never started."""
        out = self.sup.ctl("status").stdout.splitlines()
        if not out:
            return False
        for line in out:
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

        wait_for(restarted, timeout_s, f"{program} restarted")
        return self.pid(program)

    def wait_port(self, timeout_s: float = 30.0) -> None:
        from scitex_orochi.hub.supervise import wait_port

        assert wait_port(self.host, self.port, timeout_s)

    def store(self):
        from scitex_orochi.hub.store import Store

        return Store(self.cfg.db_url, readonly=True)

    def stop(self, fast: bool = True) -> int | None:
        """Stop the hub. `fast` signals every process at once instead of supervisord's
        one-priority-at-a-time order (clean shutdown itself is tested separately)."""
        pids = []
        if fast and self.sup.proc is not None and self.sup.proc.poll() is None:
            pids = [pid for state, pid in self.status().values() if pid]
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

    def ctl(self, *args: str) -> subprocess.CompletedProcess:
        return self.sup.ctl(*args)


def wait_deadline(seconds: float) -> float:
    return time.monotonic() + seconds
