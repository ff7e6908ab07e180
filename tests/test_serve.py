"""`scitex-orochi serve` as a user runs it: no config, prints URLs and tokens, stops cleanly."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading

from agent import RawAgent
from hubfixture import free_port
from util import wait_for


def start_serve(env: dict[str, str], *args: str) -> tuple[subprocess.Popen, list[str]]:
    proc = subprocess.Popen([sys.executable, "-m", "scitex_orochi.cli", *args, "serve"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    lines: list[str] = []

    def pump() -> None:
        for line in proc.stdout:
            lines.append(line)

    threading.Thread(target=pump, daemon=True).start()
    return proc, lines


def children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True).stdout
    return [int(x) for x in out.split()]


def test_serve_with_no_configuration_then_sigterm():
    home = tempfile.mkdtemp(prefix="orohome", dir="/tmp")
    port, dport = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCITEX_OROCHI_")}
    env.update({"HOME": home, "XDG_DATA_HOME": f"{home}/.local/share",
                "SCITEX_OROCHI_PORT": str(port), "SCITEX_OROCHI_DASHBOARD_PORT": str(dport)})
    proc, lines = start_serve(env)
    try:
        wait_for(lambda: any("Orochi hub ready" in x for x in lines) or proc.poll() is not None,
                 60, "serve ready")
        wait_for(lambda: any("stop with Ctrl-C" in x for x in lines), 10, "banner")
        text = "".join(lines)
        assert "Orochi hub ready" in text, text[-3000:]
        agent_url = re.search(r"agents:\s+(ws://\S+)", text).group(1)
        dash_url = re.search(r"dashboard:\s+(http://\S+)", text).group(1)
        admin = re.search(r"admin token:\s+(\S+)\s+\(generated\)", text).group(1)
        wks = re.search(r"default workspace token:\s+(wks_[0-9a-f]{32})", text).group(1)
        assert agent_url == f"ws://127.0.0.1:{port}/?token={wks}"
        assert dash_url == f"http://127.0.0.1:{dport}/?token={admin}"
        # The data lives in the per-user data directory.
        data = f"{home}/.local/share/scitex-orochi"
        assert os.path.exists(f"{data}/orochi.db") and os.path.exists(f"{data}/admin_token")

        async def talk():
            agent = await RawAgent.connect(agent_url, "serve-check", ["#general"])
            ack = await agent.post("#general", "hello")
            await agent.close()
            return ack

        assert asyncio.run(talk())["payload"]["seq"] == 1
        sup = children_of(proc.pid)
        assert sup, "supervisord runs under serve"
        hub_pids = [p for s in sup for p in children_of(s)]
        assert len(hub_pids) >= 4
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        for pid in hub_pids + sup:
            wait_for(lambda p=pid: not os.path.exists(f"/proc/{p}") or
                     open(f"/proc/{p}/stat").read().split()[2] == "Z", 5, f"pid {pid} gone")
        assert "Orochi hub stopped" in "".join(lines)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_serve_reports_a_busy_port():
    home = tempfile.mkdtemp(prefix="orohome", dir="/tmp")
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCITEX_OROCHI_")}
        env.update({"HOME": home, "XDG_DATA_HOME": f"{home}/.local/share",
                    "SCITEX_OROCHI_PORT": str(port),
                    "SCITEX_OROCHI_DASHBOARD_PORT": str(free_port())})
        result = subprocess.run([sys.executable, "-m", "scitex_orochi.cli", "serve"], env=env,
                                capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr


def test_a_regular_file_stdout_is_made_append_only(tmp_path):
    """supervisord's own lines must not overwrite program output in `serve > hub.log`."""
    import fcntl

    from scitex_orochi.supervise import _append_mode

    with open(tmp_path / "hub.log", "wb") as log:
        assert not fcntl.fcntl(log.fileno(), fcntl.F_GETFL) & os.O_APPEND
        _append_mode(log)
        assert fcntl.fcntl(log.fileno(), fcntl.F_GETFL) & os.O_APPEND
