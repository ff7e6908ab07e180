"""The conversation REST routes (docs/conversations.md, "REST") against a real supervised
hub: a workspace token reacting as its connected agent, the observer socket getting the
`reaction_update` live, and a DM reaching its participant's observer and REST reads but
never a non-participant's. (Every route and refusal in this process:
tests/component/test_http_conversations.py.)"""

from __future__ import annotations

import json
import uuid

import pytest

from support.agent import RawAgent
from support.http_util import Api, wait_http_ready
from support.util import eventually


@pytest.fixture(scope="module")
def http_hub(shared_hub):
    wait_http_ready(shared_hub)
    return shared_hub


def observer_url(hub, token: str, **query: str) -> str:
    extra = "".join(f"&{k}={v}" for k, v in query.items())
    return f"ws://{hub.host}:{hub.dashboard_port}/ws?token={token}{extra}"


async def watching_observer(hub, token: str, **query: str) -> RawAgent:
    """An observer once the gateway added it (`observers_connected` went up)."""
    admin = Api(hub.http_url, hub.admin_token)
    try:
        before = (await admin.get("/api/stats"))[1]["observers_connected"]
        obs = await RawAgent.connect(observer_url(hub, token, **query), register=False)

        async def added() -> bool:
            return (await admin.get("/api/stats"))[1]["observers_connected"] > before

        await eventually(added, 10, "the observer added by the gateway")
        return obs
    finally:
        await admin.close()


async def test_reactions_and_dms_over_the_supervised_hub(http_hub):
    tag = uuid.uuid4().hex[:6]
    alice, carol, bob = f"cv-alice-{tag}", f"cv-carol-{tag}", f"cv-bob-{tag}"
    dm = f"dm:agent:{alice}|agent:{bob}"
    channel = f"#cv-{tag}"
    api = Api(http_hub.http_url, http_hub.default_token)
    admin = Api(http_hub.http_url, http_hub.admin_token)
    a = await RawAgent.connect(http_hub.agent_url(), alice, [channel])
    c = await RawAgent.connect(http_hub.agent_url(), carol, [channel])
    outsider = await watching_observer(http_hub, http_hub.default_token)
    participant = await watching_observer(http_hub, http_hub.default_token, agent=alice)
    try:
        status, posted = await admin.post(
            "/api/messages",
            {"sender": "ywatanabe", "payload": {"channel": channel, "content": "ship it"}},
        )
        assert status == 201, posted
        ack = await a.post(dm, f"secret {tag}")
        assert ack["payload"]["status"] == "ok", ack
        status, body = await api.post(
            "/api/reactions/", {"message_id": posted["num"], "emoji": "🚀", "reactor": carol}
        )
        assert status == 200 and body["action"] == "added", body
        update = await outsider.wait(
            lambda f: f["type"] == "reaction_update" and f["payload"]["channel"] == channel
        )
        assert update["payload"]["reactor"] == carol and update["payload"]["num"] == posted["num"]
        assert all(f"secret {tag}" not in json.dumps(f) for f in outsider.frames)
        seen = await participant.wait(lambda f: f.get("payload", {}).get("channel") == dm)
        assert seen["payload"]["content"] == f"secret {tag}"

        status, rows = await admin.get(f"/api/history/{dm}")
        assert status == 200 and len(rows) == 1, rows
        dm_num = rows[0]["num"]
        status, body = await api.get(f"/api/messages/{dm_num}/", params={"agent": carol})
        assert status == 404, body
        status, body = await api.get(f"/api/messages/{dm_num}", params={"agent": alice})
        assert status == 200 and body["content"] == f"secret {tag}", body
        status, body = await api.get("/api/reactions", params={"message_ids": str(posted["num"])})
        assert body == {str(posted["num"]): {"🚀": [{"reactor": carol, "reactor_type": "agent"}]}}
        status, body = await api.get("/api/workspace/default/dms/", params={"agent": alice})
        assert status == 200 and [d["name"] for d in body["dms"]] == [dm], body
    finally:
        for conn in (a, c, outsider, participant):
            await conn.close()
        await api.close()
        await admin.close()
