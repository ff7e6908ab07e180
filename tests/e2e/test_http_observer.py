"""The observer WebSocket `/ws` (PROTOCOL.md §5) against a real hub (its slow-consumer rule
is in tests/unit/test_gateway_http.py)."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
import websockets

from support.agent import RawAgent
from support.http_util import Api, wait_http_ready
from support.util import eventually


@pytest.fixture(scope="module")
def http_hub(shared_hub):
    wait_http_ready(shared_hub)
    return shared_hub


def observer_url(hub, token, **query) -> str:
    extra = "".join(f"&{k}={v}" for k, v in query.items())
    return f"ws://{hub.host}:{hub.dashboard_port}/ws?token={token}{extra}"


async def watching_observer(hub, token) -> RawAgent:
    """An observer connection once the gateway has added it (`observers_connected` went
    up): the handshake alone can complete before, and a change made then is not its."""
    admin = Api(hub.http_url, hub.admin_token)
    try:
        before = (await admin.get("/api/stats"))[1]["observers_connected"]
        obs = await RawAgent.connect(observer_url(hub, token), register=False)

        async def added() -> bool:
            return (await admin.get("/api/stats"))[1]["observers_connected"] > before

        await eventually(added, 10, "the observer added by the gateway")
        return obs
    finally:
        await admin.close()


async def test_observer_sees_messages_presence_and_status(http_hub):
    obs = await watching_observer(http_hub, http_hub.default_token)
    agent = await RawAgent.connect(http_hub.agent_url(), "watched", ["#obs"], project="p1")
    other = None
    try:
        joined = await obs.wait(
            lambda f: f["type"] == "presence_change" and f["payload"]["agent"] == "watched"
        )
        assert joined["sender"] == "orochi-server"
        assert joined["payload"]["event"] == "connected"
        assert joined["payload"]["channels"] == ["#obs"]
        assert joined["payload"]["project"] == "p1" and joined["payload"]["agent_id"]
        ack = await agent.post("#obs", "visible to observers")
        msg = await obs.wait(lambda f: f["type"] == "message" and f["sender"] == "watched")
        assert msg["payload"]["content"] == "visible to observers"
        assert msg["payload"]["seq"] == ack["payload"]["seq"]
        await agent.request(
            {"type": "status_update", "payload": {"status": "busy", "current_task": "indexing"}}
        )
        status = await obs.wait(lambda f: f["type"] == "status_update")
        assert status["payload"]["agent"] == "watched"
        assert status["payload"]["status"] == "busy"
        assert status["payload"]["current_task"] == "indexing"
        # Observers are invisible in presence.
        other = await RawAgent.connect(http_hub.agent_url(), "asker", ["#obs"])
        replies = await other.request({"type": "presence"})
        assert set(replies[0]["payload"]["agents"]) == {"watched", "asker"}
        await agent.close()
        left = await obs.wait(
            lambda f: f["type"] == "presence_change" and f["payload"]["event"] == "disconnected"
        )
        assert left["payload"]["agent"] == "watched"
        # Nothing is delivered twice to one observer.
        assert len([f for f in obs.frames if f.get("id") == msg["id"]]) == 1
    finally:
        for conn in (obs, agent, other):
            if conn is not None:
                await conn.close()


async def test_observer_posts_reach_agents_and_are_acked_durably(http_hub):
    obs = await RawAgent.connect(observer_url(http_hub, http_hub.admin_token), register=False)
    agent = await RawAgent.connect(http_hub.agent_url(), "listener", ["#talk"])
    try:
        msg_id = await obs.send(
            {
                "type": "message",
                "sender": "Yusuke",
                "payload": {"channel": "#talk", "content": "hi @listener"},
            }
        )
        ack = await obs.ack_of(msg_id)
        assert ack["payload"]["status"] == "ok" and ack["payload"]["seq"] >= 1
        got = await agent.wait(lambda f: f.get("id") == msg_id)
        assert got["sender"] == "Yusuke" and got["payload"]["mentions"] == ["listener"]
        rows = http_hub.store().history("default", "#talk")
        assert rows[0]["msg_id"] == msg_id and rows[0]["sender_type"] == "human"
        # Bad frames: an error and an error ack, nothing stored.
        bad_id = await obs.send(
            {"type": "message", "sender": "Yusuke", "payload": {"content": "no channel"}}
        )
        err = await obs.wait(lambda f: f["type"] == "error" and f["payload"].get("ref") == bad_id)
        assert "payload.channel" in err["payload"]["detail"]
        assert (await obs.ack_of(bad_id))["payload"]["status"] == "error"
        await obs.send_raw("{broken")
        await obs.wait(lambda f: f["type"] == "error" and f["payload"]["code"] == "PARSE_ERROR")
        reg_id = await obs.send({"type": "register", "sender": "sneaky", "payload": {}})
        await obs.wait(lambda f: f["type"] == "error" and f["payload"].get("ref") == reg_id)
        assert len(http_hub.store().history("default", "#talk")) == 1
    finally:
        await obs.close()
        await agent.close()


async def test_observers_see_only_their_workspace(http_hub):
    admin = Api(http_hub.http_url, http_hub.admin_token)
    _, created = await admin.post("/api/workspaces", {"name": f"iso-{uuid.uuid4().hex[:6]}"})
    ws_id, ws_token = created["workspace"]["id"], created["token"]
    default_obs = await RawAgent.connect(
        observer_url(http_hub, http_hub.default_token), register=False
    )
    other_obs = await RawAgent.connect(observer_url(http_hub, ws_token), register=False)
    admin_all = await RawAgent.connect(observer_url(http_hub, http_hub.admin_token), register=False)
    admin_one = await RawAgent.connect(
        observer_url(http_hub, http_hub.admin_token, workspace=ws_id), register=False
    )
    try:
        status, secret = await admin.post(
            "/api/messages",
            {"sender": "s", "payload": {"channel": "#iso", "content": "other workspace"}},
            params={"workspace": ws_id},
        )
        assert status == 201 and secret["workspace"] == ws_id
        status, public = await admin.post(
            "/api/messages",
            {"sender": "s", "payload": {"channel": "#iso", "content": "default workspace"}},
        )
        assert status == 201
        await other_obs.wait(lambda f: f.get("id") == secret["id"])
        await admin_one.wait(lambda f: f.get("id") == secret["id"])
        await default_obs.wait(lambda f: f.get("id") == public["id"])
        for fid in (secret["id"], public["id"]):
            await admin_all.wait(lambda f, fid=fid: f.get("id") == fid)
        # Deliveries are in seq order per publisher, so once the later one arrived the
        # earlier one would have: these never will.
        assert not [f for f in default_obs.frames if f.get("id") == secret["id"]]
        assert not [f for f in other_obs.frames if f.get("id") == public["id"]]
        assert not [f for f in admin_one.frames if f.get("id") == public["id"]]
    finally:
        for conn in (default_obs, other_obs, admin_all, admin_one):
            await conn.close()
        await admin.close()


async def test_a_workspace_token_observer_reads_but_may_not_post(http_hub):
    channel = f"#ro-{uuid.uuid4().hex[:6]}"
    obs = await RawAgent.connect(observer_url(http_hub, http_hub.default_token), register=False)
    admin_obs = await RawAgent.connect(observer_url(http_hub, http_hub.admin_token), register=False)
    agent = await RawAgent.connect(http_hub.agent_url(), "ro-listener", [channel])
    try:
        msg_id = await obs.send(
            {
                "type": "message",
                "sender": "Mallory",
                "payload": {"channel": channel, "content": "let me in"},
            }
        )
        err = await obs.wait(lambda f: f["type"] == "error" and f["payload"].get("ref") == msg_id)
        assert err["sender"] == "orochi-server"
        assert err["payload"] == {
            "code": "FORBIDDEN",
            "detail": "posting needs the admin token",
            "ref": msg_id,
        }
        ack = await obs.ack_of(msg_id)
        assert ack["payload"]["status"] == "error" and ack["payload"]["code"] == "FORBIDDEN"
        # The admin observer's post goes through and is delivered to the read-only
        # observer; deliveries keep order, so the refused one would have come first.
        ok_id = await admin_obs.send(
            {
                "type": "message",
                "sender": "Yusuke",
                "payload": {"channel": channel, "content": "admin here"},
            }
        )
        assert (await admin_obs.ack_of(ok_id))["payload"]["status"] == "ok"
        seen = await obs.wait(lambda f: f.get("id") == ok_id)
        assert seen["payload"]["content"] == "admin here"
        await agent.wait(lambda f: f.get("id") == ok_id)
        assert not [f for f in agent.frames if f.get("id") == msg_id]
        rows = http_hub.store().history("default", channel)
        assert [r["msg_id"] for r in rows] == [ok_id]
    finally:
        for conn in (obs, admin_obs, agent):
            await conn.close()


async def test_observer_with_a_wrong_token_is_refused(http_hub):
    ws = await websockets.connect(observer_url(http_hub, "wrong"))
    try:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert frame["type"] == "error" and frame["payload"]["code"] == "AUTH_FAILED"
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 4001
    finally:
        await ws.close()
