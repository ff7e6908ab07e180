"""`scitex-orochi launch`: an agent from agents/<name>.yaml, supervised, posts to a real hub;
killed, it is restarted; its secret reaches its environment and no file; --status, --stop,
reuse of the running supervisord, and the refusals (a missing variable, a bad YAML)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from support.cli import CLI, WAIT_S
from support.client import agent
from support.util import REPO, wait_for

AGENT_SCRIPT = textwrap.dedent(
    """\
    import asyncio, hashlib, os
    from scitex_orochi import OrochiClient

    async def main():
        secret = os.environ.get("LAUNCH_TEST_SECRET", "")
        async with OrochiClient() as client:
            await client.send("#launch", " ".join([
                f"up pid={os.getpid()}",
                f"sha={hashlib.sha256(secret.encode()).hexdigest()}",
                f"unnamed={'UNNAMED_SECRET' in os.environ}",
                f"role={os.environ.get('SCITEX_OROCHI_ROLE')}",
                f"cwd={os.getcwd()}",
            ]))
            await asyncio.Event().wait()

    asyncio.run(main())
    """
)


class Launch:
    def __init__(self, tmp_path: Path, hub) -> None:
        self.agents = tmp_path / "agents"
        self.agents.mkdir()
        self.state = tmp_path / "state"
        self.secret = secrets.token_hex(16)
        self.token = hub.default_token
        (tmp_path / "poster.py").write_text(AGENT_SCRIPT)
        self.script = tmp_path / "poster.py"
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp_path),
            "PYTHONPATH": str(REPO),
            "NO_COLOR": "1",
            "SCITEX_OROCHI_HOST": hub.host,
            "SCITEX_OROCHI_PORT": str(hub.port),
            "SCITEX_OROCHI_TOKEN": self.token,
            "LAUNCH_TEST_SECRET": self.secret,
            "UNNAMED_SECRET": "must-not-reach-the-agent",
        }

    def define(self, name: str, **extra: str) -> None:
        body = {
            "command": sys.executable,
            "args": [str(self.script)],
            "workdir": str(self.script.parent),
            "channels": ["#launch"],
            "role": "tester",
            "env_from": ["SCITEX_OROCHI_TOKEN", "LAUNCH_TEST_SECRET"],
        }
        text = json.dumps(body) + "\n"  # JSON is YAML
        (self.agents / f"{name}.yaml").write_text(
            text + "".join(f"{k}: {v}\n" for k, v in extra.items())
        )

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                *CLI,
                "launch",
                *args,
                "--agents-dir",
                str(self.agents),
                "--state-dir",
                str(self.state),
            ],
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=WAIT_S * 2,
        )

    async def arun(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        return await asyncio.to_thread(self.run, *args, env=env)

    def status(self) -> dict:
        result = self.run("--status", "--json")
        assert result.returncode == 0, result.stderr
        return {a["name"]: a for a in json.loads(result.stdout)["agents"]}

    def supervisord_pid(self) -> int | None:
        try:
            return int((self.state / "supervisord.pid").read_text())
        except (OSError, ValueError):
            return None


def _kill(pid: int | None) -> None:
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def launch(tmp_path, shared_hub):
    lt = Launch(tmp_path, shared_hub)
    seen: list[int] = []
    lt.seen_pids = seen  # type: ignore[attr-defined]
    yield lt
    pid = lt.supervisord_pid()
    lt.run("--shutdown")
    _kill(pid if pid and _alive(pid) else None)
    for agent_pid in seen:
        _kill(agent_pid if _alive(agent_pid) else None)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _fields(text: str) -> dict[str, str]:
    return dict(re.findall(r"(\w+)=(\S+)", text))


async def test_launched_agent_posts_is_restarted_when_killed_and_its_secret_is_in_no_file(
    launch, shared_hub
):
    launch.define("poster")
    async with agent(shared_hub, "launch-observer", channels=("#launch",)) as obs:
        result = await launch.arun("poster")
        assert result.returncode == 0, result.stderr + result.stdout
        assert "poster" in result.stdout and "RUNNING" in result.stdout
        first = _fields((await obs.recv(WAIT_S)).content)
        old_pid = int(first["pid"])
        launch.seen_pids.append(old_pid)
        assert first["sha"] == hashlib.sha256(launch.secret.encode()).hexdigest()
        assert first["unnamed"] == "False"  # only the named variables reach it
        assert first["role"] == "tester" and first["cwd"] == str(launch.script.parent)
        assert launch.status()["poster"]["pid"] == old_pid

        os.kill(old_pid, signal.SIGKILL)
        second = _fields((await obs.recv(WAIT_S)).content)
        new_pid = int(second["pid"])
        launch.seen_pids.append(new_pid)
        assert new_pid != old_pid
        status = await asyncio.to_thread(
            wait_for,
            lambda: (st := launch.status()["poster"])["state"] == "RUNNING" and st,
            WAIT_S,
            "the restarted agent RUNNING",
        )
        assert status["pid"] == new_pid

    for path in launch.state.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert launch.secret.encode() not in data, path
            assert launch.token.encode() not in data, path
    conf = (launch.state / "supervisord.conf").read_text()
    assert "launch_exec poster" in conf and "environment" not in conf

    stopped = launch.run("--stop", "poster", "--json")
    assert stopped.returncode == 0, stopped.stderr
    assert json.loads(stopped.stdout)["state"] == "STOPPED"
    assert not _alive(new_pid)
    assert launch.status()["poster"]["state"] == "STOPPED"


def test_second_launch_reuses_the_supervisord_and_shutdown_stops_it(launch):
    launch.define("one")
    launch.define("two")
    assert launch.run("one").returncode == 0
    pid = launch.supervisord_pid()
    assert pid and _alive(pid)
    result = launch.run("all", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["supervisord_pid"] == pid
    assert {a["name"]: a["state"] for a in report["agents"]} == {"one": "RUNNING", "two": "RUNNING"}
    launch.seen_pids.extend(a["pid"] for a in report["agents"])
    down = launch.run("--shutdown")
    assert down.returncode == 0, down.stderr
    assert not _alive(pid)
    assert all(not _alive(p) for p in launch.seen_pids)
    assert {a["state"] for a in launch.status().values()} == {"NOT LAUNCHED"}


def test_launch_refuses_a_missing_variable_and_a_bad_yaml_naming_file_and_key(launch):
    launch.define("needy")
    env = {k: v for k, v in launch.env.items() if k != "LAUNCH_TEST_SECRET"}
    missing = launch.run("needy", env=env)
    assert missing.returncode == 2
    assert "LAUNCH_TEST_SECRET" in missing.stderr and "needy" in missing.stderr
    assert launch.supervisord_pid() is None  # nothing started
    (launch.agents / "broken.yaml").write_text("command: python\nchanels: ['#x']\n")
    bad = launch.run("needy")
    assert bad.returncode == 2
    assert "broken.yaml" in bad.stderr and "chanels" in bad.stderr
    dry = launch.run("all", "--dry-run")
    assert dry.returncode == 2  # the broken file blocks everything, dry or not
    (launch.agents / "broken.yaml").unlink()
    dry = launch.run("all", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert [a["name"] for a in json.loads(dry.stdout)["launch"]] == ["needy"]
    assert not launch.state.exists()
