"""The agent registry that lasts and the operator actions (issue 13 points 1 and 4),
against real supervised hubs: an agent seen before a full restart is listed offline
after it; kick closes a live agent's socket with 4005; forget and purge-stale remove
registry entries; a workspace token may do none of these."""

from __future__ import annotations

import asyncio

from support.agent import RawAgent
from support.http_util import Api, wait_http_ready
from support.util import eventually


def named(body, name: str) -> dict | None:
    return next((a for a in body if a["name"] == name), None)


async def test_the_registry_outlives_a_full_restart(hub_factory, tmp_path):
    db_url = f"sqlite:///{tmp_path}/orochi.db"
    first = hub_factory(db_url=db_url)
    agent = await RawAgent.connect(
        first.agent_url(), "long-lived", ["#ops"], machine="m1", role="healer", model="opus"
    )
    await agent.request({"type": "heartbeat", "payload": {"orochi_current_task": "watching"}})
    api = Api(first.http_url, first.default_token)  # the healer's diagnosis, before the restart
    try:
        status, body = await api.post(
            "/api/agents/health/",
            {
                "agent": "long-lived",
                "status": "remediating",
                "reason": "restarting",
                "source": "healer",
            },
        )
        assert (status, body["applied"]) == (200, 1), body
    finally:
        await api.close()
    await agent.close()
    assert first.stop() == 0  # the persister writes the registry's last updates on its way out
    second = hub_factory(db_url=db_url)
    wait_http_ready(second)
    api = Api(second.http_url, second.admin_token)
    try:
        status, body = await api.get("/api/agents/registry")
        assert status == 200, body
        entry = named(body, "long-lived")
        assert entry is not None, body
        assert entry["online"] is False and entry["machine"] == "m1" and entry["role"] == "healer"
        assert entry["current_task"] == "watching" and entry["first_seen"]
        diagnosis = entry["last_diagnosis"]
        assert (diagnosis["status"], diagnosis["source"]) == ("remediating", "healer"), diagnosis
        status, health = await api.get("/api/agents/health")
        mine = named(health["agents"], "long-lived")
        assert mine is not None and mine["online"] is False, health
        assert (mine["health"], mine["reason"], mine["source"]) == (
            "remediating",
            "restarting",
            "healer",
        )
        assert health["counts"]["remediating"] >= 1
        status, online = await api.get("/api/agents")
        assert named(online, "long-lived") is None  # offline: not in the live list
    finally:
        await api.close()


async def test_operators_kick_forget_and_purge_and_workspace_tokens_may_not(hub):
    wait_http_ready(hub)
    admin = Api(hub.http_url, hub.admin_token)
    member = Api(hub.http_url, hub.default_token)
    live = await RawAgent.connect(hub.agent_url(), "kick-me", ["#ops"])
    gone = await RawAgent.connect(hub.agent_url(), "old-one", ["#ops"])
    await gone.close()
    try:
        for method, path in (
            ("POST", "/api/agents/kick-me/kick"),
            ("DELETE", "/api/agents/old-one"),
            ("POST", "/api/agents/purge-stale"),
        ):
            status, body = await member.request(method, path)
            assert status == 403, (path, body)
        assert not live.closed.done()

        async def registered(name: str) -> bool:
            _s, body = await admin.get("/api/agents/registry")
            return named(body, name) is not None

        async def lasting(name: str) -> bool:  # written by the persister (first_seen)
            _s, body = await admin.get("/api/agents/registry")
            entry = named(body, name)
            return entry is not None and bool(entry.get("first_seen"))

        await eventually(lambda: lasting("old-one"), 10, "old-one in the lasting registry")
        status, body = await admin.post("/api/agents/kick-me/kick/")
        assert status == 200 and body["was_online"] is True, body
        code, reason = await asyncio.wait_for(live.closed, 10)
        assert (code, reason) == (4005, "Kicked by an operator")

        async def offline() -> bool:
            _s, body = await admin.get("/api/agents")
            return named(body, "kick-me") is None

        await eventually(offline, 10, "kick-me gone from presence")
        status, body = await admin.delete("/api/agents/old-one")
        assert status == 200 and body["count"] == 1, body
        assert not await registered("old-one")
        assert await registered("kick-me")
        status, body = await admin.post("/api/agents/purge-stale", params={"older_than_s": "0"})
        assert status == 200 and "kick-me" in body["purged"], body
        assert not await registered("kick-me")
        status, body = await admin.post("/api/agents/purge-stale", params={"older_than_s": "x"})
        assert status == 400 and body["field"] == "older_than_s", body
    finally:
        await live.close()
        await admin.close()
        await member.close()
