"""`scitex-orochi health`, `list-agents`, `kick`, `forget` and `purge-stale` as subprocesses
against a real supervised hub with real agents (A and dialect B): classes with reason and
source, the current task and subagents, the operator actions with the admin token, their
dry runs, and a workspace token's clear refusal."""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest

from support.agent import RawAgent
from support.agent_b import AgentB
from support.cli import CLI, WAIT_S
from support.http_util import Api, wait_http_ready
from support.util import TIME_SCALE, eventually

pytestmark = [pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture(scope="module")
def http_hub(shared_hub):
    wait_http_ready(shared_hub)
    return shared_hub


def admin_env(hub) -> dict[str, str]:
    return {**hub.env, "NO_COLOR": "1"}  # carries SCITEX_OROCHI_ADMIN_TOKEN


async def cli(hub, *args: str) -> subprocess.CompletedProcess:
    """The command in a thread, so the agents here keep reading their sockets."""
    return await asyncio.to_thread(
        subprocess.run,
        [*CLI, *args],
        env=admin_env(hub),
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )


def named(rows, name: str) -> dict | None:
    return next((a for a in rows if a["name"] == name), None)


async def test_health_and_list_agents_show_classes_tasks_and_subagents(http_hub):
    busy = await RawAgent.connect(http_hub.agent_url(), "cli-busy", ["#ops"])
    idle = await RawAgent.connect(http_hub.agent_url(), "cli-idle", ["#ops"])
    fleet = await AgentB.connect(http_hub.ws_url, http_hub.default_token, "cli-fleet")
    try:
        await idle.request({"type": "status_update", "payload": {"status": "idle"}})
        await busy.request(
            {
                "type": "heartbeat",
                "payload": {"orochi_current_task": "review #12", "orochi_subagent_count": 3},
            }
        )
        assert (await fleet.register())["type"] == "registered"
        await fleet.send("task_update", {"task": "triage CI"})
        await fleet.send(
            "subagents_update",
            {"subagents": [{"name": "scout", "status": "running"}, {"name": "fixer"}]},
        )

        async def fleet_ready() -> dict | None:
            out = await cli(http_hub, "list-agents", "--json")
            assert out.returncode == 0, out.stderr
            row = named(json.loads(out.stdout), "cli-fleet")
            return row if row and len(row["subagents"]) == 2 else None

        row = await eventually(fleet_ready, 10, "cli-fleet's subagents listed")
        assert [s["name"] for s in row["subagents"]] == ["scout", "fixer"]
        assert row["current_task"] == "triage CI" and row["subagent_count"] == 2

        listed = await cli(http_hub, "list-agents")
        assert listed.returncode == 0, listed.stderr
        header, *lines = listed.stdout.splitlines()
        assert "HEALTH" in header and "SUBAGENTS" in header and "TASK" in header
        by_name = {line.split()[0]: line for line in lines}
        assert "2 (scout,fixer)" in by_name["cli-fleet"] and "triage CI" in by_name["cli-fleet"]
        assert " 3 " in by_name["cli-busy"] and "review #12" in by_name["cli-busy"]
        assert "idle" in by_name["cli-idle"]

        health = await cli(http_hub, "health", "--json")
        assert health.returncode == 0, health.stderr
        report = json.loads(health.stdout)
        classes = {e["name"]: e["health"] for e in report["agents"]}
        assert classes["cli-busy"] == "healthy" and classes["cli-idle"] == "idle", classes
        text = await cli(http_hub, "health")
        assert text.returncode == 0, text.stderr
        *rows, counts = text.stdout.strip().splitlines()
        assert rows[0].split()[:4] == ["NAME", "HEALTH", "REASON", "SOURCE"]
        idle_row = next(r for r in rows if r.startswith("cli-idle"))
        assert idle_row.split()[1:5] == ["idle", "status", "idle", "hub"], idle_row
        for cls in ("healthy", "idle", "stale", "stuck_prompt", "remediating", "ghost", "dead"):
            assert f"{cls} {report['counts'].get(cls, 0)}" in counts, counts
        assert "idle 1" in counts
    finally:
        await busy.close()
        await idle.close()
        await fleet.close()


async def test_kick_forget_and_purge_stale_with_the_admin_token(http_hub):
    admin = Api(http_hub.http_url, http_hub.admin_token)
    live = await RawAgent.connect(http_hub.agent_url(), "cli-kick", ["#ops"])
    for name in ("cli-old-1", "cli-old-2"):
        await (await RawAgent.connect(http_hub.agent_url(), name, ["#ops"])).close()
    try:
        # A workspace token: refused, with what it means, exit 4; nothing happens.
        token = ("--token", http_hub.default_token)
        for args in (
            ("kick", "cli-kick"),
            ("forget", "cli-old-1"),
            ("purge-stale", "--older-than", "0"),
        ):
            refused = await cli(http_hub, *token, *args)
            assert refused.returncode == 4, (args, refused.stdout, refused.stderr)
            assert "needs the admin token" in refused.stderr and "403" in refused.stderr
        assert not live.closed.done()
        dry = await cli(http_hub, *token, "kick", "cli-kick", "--dry-run", "--json")
        assert json.loads(dry.stdout)["admin_token"] is False

        dry = await cli(http_hub, "kick", "cli-kick", "--dry-run", "--json")
        assert dry.returncode == 0, dry.stderr
        plan = json.loads(dry.stdout)
        assert plan["dry_run"] is True and plan["online"] is True and plan["admin_token"] is True
        assert plan["request"] == "POST /api/agents/cli-kick/kick"
        assert not live.closed.done()
        kicked = await cli(http_hub, "kick", "cli-kick")
        assert kicked.returncode == 0, kicked.stderr
        assert "kicked cli-kick (its sockets closed with code 4005)" in kicked.stdout
        code, _reason = await asyncio.wait_for(live.closed, 10 * TIME_SCALE)
        assert code == 4005

        async def lasting(name: str) -> bool:
            _s, body = await admin.get("/api/agents/registry")
            entry = named(body, name)
            return entry is not None and bool(entry.get("first_seen"))

        for name in ("cli-old-1", "cli-old-2", "cli-kick"):
            await eventually(lambda n=name: lasting(n), 10, f"{name} in the registry")

        dry = await cli(http_hub, "forget", "cli-old-1", "--dry-run")
        assert dry.returncode == 0 and "[dry-run] would forget cli-old-1" in dry.stdout
        assert "listed: True" in dry.stdout
        forgot = await cli(http_hub, "forget", "cli-old-1", "--json")
        assert forgot.returncode == 0, forgot.stderr
        assert json.loads(forgot.stdout)["count"] == 1
        _s, rows = await admin.get("/api/agents/registry")
        assert named(rows, "cli-old-1") is None

        dry = await cli(http_hub, "purge-stale", "--older-than", "0", "--dry-run", "--json")
        assert dry.returncode == 0, dry.stderr
        would = json.loads(dry.stdout)["agents"]
        assert {"cli-old-2", "cli-kick"} <= set(would) and "cli-old-1" not in would
        _s, rows = await admin.get("/api/agents/registry")
        assert named(rows, "cli-old-2") is not None  # the dry run forgot nothing
        default = json.loads((await cli(http_hub, "purge-stale", "--dry-run", "--json")).stdout)
        assert default["older_than_s"] == 300 and default["agents"] == []  # all seen just now
        purged = await cli(http_hub, "purge-stale", "--older-than", "0", "--json")
        assert purged.returncode == 0, purged.stderr
        assert set(json.loads(purged.stdout)["purged"]) == set(would)
        _s, rows = await admin.get("/api/agents/registry")
        assert not {"cli-old-2", "cli-kick"} & {r["name"] for r in rows}
        again = await cli(http_hub, "purge-stale", "--older-than", "0")
        assert again.returncode == 0 and "purged 0: none stale" in again.stdout
    finally:
        await live.close()
        await admin.close()
