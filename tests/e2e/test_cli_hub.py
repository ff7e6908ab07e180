"""The CLI against the real supervised hub: in-process through click.testing and as a
subprocess, the way people and scripts run it."""

from __future__ import annotations

import asyncio
import json
import queue
import subprocess

from click.testing import CliRunner

from scitex_orochi.cli import main

from support.cli import CLI, WAIT_S
from support.client import agent
from support.procs import read_lines


def agent_env(hub, **extra) -> dict[str, str]:
    env = {**hub.env, "SCITEX_OROCHI_TOKEN": hub.default_token, "NO_COLOR": "1", **extra}
    return env


def cli(hub, *args, env=None, timeout=WAIT_S) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args], env=env or agent_env(hub), capture_output=True, text=True, timeout=timeout
    )


def test_send_and_history_in_process(hub):
    env = {
        "SCITEX_OROCHI_PORT": str(hub.port),
        "SCITEX_OROCHI_TOKEN": hub.default_token,
        "SCITEX_OROCHI_DASHBOARD_PORT": str(hub.dashboard_port),
    }
    runner = CliRunner()
    result = runner.invoke(
        main, ["send", "#cli", "in process", "--name", "cli-a", "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["seq"] == 1


def test_send_as_a_subprocess_prints_the_seq(hub):
    first = cli(hub, "send", "#cli", "one", "--name", "cli-a")
    assert first.returncode == 0, first.stderr
    assert "sent to #cli (seq 1" in first.stdout
    second = cli(hub, "send", "cli", "two", "--name", "cli-a", "--json")
    assert json.loads(second.stdout)["seq"] == 2


def test_login_streams_messages_as_they_arrive(hub):
    proc = subprocess.Popen(
        [
            *CLI,
            "login",
            "--name",
            "watcher",
            "--channels",
            "#live",
            "--count",
            "2",
            "--json",
            "--heartbeat",
            "0",
        ],
        env=agent_env(hub),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    read_lines(proc.stdout, lines.put)
    errors: queue.Queue[str] = queue.Queue()
    read_lines(proc.stderr, errors.put)
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


def test_pinned_tokens_policies_and_gitea_grants_from_the_cli(hub):
    env = {**hub.env, "NO_COLOR": "1"}
    ws = json.loads(cli(hub, "create-workspace", "cli-pins", "--json", env=env).stdout)
    ws_id = ws.get("workspace", ws)["id"]
    dry = cli(hub, "create-token", ws_id, "--agent-name", "lead", "--dry-run", "--json", env=env)
    assert json.loads(dry.stdout)["request"].startswith("POST ")
    pinned = json.loads(
        cli(hub, "create-token", ws_id, "--agent-name", "lead", "--json", env=env).stdout
    )
    assert pinned["agent_name"] == "lead" and pinned["token"].startswith("wks_")
    bad = cli(hub, "create-token", ws_id, "--agent-name", "orochi-server", env=env)
    assert bad.returncode != 0 and "reserved" in bad.stderr
    policy = cli(hub, "set-workspace-policy", ws_id, "--require-pinned", "--json", env=env)
    assert json.loads(policy.stdout)["require_pinned"] is True
    granted = cli(hub, "grant-gitea", ws_id, "--owners", "lab", "--repos", "x/y", "--json", env=env)
    assert json.loads(granted.stdout)["gitea_access"] == {"owners": ["lab"], "repos": ["x/y"]}
    revoked = cli(hub, "grant-gitea", ws_id, "--revoke", "--json", env=env)
    assert json.loads(revoked.stdout)["gitea_access"] is None
    assert cli(hub, "grant-gitea", ws_id, env=env).returncode == 2  # nothing to grant


def test_doctor_passes_on_a_healthy_hub(hub):
    result = cli(hub, "doctor", "--json", timeout=WAIT_S * 2)
    report = json.loads(result.stdout)
    failed = [c for c in report["checks"] if c["ok"] is False]
    assert result.returncode == 0 and not failed, failed
    names = {c["name"] for c in report["checks"]}
    assert {
        "agent port",
        "dashboard port",
        "database",
        "bus",
        "message round trip",
        "process broker",
        "process persister",
    } <= names


def test_doctor_names_the_dead_part(hub):
    hub.sup.ctl("stop", "persister")
    result = cli(hub, "doctor", timeout=WAIT_S * 2)
    assert result.returncode == 1
    assert "✗ process persister" in result.stdout and "→" in result.stdout


# ---- what a newcomer tripped on -----------------------------------------------------------
def registry(hub) -> list[dict]:
    import urllib.request

    req = urllib.request.Request(
        f"{hub.http_url}/api/agents/registry",
        headers={"Authorization": f"Bearer {hub.admin_token}"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def get_json(hub, path: str):
    import urllib.request

    req = urllib.request.Request(
        f"{hub.http_url}{path}", headers={"Authorization": f"Bearer {hub.admin_token}"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def wait_witness_gone(hub, name: str = "witness") -> list[dict]:
    """A normal agent connects and leaves; once it is listed as gone, every disconnect
    before it (same gateway, same bus) has reached the HTTP gateway too."""
    from support.agent import RawAgent
    from support.util import wait_for

    async def visit() -> None:
        witness = await RawAgent.connect(hub.agent_url(), name, ["#general"])
        await witness.close()

    asyncio.run(visit())
    return wait_for(
        lambda: (
            (rows := registry(hub))
            and any(r["name"] == name and r["online"] is False for r in rows)
            and rows
        ),
        WAIT_S,
        "the witness listed as disconnected",
    )


def test_one_shot_commands_leave_no_dead_agent(hub):
    assert cli(hub, "send", "#cli", "once", "--name", "one-shot").returncode == 0
    assert cli(hub, "join", "#cli", "--name", "joiner").returncode == 0
    rows = wait_witness_gone(hub)
    names = {r["name"] for r in rows}
    assert "one-shot" not in names and "joiner" not in names, rows
    health = get_json(hub, "/api/agents/health")
    assert {a["name"] for a in health["agents"]} == {"witness"}


def test_list_members_of_a_channel_with_history_and_nobody_online(hub):
    assert cli(hub, "send", "#quiet", "anyone?", "--name", "poster").returncode == 0
    result = cli(hub, "list-members", "--channel", "quiet")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "#quiet: no members online"
    assert json.loads(cli(hub, "list-members", "--channel", "#quiet", "--json").stdout) == {
        "channel": "#quiet",
        "members": [],
    }
    assert cli(hub, "list-members", "--channel", "#never").returncode == 5


def test_doctor_leaves_no_channel_behind(hub):
    from support.agent import RawAgent

    async def watch() -> RawAgent:
        return await RawAgent.connect(
            f"ws://{hub.host}:{hub.dashboard_port}/ws?token={hub.admin_token}", register=False
        )

    loop = asyncio.new_event_loop()
    try:
        observer = loop.run_until_complete(watch())
        result = cli(hub, "doctor", "--json", timeout=WAIT_S * 2)
        report = json.loads(result.stdout)
        trip = next(c for c in report["checks"] if c["name"] == "message round trip")
        assert result.returncode == 0 and trip["ok"], report
        # the whole path: stored with a seq, readable where one looks for it on purpose
        stored = get_json(hub, "/api/history/%23.doctor")
        assert len(stored) == 1 and stored[0]["seq"] == 1
        assert f"seq {stored[0]['seq']}" in trip["detail"]
        # and listed nowhere
        summary = [c["name"] for c in get_json(hub, "/api/channels/summary")["channels"]]
        assert not any("doctor" in name for name in summary), summary
        assert not any("doctor" in name for name in get_json(hub, "/api/channels"))
        assert not any("doctor" in r["channel"] for r in get_json(hub, "/api/messages"))
        listed = cli(hub, "list-channels", "--json")
        assert "doctor" not in listed.stdout
        rows = wait_witness_gone(hub)
        assert not any(r["name"].startswith("doctor-") for r in rows), rows
        # the dashboard's observers never saw it; a later message is the barrier
        assert cli(hub, "send", "#after", "barrier", "--name", "barrier").returncode == 0
        loop.run_until_complete(
            observer.wait(
                lambda f: f["type"] == "message" and f["payload"].get("channel") == "#after"
            )
        )
        channels = {f["payload"].get("channel") for f in observer.frames if f["type"] == "message"}
        assert channels == {"#after"}, channels
        loop.run_until_complete(observer.close())
    finally:
        loop.close()


def test_show_status_aligns_its_columns(hub):
    result = cli(hub, "show-status")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ITEM", "VALUE"]
    starts = {
        len(line) - len(line[len(label) :].lstrip())
        for line, label in zip(
            lines[1:],
            ["hub", "agents online", "channels active", "observers connected"],
            strict=False,
        )
    }
    assert len(starts) == 1, lines


def test_send_reply_to_as_a_subprocess(hub):
    root = json.loads(cli(hub, "send", "#cli", "root", "--name", "cli-a", "--json").stdout)
    reply = cli(hub, "send", "#cli", "answer", "--name", "cli-b", "--reply-to", root["id"])
    assert reply.returncode == 0, reply.stderr
    assert f"a reply to {root['id']}" in reply.stdout
    history = json.loads(cli(hub, "show-history", "#cli", "--json").stdout)
    assert history[-1]["metadata"]["reply_to"] == root["id"]


def test_react_edit_delete_and_send_dm_as_subprocesses(hub):
    root = json.loads(cli(hub, "send", "#conv", "typo", "--name", "cli-owner", "--json").stdout)
    react = cli(hub, "react", root["id"], "👍", "--name", "cli-fan", "--json")
    assert react.returncode == 0, react.stderr
    reacted = json.loads(react.stdout)
    assert (reacted["outcome"], reacted["seq"], reacted["emoji"]) == ("added", 2, "👍")
    num = str(reacted["num"])
    again = cli(hub, "react", num, "👍", "--name", "cli-fan")
    assert again.returncode == 0 and "(existed)" in again.stdout
    forbidden = cli(hub, "edit-message", num, "not mine", "--name", "cli-fan")
    assert forbidden.returncode == 1 and "FORBIDDEN" in forbidden.stderr
    edited = cli(hub, "edit-message", num, "fixed", "--name", "cli-owner")
    assert edited.returncode == 0 and edited.stdout.startswith(f"edited message {num} (edited")
    deleted = cli(hub, "delete-message", root["id"], "--name", "cli-owner", "--json")
    assert json.loads(deleted.stdout)["outcome"] == "deleted"
    late = cli(hub, "edit-message", num, "too late", "--name", "cli-owner")
    assert late.returncode == 1 and "MESSAGE_DELETED" in late.stderr
    unknown = cli(hub, "react", "no-such-id", "👍", "--name", "cli-fan")
    assert unknown.returncode == 5 and "UNKNOWN_MESSAGE" in unknown.stderr
    history = json.loads(cli(hub, "show-history", "#conv", "--json").stdout)
    (tomb,) = [r for r in history if r["seq"] == 1]
    assert tomb["deleted"] is True and tomb["content"] == ""

    dm = cli(hub, "send-dm", "cli-bob", "psst", "--name", "cli-amy", "--json")
    assert dm.returncode == 0, dm.stderr
    assert json.loads(dm.stdout)["channel"] == "dm:agent:cli-amy|agent:cli-bob"
    nosy = cli(hub, "send", "dm:agent:cli-amy|agent:cli-bob", "me too", "--name", "cli-eve")
    assert nosy.returncode == 1 and "NOT_A_MEMBER" in nosy.stderr


def test_search_and_show_thread_as_subprocesses(hub):
    root = json.loads(cli(hub, "send", "#ask", "deploy failed on staging", "--json").stdout)
    cli(hub, "send", "#ask", "rolled back", "--name", "cli-ops", "--reply-to", root["id"])
    cli(hub, "send", "#other", "deploy finished", "--name", "cli-ops")
    cli(hub, "send-dm", "cli-ops", "deploy secret", "--name", "cli-dev")
    found = cli(hub, "search", "deploy", "--name", "cli-dev", "--json")
    assert found.returncode == 0, found.stderr
    rows = json.loads(found.stdout)
    assert {r["content"] for r in rows} == {
        "deploy failed on staging",
        "deploy finished",
        "deploy secret",
    }
    num = next(r["num"] for r in rows if r["content"] == "deploy failed on staging")
    only = cli(hub, "search", "deploy", "--channel", "other", "--sender", "cli-ops")
    assert only.returncode == 0 and only.stdout.count("\n") == 1 and "#other" in only.stdout
    nosy = json.loads(cli(hub, "search", "secret", "--name", "cli-eve", "--json").stdout)
    assert nosy == []  # others' DMs are never found
    none = cli(hub, "search", "nothing-like-this")
    assert none.returncode == 0 and "no messages match" in none.stdout

    shown = cli(hub, "show-thread", str(num))
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "deploy failed on staging" in lines[0] and lines[1].endswith("cli-ops: rolled back")
    data = json.loads(cli(hub, "show-thread", str(num), "--json").stdout)
    assert data["root"]["reply_count"] == 1 and data["replies"][0]["thread"]["num"] == num
    unknown = cli(hub, "show-thread", "999999")
    assert unknown.returncode == 5 and "error:" in unknown.stderr
