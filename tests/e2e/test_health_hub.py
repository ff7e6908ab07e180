"""Health classes against a real supervised hub (issue 13 point 2): the hub's liveness
probe makes ghosts of open sockets that stop answering (dialect A's protocol pings,
dialect B's `echo`), and un-makes them when answers come back; a socket silent past
PING_TIMEOUT_S is closed with 1011; reported classes (`POST /api/agents/health/`)
hold until the agent is healthy again, survive in the registry, and a workspace token
may report them."""

from __future__ import annotations

import uuid

import pytest

from support.agent import RawAgent
from support.agent_b import AgentB
from support.http_util import Api, wait_http_ready
from support.util import eventually

CLASSES = ["healthy", "idle", "stale", "stuck_prompt", "remediating", "ghost", "dead"]


def uid(prefix: str = "h") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def probe_hub():
    """Probes every 0.3 s, a ghost after 1 s unanswered, closed after 6 s."""
    from scitex_orochi.hub.testing import Hub

    hub = Hub(
        extra_env={
            "SCITEX_OROCHI_PING_INTERVAL_S": "0.3",
            "SCITEX_OROCHI_GHOST_AFTER_S": "1",
            "SCITEX_OROCHI_PING_TIMEOUT_S": "6",
            "SCITEX_OROCHI_FLEET_ECHO_INTERVAL_S": "0.3",
        }
    ).start()
    wait_http_ready(hub)
    yield hub
    hub.stop()
    hub.cleanup()


async def health_of(hub, name: str, token: str | None = None) -> dict:
    api = Api(hub.http_url, token or hub.admin_token)
    try:
        status, body = await api.get("/api/agents/health")
    finally:
        await api.close()
    assert status == 200, body
    assert body["classes"] == CLASSES and set(body["counts"]) == set(CLASSES)
    return next((a for a in body["agents"] if a["name"] == name), {})


def is_class(hub, name: str, cls: str):
    async def check() -> bool:
        return (await health_of(hub, name)).get("health") == cls

    return check


async def test_a_dialect_a_socket_that_stops_answering_pings_is_a_ghost_then_closed(probe_hub):
    name = uid("a")
    agent = await RawAgent.connect(probe_hub.agent_url(), name, ["#general"])
    await eventually(is_class(probe_hub, name, "healthy"), 10, "healthy")
    agent.ws.transport.pause_reading()  # a stuck client: its read loop answers nothing
    await eventually(is_class(probe_hub, name, "ghost"), 10, "ghost")
    entry = await health_of(probe_hub, name)
    assert entry["source"] == "hub" and "liveness probe unanswered" in entry["reason"]
    assert entry["online"] is True and entry["probe_unanswered_s"] >= 1.0
    agent.ws.transport.resume_reading()  # it answers again: healthy, no restart needed
    await eventually(is_class(probe_hub, name, "healthy"), 10, "healthy again")
    agent.ws.transport.pause_reading()
    await eventually(is_class(probe_hub, name, "ghost"), 10, "ghost again")

    async def gone() -> bool:
        entry = await health_of(probe_hub, name)
        return entry.get("online") is False

    await eventually(gone, 20, "the hub closed the silent socket")
    agent.ws.transport.resume_reading()
    code, _ = await eventually(lambda: agent.closed.done() and agent.closed.result(), 10, "closed")
    assert code in (1011, 1006)  # 1011 when the close frame got through before the abort


async def test_a_dialect_b_agent_that_stops_answering_echo_is_a_ghost(probe_hub):
    quiet = await AgentB.connect(
        probe_hub.ws_url, probe_hub.default_token, uid("b"), answer_liveness=False
    )
    await quiet.register()
    talking = await AgentB.connect(probe_hub.ws_url, probe_hub.default_token, uid("b"))
    await talking.register()
    await eventually(is_class(probe_hub, quiet.name, "ghost"), 10, "the quiet one a ghost")
    await talking.wait(lambda f: f["type"] == "echo", start=len(talking.frames))
    await talking.wait(lambda f: f["type"] == "echo", start=len(talking.frames))
    assert (await health_of(probe_hub, talking.name))["health"] == "healthy"
    await quiet.close()
    await talking.close()


async def test_reported_classes_hold_until_the_agent_is_healthy_again(probe_hub):
    name = uid("r")
    agent = await RawAgent.connect(probe_hub.agent_url(), name, ["#general"])
    await eventually(is_class(probe_hub, name, "healthy"), 10, "healthy")
    api = Api(probe_hub.http_url, probe_hub.default_token)  # a workspace token reports
    try:
        status, body = await api.post(
            "/api/agents/health/",
            {"agent": name, "status": "stuck_prompt", "reason": "y/n prompt", "source": "healer"},
        )
        assert (status, body) == (200, {"status": "ok", "applied": 1})
        entry = await health_of(probe_hub, name)
        assert (entry["health"], entry["reason"], entry["source"]) == (
            "stuck_prompt",
            "y/n prompt",
            "healer",
        )
        status, agents = await api.get("/api/agents")
        mine = next(a for a in agents if a["name"] == name)
        assert (mine["health"], mine["health_source"]) == ("stuck_prompt", "healer")
        # The healer says it is healthy again: the hub's own class is back.
        status, body = await api.post(
            "/api/agents/health/",
            {"updates": [{"agent": name, "status": "healthy", "source": "healer"}]},
        )
        assert body["applied"] == 1
        entry = await health_of(probe_hub, name)
        assert entry["health"] == "healthy" and entry["reported"]["status"] == "healthy"
        # Remediating holds while it is down, and a new session ends it.
        await api.post("/api/agents/health/", {"agent": name, "status": "remediating"})
        await agent.close()
        await eventually(is_class(probe_hub, name, "remediating"), 10, "remediating while down")
        agent = await RawAgent.connect(probe_hub.agent_url(), name, ["#general"])
        await eventually(is_class(probe_hub, name, "healthy"), 10, "healthy after restart")
        # Edge checks: clear errors, bounded.
        status, body = await api.post("/api/agents/health/", {"agent": name})
        assert status == 400 and body["field"] == "status", body
        status, body = await api.post("/api/agents/health/", {"updates": [{}] * 501})
        assert status == 400 and body["field"] == "updates", body
        status, body = await api.post("/api/agents/health/", {"agent": name, "status": "x" * 65})
        assert status == 400, body
    finally:
        await api.close()
        await agent.close()
