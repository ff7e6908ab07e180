"""Fairness and connection limits against a real hub with small limits: token buckets
per connection and per workspace answered with RATE_LIMITED (and a flood slowed by
back-pressure), connections per token (4029) and per address (503 at the handshake)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import websockets

from scitex_orochi.hub.testing import Hub

from support.agent import RawAgent
from support.http_util import Api, wait_http_ready


@pytest.fixture(scope="module")
def tight_hub():
    hub = Hub(
        extra_env={
            "SCITEX_OROCHI_MSG_RATE_PER_S": "5",
            "SCITEX_OROCHI_MSG_BURST": "10",
            "SCITEX_OROCHI_WORKSPACE_MSG_RATE_PER_S": "5",
            "SCITEX_OROCHI_WORKSPACE_MSG_BURST": "25",
            "SCITEX_OROCHI_FRAME_RATE_PER_S": "20",
            "SCITEX_OROCHI_FRAME_BURST": "60",
            "SCITEX_OROCHI_MAX_CONNECTIONS_PER_TOKEN": "3",
            "SCITEX_OROCHI_MAX_CONNECTIONS_PER_ADDR": "8",
        }
    ).start()
    wait_http_ready(hub)
    yield hub
    hub.stop()
    hub.cleanup()


async def new_token(hub: Hub) -> str:
    api = Api(hub.http_url, hub.admin_token)
    try:
        status, body = await api.post("/api/workspaces", {"name": f"fair-{uuid.uuid4().hex[:6]}"})
        assert status == 201
        return body["token"]
    finally:
        await api.close()


async def test_messages_over_the_connection_rate_are_refused_with_retry_after(tight_hub):
    agent = await RawAgent.connect(tight_hub.agent_url(await new_token(tight_hub)), "chatty")
    ids = [
        await agent.send({"type": "message", "payload": {"channel": "#r", "content": str(i)}})
        for i in range(16)
    ]
    acks = [await agent.ack_of(i, timeout=10) for i in ids]
    statuses = [a["payload"]["status"] for a in acks]
    assert statuses[:10] == ["ok"] * 10  # the burst
    limited = [i for i, a in zip(ids, acks, strict=True) if a["payload"]["status"] == "error"]
    assert limited, statuses
    err = next(
        f for f in agent.frames if f["type"] == "error" and f["payload"].get("ref") == limited[0]
    )
    assert err["payload"]["code"] == "RATE_LIMITED"
    assert 0 < err["payload"]["retry_after_s"] <= 1
    assert "per connection" in err["payload"]["detail"]
    await asyncio.sleep(err["payload"]["retry_after_s"])  # the client does what it is told
    assert (await agent.post("#r", "after waiting"))["payload"]["status"] == "ok"
    await agent.close()


async def test_a_flood_is_slowed_by_back_pressure_not_answered_frame_by_frame(tight_hub):
    """Past its budget a connection is not read for a moment after each refusal, so a
    flood waits in TCP: it gets the rate, and at most ~20 refusals a second, instead of
    an instant refusal for every frame it sends."""
    agent = await RawAgent.connect(tight_hub.agent_url(await new_token(tight_hub)), "flooder")
    started = time.monotonic()
    ids = [await agent.send({"type": "presence"}) for _ in range(200)]
    await agent.ack_of(ids[-1], timeout=30)
    elapsed = time.monotonic() - started
    refused = sum(
        1
        for f in agent.frames
        if f["type"] == "error" and f["payload"].get("code") == "RATE_LIMITED"
    )
    accepted = len(ids) - refused
    # 60 frames of burst, then 20/s: about 140 frames at 1 accepted + 1 refused per 50 ms.
    assert elapsed >= 2.5, elapsed
    assert refused / elapsed <= 25, (refused, elapsed)
    assert accepted <= 60 + 20 * elapsed + 2, (accepted, elapsed)
    await agent.close()


async def test_the_workspace_budget_is_shared_and_other_workspaces_are_unaffected(tight_hub):
    token = await new_token(tight_hub)
    agents = [await RawAgent.connect(tight_hub.agent_url(token), f"team-{i}") for i in range(3)]
    results = []
    for agent in agents:
        for i in range(10):
            results.append((await agent.post("#team", f"{agent.name} {i}"))["payload"]["status"])
    assert results.count("ok") <= 27  # the workspace's burst of 25, plus a little refill
    assert "error" in results
    codes = {
        f["payload"]["detail"].split(";")[0]
        for a in agents
        for f in a.frames
        if f["type"] == "error" and f["payload"]["code"] == "RATE_LIMITED"
    }
    assert any("per workspace" in c for c in codes)
    other = await RawAgent.connect(tight_hub.agent_url(await new_token(tight_hub)), "neighbour")
    assert (await other.post("#calm", "unaffected"))["payload"]["status"] == "ok"
    for agent in [*agents, other]:
        await agent.close()


async def test_connections_per_token_are_limited_with_4029(tight_hub):
    token = await new_token(tight_hub)
    held = [await RawAgent.connect(tight_hub.agent_url(token), f"held-{i}") for i in range(3)]
    extra = await RawAgent.connect(tight_hub.agent_url(token), register=False)
    code, _reason = await asyncio.wait_for(extra.closed, 5)
    assert code == 4029
    assert extra.frames[0]["payload"]["code"] == "TOO_MANY_CONNECTIONS"
    await held[0].close()
    again = await RawAgent.connect(tight_hub.agent_url(token), "held-again")
    assert not again.closed.done()
    for agent in [*held[1:], again]:
        await agent.close()


async def test_connections_per_address_are_refused_at_the_handshake(tight_hub):
    tokens = [await new_token(tight_hub) for _ in range(4)]
    held: list[RawAgent] = []

    async def fill() -> bool:
        """All 8 slots (earlier tests' sockets may still be closing on the server)."""
        try:
            while len(held) < 8:
                i = len(held)
                held.append(await RawAgent.connect(tight_hub.agent_url(tokens[i % 4]), f"addr-{i}"))
        except websockets.InvalidStatus:
            return False
        return True

    from support.util import eventually

    await eventually(fill, 10, "8 connections from this address")
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(tight_hub.agent_url(tokens[0]))
    assert refused.value.response.status_code == 503
    assert refused.value.response.headers.get("Retry-After")
    await held[0].close()
    await asyncio.wait_for(held[0].closed, 5)

    async def accepted() -> bool:
        try:
            ws = await websockets.connect(tight_hub.agent_url(tokens[0]))
        except websockets.InvalidStatus:
            return False
        await ws.close()
        return True

    await eventually(accepted, 5, "a slot freed by a closed connection")
    for agent in held[1:]:
        await agent.close()
