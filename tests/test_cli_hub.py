"""The CLI against the real supervised hub: in-process through click.testing and as a
subprocess, the way people and scripts run it."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import shutil
import subprocess
import sys
import threading

from click.testing import CliRunner
from test_client_hub import agent

from scitex_orochi.cli import main

TIME_SCALE = float(os.environ.get("OROCHI_TEST_TIME_SCALE", "1"))
WAIT_S = 30.0 * TIME_SCALE
CLI = ([shutil.which("scitex-orochi")] if shutil.which("scitex-orochi")
       else [sys.executable, "-c", "from scitex_orochi.cli import main; main()"])


def agent_env(hub, **extra) -> dict[str, str]:
    env = {**hub.env, "SCITEX_OROCHI_TOKEN": hub.default_token, "NO_COLOR": "1", **extra}
    return env


def cli(hub, *args, env=None, timeout=WAIT_S) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], env=env or agent_env(hub), capture_output=True,
                          text=True, timeout=timeout)


def test_send_and_history_in_process(hub):
    env = {"SCITEX_OROCHI_PORT": str(hub.port), "SCITEX_OROCHI_TOKEN": hub.default_token,
           "SCITEX_OROCHI_DASHBOARD_PORT": str(hub.dashboard_port)}
    runner = CliRunner()
    result = runner.invoke(main, ["send", "#cli", "in process", "--name", "cli-a", "--json"],
                           env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["seq"] == 1


def test_send_as_a_subprocess_prints_the_seq(hub):
    first = cli(hub, "send", "#cli", "one", "--name", "cli-a")
    assert first.returncode == 0, first.stderr
    assert "sent to #cli (seq 1" in first.stdout
    second = cli(hub, "send", "cli", "two", "--name", "cli-a", "--json")
    assert json.loads(second.stdout)["seq"] == 2


def test_login_streams_messages_as_they_arrive(hub):
    proc = subprocess.Popen([*CLI, "login", "--name", "watcher", "--channels", "#live",
                             "--count", "2", "--json", "--heartbeat", "0"],
                            env=agent_env(hub), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    errors: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [errors.put(x) for x in proc.stderr], daemon=True).start()
    try:
        assert "connected to" in errors.get(timeout=WAIT_S)  # registered: sends reach it

        async def post() -> None:
            async with agent(hub, "poster", channels=("#live",)) as poster:
                await poster.send("#live", "first")
                await poster.send("#live", "second @watcher")

        asyncio.run(post())
        got = [json.loads(lines.get(timeout=WAIT_S)) for _ in range(2)]
        assert [m["content"] for m in got] == ["first", "second @watcher"]
        assert [m["seq"] for m in got] == [1, 2]
        assert proc.wait(WAIT_S) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_bad_token_exits_4(hub):
    result = cli(hub, "send", "#cli", "x", env=agent_env(hub, SCITEX_OROCHI_TOKEN="wrong"))
    assert result.returncode == 4 and "refused the token" in result.stderr


def test_unreachable_hub_exits_3(hub):
    env = agent_env(hub, SCITEX_OROCHI_PORT="1")
    result = cli(hub, "send", "#cli", "x", env=env)
    assert result.returncode == 3 and "ws://127.0.0.1:1/" in result.stderr


def test_rest_commands(hub):
    cli(hub, "send", "#rest", "stored", "--name", "cli-r")
    agents = cli(hub, "list-agents", "--json")
    assert agents.returncode == 0, agents.stderr
    assert isinstance(json.loads(agents.stdout), list)
    history = cli(hub, "show-history", "#rest", "--json")
    assert history.returncode == 0, history.stderr
    assert [r["content"] for r in json.loads(history.stdout)] == ["stored"]
    status = cli(hub, "show-status", "--json")
    assert status.returncode == 0 and "agents_online" in json.loads(status.stdout)


def test_workspace_admin_round_trip(hub):
    env = {**hub.env, "NO_COLOR": "1"}  # carries SCITEX_OROCHI_ADMIN_TOKEN
    created = cli(hub, "create-workspace", "cli-lab", "--channels", "#a", "--json", env=env)
    assert created.returncode == 0, created.stderr
    body = json.loads(created.stdout)
    workspace = body.get("workspace", body)
    listed = json.loads(cli(hub, "list-workspaces", "--json", env=env).stdout)
    assert workspace["id"] in [w["id"] for w in listed]
    invite = cli(hub, "create-invite", workspace["id"], "--max-uses", "2", "--json", env=env)
    assert invite.returncode == 0, invite.stderr
    invites = json.loads(cli(hub, "list-invites", workspace["id"], "--json", env=env).stdout)
    assert len(invites) == 1 and invites[0]["max_uses"] == 2
    assert cli(hub, "delete-workspace", workspace["id"], "--yes", env=env).returncode == 0
    missing = cli(hub, "list-invites", workspace["id"], env=env)
    assert missing.returncode == 5


def test_doctor_passes_on_a_healthy_hub(hub):
    result = cli(hub, "doctor", "--json", timeout=WAIT_S * 2)
    report = json.loads(result.stdout)
    failed = [c for c in report["checks"] if c["ok"] is False]
    assert result.returncode == 0 and not failed, failed
    names = {c["name"] for c in report["checks"]}
    assert {"agent port", "dashboard port", "database", "bus", "message round trip",
            "process broker", "process persister"} <= names


def test_doctor_names_the_dead_part(hub):
    hub.sup.ctl("stop", "persister")
    result = cli(hub, "doctor", timeout=WAIT_S * 2)
    assert result.returncode == 1
    assert "✗ process persister" in result.stdout and "→" in result.stdout
