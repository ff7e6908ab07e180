"""The WebSocket gateway (`Gateway.run()`) as a task of the test's loop, on a broker in a
thread and the SQLite file `prepare` made: the token check, register and a presence reply
over a real socket, a message acked by the persister in a thread, and the HTTP app in the
same process seeing the agent over the bus. (The protocol against the supervised hub:
tests/e2e/test_hub_protocol.py.)"""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from support.agent import RawAgent
from support.util import eventually


async def test_a_missing_or_wrong_token_is_refused_with_4001(gateway):
    for url in (gateway.url + "/", gateway.agent_url("wks_" + "0" * 32)):
        agent = await RawAgent.connect(url, "nobody", register=False)
        try:
            error = await agent.wait(lambda f: f["type"] == "error")
            assert error["payload"]["code"] == "AUTH_FAILED"
            code, _reason = await agent.closed
            assert code == 4001
        finally:
            await agent.close()


async def test_register_then_presence_lists_the_agents_and_their_channels(gateway, bed):
    url = gateway.agent_url(bed.default_token)
    first = await RawAgent.connect(url, "comp-a", ["#general", "#ops"])
    second = await RawAgent.connect(url, "comp-b", ["#ops"])
    try:
        ack = first.frames[-1]
        assert ack["type"] == "ack" and ack["payload"]["status"] == "ok"
        replies = await second.request({"type": "presence"})
        assert [f["type"] for f in replies] == ["presence", "ack"]  # the reply before its ack
        agents = replies[0]["payload"]["agents"]
        assert sorted(agents["comp-a"]) == ["#general", "#ops"] and agents["comp-b"] == ["#ops"]
    finally:
        await first.close()
        await second.close()


async def test_a_message_is_acked_with_its_seq_and_delivered(gateway, bed, persister):
    url = gateway.agent_url(bed.default_token)
    sender = await RawAgent.connect(url, "comp-sender", ["#c"])
    reader = await RawAgent.connect(url, "comp-reader", ["#c"])
    try:
        ack = await sender.post("#c", "hello @comp-reader")
        assert ack["payload"]["status"] == "ok" and ack["payload"]["seq"] == 1
        got = await reader.wait(lambda f: f["type"] == "message")
        assert got["sender"] == "comp-sender" and got["payload"]["seq"] == 1
        assert got["payload"]["mentions"] == ["comp-reader"]
        assert [r["content"] for r in bed.history("#c")] == ["hello @comp-reader"]
    finally:
        await sender.close()
        await reader.close()


async def test_the_http_app_lists_an_agent_of_the_gateway(gateway, bed, http: TestClient):
    auth = {"Authorization": f"Bearer {bed.default_token}"}

    async def listed(path: str = "/api/agents") -> list[dict]:
        resp = await http.get(path, headers=auth)
        assert resp.status == 200
        return [r for r in await resp.json() if r["name"] == "comp-listed"]

    agent = await RawAgent.connect(
        gateway.agent_url(bed.default_token), "comp-listed", ["#ops"], machine="nas"
    )
    try:
        # Acked once its presence passed the broker: listed on the very next request.
        rows = await listed()
        assert rows and rows[0]["online"] is True and rows[0]["machine"] == "nas"
    finally:
        await agent.close()

    async def offline() -> bool:
        rows = await listed("/api/agents/registry")
        return bool(rows) and rows[0]["online"] is False

    await eventually(offline, 10, "comp-listed in the registry as offline")
    assert await listed() == []
