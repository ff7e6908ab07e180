"""Dialect B (the fleet's sidecar and 0.13+ CLI, ../shared/FLEET.md) against the real
supervised hub, beside dialect A: `/ws/agent/?agent=` picks B; flat frames both ways,
integer message ids, `registered`/`subscribed`, thread and change events without asking,
no acks, several sockets per name, 4409 only for a duplicate instance, ping/echo round
trips in the registry, and the upstream bugs (a first DM or mention closing sockets,
double delivery) absent."""

from __future__ import annotations

import uuid

import pytest

from support.agent import RawAgent
from support.agent_b import AgentB
from support.http_util import Api
from support.util import eventually


def uid(prefix: str = "b") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def is_msg(text: str):
    return lambda f: f.get("type") == "message" and f.get("text") == text


@pytest.fixture(scope="module")
def fast_hub():
    """A hub whose B liveness frames come every fraction of a second."""
    from scitex_orochi.hub.testing import Hub

    hub = Hub(
        extra_env={
            "SCITEX_OROCHI_FLEET_PING_INTERVAL_S": "0.2",
            "SCITEX_OROCHI_FLEET_ECHO_INTERVAL_S": "0.3",
        }
    ).start()
    yield hub
    hub.stop()
    hub.cleanup()


async def connect_b(hub, name: str | None = None, **kw) -> AgentB:
    return await AgentB.connect(hub.ws_url, hub.default_token, name or uid(), **kw)


async def agents_by_name(hub) -> dict[str, dict]:
    api = Api(hub.http_url, hub.admin_token)
    try:
        status, body = await api.get("/api/agents")
    finally:
        await api.close()
    assert status == 200, body
    return {a["name"]: a for a in body}


async def test_register_subscribe_and_messages_both_ways_with_an_a_agent(shared_hub):
    ch = uid("ch")
    b = await connect_b(shared_hub)
    registered = await b.register()
    assert registered == {"type": "registered", "channels": ["#general"]}
    sub = await b.subscribe(ch)  # a bare name gets its '#'
    assert sub == {
        "type": "subscribed",
        "channel": f"#{ch}",
        "channels": ["#general", f"#{ch}"],
        "mention_only": False,
    }
    a = await RawAgent.connect(
        shared_hub.agent_url(), uid("a"), [f"#{ch}"], capabilities=["events"]
    )
    posted = await a.post(f"#{ch}", "from A", metadata={"k": "v"})
    got = await b.wait(is_msg("from A"))
    assert got["id"] == posted["payload"]["num"] and isinstance(got["id"], int)
    assert got["sender"] == a.name and got["sender_type"] == "agent"
    assert got["channel"] == f"#{ch}" and got["metadata"] == {"k": "v"} and got["ts"]
    assert set(got) == {"type", "id", "sender", "sender_type", "channel", "text", "ts", "metadata"}

    attachment = {"url": "/media/x.png", "filename": "x.png", "mime_type": "image/png"}
    await b.message(ch, "from B", {"attachments": [attachment]})
    seen = await a.wait(lambda f: f["type"] == "message" and f["payload"]["content"] == "from B")
    assert seen["sender"] == b.name and seen["payload"]["channel"] == f"#{ch}"
    assert seen["payload"]["attachments"] == [attachment]
    await b.message(ch, "second from B")
    await a.wait(lambda f: f["type"] == "message" and f["payload"]["content"] == "second from B")
    # B gets no acks and never its own messages.
    assert not [
        f for f in b.frames if f["type"] in ("ack", "message") and f.get("sender") == b.name
    ]
    assert not b.of_type("ack")
    await b.close()

    # The memberships last: a reconnect lists them, #general included.
    again = await AgentB.connect(shared_hub.ws_url, shared_hub.default_token, b.name)
    assert (await again.register())["channels"] == ["#general", f"#{ch}"]
    left = await again.unsubscribe(f"#{ch}")
    assert left["type"] == "unsubscribed" and left["channels"] == ["#general"]
    await again.close()
    await a.close()


async def test_threads_and_change_events_reach_b_without_asking(shared_hub):
    ch = f"#{uid('thr')}"
    a = await RawAgent.connect(shared_hub.agent_url(), uid("a"), [ch], capabilities=["events"])
    b = await connect_b(shared_hub)
    await b.register()
    await b.subscribe(ch)
    root = await a.post(ch, "who takes #42?")
    num = root["payload"]["num"]
    first = await b.wait(is_msg("who takes #42?"))
    assert first["id"] == num

    await b.message(ch, "me", {"reply_to": first["id"]})  # B replies by the integer id
    reply = await a.wait(lambda f: f["type"] == "message" and f["payload"]["content"] == "me")
    assert reply["payload"]["thread"] == {"root": root["payload"]["ref"], "num": num}

    mine = await a.post(ch, "thanks", metadata={"reply_to": root["payload"]["ref"]})
    threaded = await b.wait(lambda f: f["type"] == "thread_reply")
    assert threaded["parent_id"] == num and threaded["reply_id"] == mine["payload"]["num"]
    assert threaded["text"] == "thanks" and threaded["sender"] == a.name
    assert threaded["channel"] == ch and threaded["sender_type"] == "agent"
    assert not [f for f in b.frames if f["type"] == "message" and f.get("text") == "thanks"]

    react = {"type": "react", "payload": {"message": num, "emoji": "👍"}}
    assert (await a.request(react))[-1]["payload"]["outcome"] == "added"
    reaction = await b.wait(lambda f: f["type"] == "reaction_update")
    assert reaction == {
        "type": "reaction_update",
        "message_id": num,
        "emoji": "👍",
        "reactor": a.name,
        "action": "added",
    }
    unreact = {"type": "react", "payload": {"message": num, "emoji": "👍", "action": "remove"}}
    await a.request(unreact)
    removed = await b.wait(lambda f: f["type"] == "reaction_update" and f["action"] == "removed")
    assert removed["message_id"] == num
    await a.request({"type": "edit", "payload": {"message": num, "content": "who takes #43?"}})
    edit = await b.wait(lambda f: f["type"] == "message_edit")
    assert edit["message_id"] == num and edit["text"] == "who takes #43?"
    assert edit["sender"] == a.name and edit["channel"] == ch and edit["edited_at"]
    await a.request({"type": "delete", "payload": {"message": num}})
    gone = await b.wait(lambda f: f["type"] == "message_delete")
    assert gone == {"type": "message_delete", "message_id": num, "sender": a.name, "channel": ch}
    await a.close()
    await b.close()


async def test_task_and_subagents_update_presence_silently_and_cli_frames_get_a_replies(
    shared_hub,
):
    b = await connect_b(shared_hub)
    await b.register()
    await b.send("task_update", {"task": "reviewing #12"})
    subagents = [{"name": "explorer", "task": "grep", "status": "running"}, {"name": "w2"}]
    await b.send("subagents_update", {"subagents": subagents})
    await b.send("heartbeat", {})
    # The CLI's agent list and channel history: A-shaped frames, answered in A's shape.
    await b.send_raw({"type": "presence", "sender": b.name, "id": "p1", "ts": "x", "payload": {}})
    listing = await b.wait(lambda f: f["type"] == "presence")
    assert b.name in listing["payload"]["agents"]
    await b.send_raw(
        {"type": "query", "sender": b.name, "id": "q1", "payload": {"channel": "general"}}
    )
    history = await b.wait(lambda f: f.get("payload", {}).get("ref") == "q1")
    assert history["payload"]["channel"] == "#general"
    assert isinstance(history["payload"]["history"], list)

    async def listed():
        agent = (await agents_by_name(shared_hub)).get(b.name) or {}
        return agent.get("subagent_count") == 2 and agent.get("current_task") == "reviewing #12"

    await eventually(listed, 10, "task and subagents in /api/agents")
    agent = (await agents_by_name(shared_hub))[b.name]
    assert agent["subagents"][0] == subagents[0] and agent["machine"] == "testhost"
    assert "orochi_claude_md" not in agent
    # Nothing answered the silent frames (no acks, no errors).
    assert {f["type"] for f in b.frames} <= {"registered", "presence", "message", "ping", "echo"}
    await b.close()


async def test_ping_and_echo_round_trips_show_in_the_registry(fast_hub):
    b = await connect_b(fast_hub)
    await b.register()
    await b.wait(lambda f: f["type"] == "ping" and isinstance(f["ts"], float))
    await b.wait(lambda f: f["type"] == "echo" and isinstance(f["nonce"], str))

    async def measured():
        agent = (await agents_by_name(fast_hub)).get(b.name) or {}
        return "rtt_ms" in agent and "echo_rtt_ms" in agent

    await eventually(measured, 10, "rtt_ms and echo_rtt_ms in /api/agents")
    agent = (await agents_by_name(fast_hub))[b.name]
    assert 0 <= agent["rtt_ms"] < 5000 and 0 <= agent["echo_rtt_ms"] < 5000
    # A connections get no B liveness frames.
    a = await RawAgent.connect(fast_hub.agent_url(), uid("a"), ["#general"])
    await b.wait(lambda f: f["type"] == "ping", start=len(b.frames))
    await b.wait(lambda f: f["type"] == "ping", start=len(b.frames))
    assert {f["type"] for f in a.frames} <= {"ack"}
    await a.close()
    await b.close()


async def test_two_sockets_of_one_name_both_get_the_traffic(shared_hub):
    name, ch = uid("twin"), f"#{uid('ch')}"
    first = await connect_b(shared_hub, name)
    second = await connect_b(shared_hub, name)
    for twin in (first, second):
        assert (await twin.register())["type"] == "registered"
        await twin.subscribe(ch)
    a = await RawAgent.connect(shared_hub.agent_url(), uid("a"), [ch])
    await a.post(ch, "to both")
    await a.post(ch, f"@{name} mentioned")
    for twin in (first, second):
        await twin.wait(is_msg("to both"))
        await twin.wait(is_msg(f"@{name} mentioned"))
    # What one twin says reaches the others, never the other twin (the same sender).
    await first.message(ch, "from a twin")
    await a.wait(lambda f: f["type"] == "message" and f["payload"]["content"] == "from a twin")
    await a.post(ch, "after")
    for twin in (first, second):
        await twin.wait(is_msg("after"))
        assert not twin.closed.done()
        texts = [f["text"] for f in twin.of_type("message")]
        assert texts == ["to both", f"@{name} mentioned", "after"]  # each once, in order
    await second.close()
    await a.post(ch, "one left")
    await first.wait(is_msg("one left"))
    assert name in await agents_by_name(shared_hub)
    await first.close()
    await a.close()


async def test_a_duplicate_instance_is_refused_with_4409_only_with_both_fields(shared_hub):
    name = uid("inst")
    ident = {"instance_id": "i-1", "start_ts_unix": 1700000000}
    first = await connect_b(shared_hub, name)
    assert (await first.register(**ident))["type"] == "registered"
    dup = await connect_b(shared_hub, name)
    await dup.send("register", ident)
    assert await dup.wait_closed() == (4409, "Duplicate instance")
    other = await connect_b(shared_hub, name)
    assert (await other.register(instance_id="i-2", start_ts_unix=1700000001))["type"] == (
        "registered"
    )
    no_ts = await connect_b(shared_hub, name)  # instance_id alone: no cardinality rule
    assert (await no_ts.register(instance_id="i-1"))["type"] == "registered"
    for agent in (first, other, no_ts):
        assert not agent.closed.done()
        await agent.close()


async def test_unknown_types_and_bad_frames_get_b_errors_and_the_socket_stays(shared_hub):
    b = await connect_b(shared_hub)
    await b.send("message", {"channel": "general", "text": "too early"})
    early = await b.wait(lambda f: f["type"] == "error")
    assert early["code"] == "not_registered" and set(early) == {"type", "code", "message"}
    await b.register()
    await b.send("no_such_type", {})
    unknown = await b.wait(lambda f: f["type"] == "error" and f["code"] == "unknown_type")
    assert unknown["message"]
    await b.send("message", {"text": "no channel"})
    await b.wait(lambda f: f["type"] == "error" and f["code"] == "channel_required")
    await b.send("message", {"channel": "dm:agent:x|agent:y", "text": "not mine"})
    await b.wait(lambda f: f["type"] == "error" and f["code"] == "acl_denied")
    assert (await b.subscribe(uid("still")))["type"] == "subscribed"
    assert not b.of_type("ack")
    await b.close()


async def test_a_bad_token_closes_with_4001(shared_hub):
    bad = await AgentB.connect(shared_hub.ws_url, "wrong-token", uid())
    assert (await bad.wait_closed())[0] == 4001
    assert bad.frames and bad.frames[0]["type"] == "error"
    await bad.close()


async def test_first_dm_and_first_mention_close_nothing_and_mentions_reach_the_unsubscribed(
    shared_hub,
):
    alice, bob = uid("alice"), uid("bob")
    a = await connect_b(shared_hub, alice)
    b = await connect_b(shared_hub, bob)
    bystander = await connect_b(shared_hub)
    for agent in (a, b, bystander):
        await agent.register()
    ch = uid("quiet")
    await a.subscribe(ch)  # bob is online, not in this channel
    dm = "dm:" + "|".join(sorted([f"agent:{alice}", f"agent:{bob}"]))
    await a.message(dm, "first DM")
    got = await b.wait(is_msg("first DM"))
    assert got["channel"] == dm and isinstance(got["id"], int)
    await a.message(ch, f"@{bob} first mention")
    await b.wait(is_msg(f"@{bob} first mention"))
    await b.message(dm, "reply in DM")
    await a.wait(is_msg("reply in DM"))
    await a.message("general", "after all that")
    for agent in (b, bystander):
        await agent.wait(is_msg("after all that"))
    for agent in (a, b, bystander):
        assert not agent.closed.done()
    texts = [f["text"] for f in b.of_type("message")]
    assert texts == ["first DM", f"@{bob} first mention", "after all that"]  # once each
    assert not [f for f in bystander.of_type("message") if f["channel"] == dm]
    for agent in (a, b, bystander):
        await agent.close()


async def test_other_paths_and_the_agent_path_without_agent_stay_dialect_a(shared_hub):
    url = f"{shared_hub.ws_url}/ws/agent/?token={shared_hub.default_token}"
    a = await RawAgent.connect(url, uid("a"), ["#general"])
    ack = a.frames[-1]
    assert ack["type"] == "ack" and ack["payload"]["status"] == "ok"
    await a.close()


async def test_the_dashboard_port_serves_b_through_the_agent_gateways(shared_hub):
    """The sidecar's default: its socket on the dashboard port (the same host:port as its
    REST calls), relayed to the agent port's core."""
    http_ws = shared_hub.http_url.replace("http://", "ws://")
    ch = f"#{uid('dash')}"
    b = await AgentB.connect(http_ws, shared_hub.default_token, uid("side"))
    assert (await b.register())["channels"] == ["#general"]
    assert (await b.subscribe(ch))["type"] == "subscribed"
    a = await RawAgent.connect(shared_hub.agent_url(), uid("a"), [ch])
    await a.post(ch, "through the dashboard port")
    got = await b.wait(is_msg("through the dashboard port"))
    assert isinstance(got["id"], int)
    await b.message(ch, "back from the sidecar")
    await a.wait(
        lambda f: f["type"] == "message" and f["payload"]["content"] == "back from the sidecar"
    )
    dup_ident = {"instance_id": "same", "start_ts_unix": 1}
    first = await AgentB.connect(http_ws, shared_hub.default_token, b.name)
    assert (await first.register(**dup_ident))["type"] == "registered"
    dup = await AgentB.connect(http_ws, shared_hub.default_token, b.name)
    await dup.send("register", dup_ident)
    assert (await dup.wait_closed())[0] == 4409
    bad = await AgentB.connect(http_ws, "wrong-token", uid())
    assert (await bad.wait_closed())[0] == 4001
    assert bad.frames and bad.frames[0]["type"] == "error"
    for agent in (b, first, bad):
        await agent.close()
    await a.close()
