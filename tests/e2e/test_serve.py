"""`scitex-orochi serve` as a user runs it: no config, prints URLs and tokens, stops cleanly."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile

from scitex_orochi.hub.testing import free_port

from support.agent import RawAgent
from support.procs import read_lines
from support.util import wait_for


def start_serve(env: dict[str, str], *args: str) -> tuple[subprocess.Popen, list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "scitex_orochi.cli", *args, "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    read_lines(proc.stdout, lines.append)
    return proc, lines


def children_of(pid: int) -> list[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True
    ).stdout
    return [int(x) for x in out.split()]


def serve_env(home: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCITEX_OROCHI_", "OROCHI_"))}
    env.update({"HOME": home, "XDG_DATA_HOME": f"{home}/.local/share", "NO_COLOR": "1", **extra})
    return env


def wait_banner(proc: subprocess.Popen, lines: list[str]) -> str:
    wait_for(
        lambda: any("Orochi hub ready" in x for x in lines) or proc.poll() is not None,
        60,
        "serve ready",
    )
    wait_for(
        lambda: any("stop with Ctrl-C" in x for x in lines) or proc.poll() is not None, 10, "banner"
    )
    text = "".join(lines)
    assert "Orochi hub ready" in text, text[-3000:]
    return text


def stop_serve(proc: subprocess.Popen, lines: list[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    wait_for(lambda: any("Orochi hub stopped" in x for x in lines), 10, "stop line")


def test_serve_with_no_configuration_then_sigterm():
    home = tempfile.mkdtemp(prefix="orohome", dir="/tmp")
    port, dport = free_port(), free_port()
    # the 0.1.0 names for the ports: honoured, reported once in all of serve's output
    proc, lines = start_serve(
        serve_env(home, OROCHI_PORT=str(port), OROCHI_DASHBOARD_PORT=str(dport))
    )
    try:
        text = wait_banner(proc, lines)
        agent_url = re.search(r"agents:\s+(ws://\S+)", text).group(1)
        dash_url = re.search(r"dashboard:\s+(http://\S+)", text).group(1)
        admin = re.search(r"admin token:\s+(\S+)\s+\(generated", text).group(1)
        wks = re.search(r"default workspace token:\s+(wks_[0-9a-f]{32})", text).group(1)
        # URLs carry no token; each token is printed once, at this first start
        assert agent_url == f"ws://127.0.0.1:{port}/?token=<workspace"
        assert dash_url == f"http://127.0.0.1:{dport}/"
        assert text.count(admin) == 1 and text.count(wks) == 1
        assert "CRIT" not in text, text
        for old in ("OROCHI_PORT", "OROCHI_DASHBOARD_PORT"):
            assert text.count(f"{old} is deprecated") == 1, text
        # The data lives in the per-user data directory; programs log to rotated files.
        data = f"{home}/.local/share/scitex-orochi"
        assert os.path.exists(f"{data}/orochi.db") and os.path.exists(f"{data}/admin_token")
        assert f"logs:       {data}/logs/<process>.log (rotated at 10 MiB, 5 kept)" in text

        async def talk():
            agent = await RawAgent.connect(
                f"ws://127.0.0.1:{port}/?token={wks}", "serve-check", ["#general"]
            )
            ack = await agent.post("#general", "hello")
            await agent.close()
            return ack

        assert asyncio.run(talk())["payload"]["seq"] == 1
        wait_for(
            lambda: "persister ready" in read(f"{data}/logs/persister.log"),
            10,
            "persister log file",
        )
        for name in ("broker", "gateway_ws_00", "gateway_http", "supervisord"):
            assert os.path.getsize(f"{data}/logs/{name}.log") > 0, name
        assert read(f"{data}/logs/push.log") == ""  # push is off: no push worker
        sup = children_of(proc.pid)
        assert sup, "supervisord runs under serve"
        hub_pids = [p for s in sup for p in children_of(s)]
        assert len(hub_pids) >= 4
        stop_serve(proc, lines)
        for pid in hub_pids + sup:
            wait_for(
                lambda p=pid: (
                    not os.path.exists(f"/proc/{p}")
                    or open(f"/proc/{p}/stat").read().split()[2] == "Z"
                ),
                5,
                f"pid {pid} gone",
            )
        logs = "".join(read(f"{data}/logs/{n}") for n in os.listdir(f"{data}/logs"))
        assert "deprecated" not in logs  # the processes got the new names from serve
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def read(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def test_a_later_start_shows_no_token_and_logs_rotate():
    home = tempfile.mkdtemp(prefix="orohome", dir="/tmp")
    port, dport = free_port(), free_port()
    env = serve_env(home, SCITEX_OROCHI_PORT=str(port), SCITEX_OROCHI_DASHBOARD_PORT=str(dport))
    first, lines = start_serve(env)
    try:
        text = wait_banner(first, lines)
        wks = re.search(r"default workspace token:\s+(wks_[0-9a-f]{32})", text).group(1)
        admin = re.search(r"admin token:\s+(\S+)\s+\(generated", text).group(1)
        stop_serve(first, lines)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    data = f"{home}/.local/share/scitex-orochi"
    proc, lines = start_serve(
        {**env, "SCITEX_OROCHI_LOG_MAX_BYTES": "1024", "SCITEX_OROCHI_LOG_BACKUPS": "2"}
    )
    try:
        text = wait_banner(proc, lines)
        assert admin not in text and wks not in text and "(generated" not in text
        assert f"admin token:             in {data}/admin_token" in text
        assert "scitex-orochi list-tokens default" in text
        assert "CRIT" not in text, text
        # `list-tokens` finds the admin token of a hub on this machine by itself
        listed = subprocess.run(
            [
                sys.executable,
                "-m",
                "scitex_orochi.cli",
                "--dashboard-port",
                str(dport),
                "list-tokens",
                "default",
                "--json",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert listed.returncode == 0, listed.stderr
        assert [t["token"] for t in json.loads(listed.stdout)] == [wks]

        # Each replaced connection is one gateway log line: enough of them fill 1 KiB.
        async def churn():
            for _ in range(20):
                agent = await RawAgent.connect(
                    f"ws://127.0.0.1:{port}/?token={wks}", "churner", ["#general"]
                )
                await agent.request({"type": "presence"})
            return agent

        asyncio.run(churn())
        logs = f"{data}/logs"
        wait_for(lambda: os.path.exists(f"{logs}/gateway_ws_00.log.1"), 20, "rotated log")
        assert os.path.exists(f"{logs}/supervisord.log.1")
        assert not os.path.exists(f"{logs}/gateway_ws_00.log.3")  # two backups kept
        stop_serve(proc, lines)
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
        env.update(
            {
                "HOME": home,
                "XDG_DATA_HOME": f"{home}/.local/share",
                "SCITEX_OROCHI_PORT": str(port),
                "SCITEX_OROCHI_DASHBOARD_PORT": str(free_port()),
            }
        )
        result = subprocess.run(
            [sys.executable, "-m", "scitex_orochi.cli", "serve"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr


def test_serve_runs_the_push_worker_when_push_is_enabled_and_setup_push_reads_the_key():
    home = tempfile.mkdtemp(prefix="orohome", dir="/tmp")
    port, dport = free_port(), free_port()
    env = serve_env(
        home,
        SCITEX_OROCHI_PORT=str(port),
        SCITEX_OROCHI_DASHBOARD_PORT=str(dport),
        SCITEX_OROCHI_PUSH_ENABLED="true",
    )
    proc, lines = start_serve(env)
    try:
        wait_banner(proc, lines)
        data = f"{home}/.local/share/scitex-orochi"
        wait_for(
            lambda: "push worker on the bus" in read(f"{data}/logs/push.log"), 20, "push worker"
        )
        assert oct(os.stat(f"{data}/vapid_private.pem").st_mode & 0o777) == "0o600"

        def setup_push(*args: str) -> dict:
            done = subprocess.run(
                [sys.executable, "-m", "scitex_orochi.cli", "--dashboard-port", str(dport)]
                + ["setup-push", "--json", *args],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, done.stderr
            return json.loads(done.stdout)

        from_hub, from_dir = setup_push(), setup_push("--data-dir", data)
        assert from_hub["public_key"] == from_dir["public_key"] and not from_dir["created"]
        assert from_hub["subscribe"]["rest"]["url"].endswith("/api/push/subscriptions")
        stop_serve(proc, lines)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
