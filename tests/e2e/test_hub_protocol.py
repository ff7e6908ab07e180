"""PROTOCOL.md §1–§5 against the real supervised hub, over real sockets."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
import websockets

from support.agent import RawAgent


def uid(prefix: str = "a") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def expect_auth_failure(url: str) -> None:
    agent = await RawAgent.connect(url, register=False)
    frame = await agent.wait(lambda f: f["type"] == "error")
    assert frame["sender"] == "orochi-server"
    assert frame["payload"] == {"code": "AUTH_FAILED", "detail": "Invalid or missing token"}
    code, reason = await asyncio.wait_for(agent.closed, 5)
    assert (code, reason) == (4001, "Authentication failed")


async def test_auth_missing_and_wrong_token(shared_hub):
    await expect_auth_failure(f"{shared_hub.ws_url}/")
    await expect_auth_failure(f"{shared_hub.ws_url}/?token=wks_{'0' * 32}")
    await expect_auth_failure(f"{shared_hub.ws_url}/?token=nope")


async def test_admin_and_workspace_tokens_work_on_any_path(shared_hub):
    for url in (
        f"{shared_hub.ws_url}/?token={shared_hub.admin_token}",
        f"{shared_hub.ws_url}/ws/agent/?token={shared_hub.default_token}",
    ):
        agent = await RawAgent.connect(url, uid())
        replies = await agent.request({"type": "presence"})
        assert [f["type"] for f in replies] == ["presence", "ack"]
        assert agent.name in replies[0]["payload"]["agents"]
        await agent.close()


async def test_reply_comes_before_ack(shared_hub):
    agent = await RawAgent.connect(shared_hub.agent_url(), uid())
    replies = await agent.request({"type": "query", "payload": {"channel": "#general"}})
    assert [f["type"] for f in replies] == ["message", "ack"]
    assert replies[0]["payload"]["history"] is not None
    replies = await agent.request({"type": "dance"})
    assert [f["type"] for f in replies] == ["error", "ack"]
    assert replies[0]["payload"]["code"] == "UNKNOWN_TYPE"
    assert replies[0]["payload"]["detail"] == "Unknown message type: dance"
    await agent.close()


async def test_invalid_json_gets_parse_error_and_no_ack(shared_hub):
    agent = await RawAgent.connect(shared_hub.agent_url(), uid())
    start = len(agent.frames)
    await agent.send_raw("{not json")
    err = await agent.wait(lambda f: f["type"] == "error", start=start)
    assert err["payload"]["code"] == "PARSE_ERROR"
    # The connection still works, and no ack was sent for the unparsable frame.
    replies = await agent.request({"type": "presence"})
    assert not any(f["type"] == "ack" for f in agent.frames[start : -len(replies)])
    await agent.close()


async def test_message_routing_seq_and_mentions(shared_hub):
    alice = await RawAgent.connect(shared_hub.agent_url(), uid("alice"), ["#route"])
    bob = await RawAgent.connect(shared_hub.agent_url(), uid("bob"), ["#route"])
    carol = await RawAgent.connect(shared_hub.agent_url(), uid("carol"), ["#elsewhere"])
    text = f"hi @{bob.name} and @{carol.name}"
    ack1 = await alice.post("#route", text)
    ack2 = await alice.post("#route", "second")
    assert ack1["payload"]["status"] == "ok" and ack1["payload"]["channel"] == "#route"
    assert ack2["payload"]["seq"] == ack1["payload"]["seq"] + 1
    got = await bob.wait_count(
        lambda f: f["type"] == "message" and f["payload"].get("channel") == "#route", 2
    )
    assert [m["payload"]["content"] for m in got] == [text, "second"]
    assert [m["payload"]["seq"] for m in got] == [ack1["payload"]["seq"], ack2["payload"]["seq"]]
    assert got[0]["sender"] == alice.name and got[0]["id"] == ack1["payload"]["ref"]
    # carol is not subscribed but is mentioned: she gets the first message once, not the second.
    mentioned = await carol.wait(
        lambda f: f["type"] == "message" and f["payload"].get("channel") == "#route"
    )
    assert mentioned["payload"]["content"] == text
    # bob is subscribed and mentioned: once. alice never gets her own.
    await bob.request({"type": "presence"})
    await carol.request({"type": "presence"})
    await alice.request({"type": "presence"})
    assert len(bob.messages("#route")) == 2
    assert len(carol.messages("#route")) == 1
    assert alice.messages("#route") == []
    for a in (alice, bob, carol):
        await a.close()


async def test_every_frame_length_encoding_arrives_intact(shared_hub):
    """Deliveries are framed by the gateway itself: 7-bit, 16-bit and 64-bit lengths,
    several messages in one socket write, non-ASCII text, read by a websockets client."""
    alice = await RawAgent.connect(shared_hub.agent_url(), uid("alice"), ["#sizes"])
    bob = await RawAgent.connect(shared_hub.agent_url(), uid("bob"), ["#sizes"])
    contents = ["", "é" * 20, "x" * 125, "ü" * 40_000, "y" * 70_000, "z" * 300_000, "ok"]
    acks = await asyncio.gather(*(alice.post("#sizes", c) for c in contents))
    got = await bob.wait_count(
        lambda f: f["type"] == "message" and f["payload"].get("channel") == "#sizes", len(contents)
    )
    by_id = {m["id"]: m["payload"]["content"] for m in got}
    assert [by_id[a["payload"]["ref"]] for a in acks] == contents
    assert [m["payload"]["seq"] for m in got] == sorted(a["payload"]["seq"] for a in acks)
    for a in (alice, bob):
        await a.close()


async def test_query_right_after_ack_sees_the_message_and_after_seq(shared_hub):
    writer = await RawAgent.connect(shared_hub.agent_url(), uid("w"), ["#q"])
    reader = await RawAgent.connect(shared_hub.agent_url(), uid("r"), ["#other"])
    acks = [await writer.post("#q", f"m{i}") for i in range(5)]
    seqs = [a["payload"]["seq"] for a in acks]
    assert seqs == list(range(seqs[0], seqs[0] + 5))
    replies = await reader.request({"type": "query", "payload": {"channel": "#q", "limit": 3}})
    rows = replies[0]["payload"]["history"]
    assert [r["content"] for r in rows] == ["m4", "m3", "m2"]  # newest first
    assert {
        "msg_id",
        "ts",
        "channel",
        "sender",
        "content",
        "mentions",
        "metadata",
        "sender_type",
        "attachments",
        "seq",
    } <= set(rows[0])
    replies = await reader.request(
        {"type": "query", "payload": {"channel": "#q", "after_seq": seqs[1]}}
    )
    rows = replies[0]["payload"]["history"]
    assert [r["seq"] for r in rows] == seqs[2:]  # oldest first
    await writer.close()
    await reader.close()


async def test_resent_id_is_acked_again_but_stored_and_delivered_once(shared_hub):
    sender = await RawAgent.connect(shared_hub.agent_url(), uid("s"), ["#dup"])
    rcv = await RawAgent.connect(shared_hub.agent_url(), uid("r"), ["#dup"])
    mid = str(uuid.uuid4())
    first = await sender.post("#dup", "once", msg_id=mid)
    again = await sender.post("#dup", "once", msg_id=mid)
    assert first["payload"]["seq"] == again["payload"]["seq"]
    marker = await sender.post("#dup", "marker")
    await rcv.wait(lambda f: f.get("id") == marker["payload"]["ref"])
    assert [m["id"] for m in rcv.messages("#dup")].count(mid) == 1
    replies = await rcv.request({"type": "query", "payload": {"channel": "#dup"}})
    assert [r["msg_id"] for r in replies[0]["payload"]["history"]].count(mid) == 1
    await sender.close()
    await rcv.close()


async def test_identity_is_bound_to_the_registered_connection(shared_hub):
    anon = await RawAgent.connect(shared_hub.agent_url(), None, register=False)
    replies = await anon.request(
        {"type": "message", "sender": "someone", "payload": {"channel": "#id", "content": "x"}}
    )
    assert replies[0]["payload"]["code"] == "NOT_REGISTERED"
    assert replies[-1]["payload"]["status"] == "error"
    mallory = await RawAgent.connect(shared_hub.agent_url(), uid("mallory"), ["#id"])
    replies = await mallory.request(
        {"type": "message", "sender": "victim", "payload": {"channel": "#id", "content": "spoof"}}
    )
    assert replies[0]["payload"]["code"] == "SENDER_MISMATCH"
    replies = await mallory.request({"type": "query", "payload": {"channel": "#id"}})
    assert replies[0]["payload"]["history"] == []
    await anon.close()
    await mallory.close()


BAD_FRAMES = [
    ('{"type": "message", "id": "b1", "payload": {"channel": 5, "content": "x"}}', "INVALID_FIELD"),
    ('{"type": "message", "id": "b2", "payload": "nope"}', "INVALID_FIELD"),
    ('{"type": "message", "id": "b3", "payload": {"content": "no channel"}}', "INVALID_FIELD"),
    (
        '{"type": "message", "id": "b4", "payload": {"channel": "#bad", "content": []}}',
        "INVALID_FIELD",
    ),
    ('{"type": "subscribe", "id": "b5", "payload": {"channel": null}}', "INVALID_FIELD"),
    (
        '{"type": "query", "id": "b6", "payload": {"channel": "#bad", "since": "yesterday"}}',
        "INVALID_FIELD",
    ),
    ('{"type": 3}', "PARSE_ERROR"),
    ("[]", "PARSE_ERROR"),
    ('"just a string"', "PARSE_ERROR"),
]


async def test_bad_input_gets_errors_and_the_connection_stays_usable(shared_hub):
    agent = await RawAgent.connect(shared_hub.agent_url(), uid("bad"), ["#bad"])
    for text, code in BAD_FRAMES:
        start = len(agent.frames)
        await agent.send_raw(text)
        err = await agent.wait(lambda f: f["type"] == "error", start=start)
        assert err["payload"]["code"] == code, text
    await agent.send_raw(b"\x00binary")
    err = await agent.wait(lambda f: f["type"] == "error" and "binary" in f["payload"]["detail"])
    replies = await agent.request({"type": "query", "payload": {"channel": "#bad"}})
    assert replies[0]["payload"]["history"] == []
    ok = await agent.post("#bad", "still works")
    assert ok["payload"]["status"] == "ok"
    await agent.close()


async def test_oversized_frame_closes_1009_and_stores_nothing(shared_hub):
    agent = await RawAgent.connect(shared_hub.agent_url(), uid("big"), ["#big"])
    big = json.dumps(
        {"type": "message", "payload": {"channel": "#big", "content": "x" * (1024 * 1024 + 10)}}
    )
    await agent.send_raw(big)
    code, _ = await asyncio.wait_for(agent.closed, 10)
    assert code == 1009
    other = await RawAgent.connect(shared_hub.agent_url(), uid("check"))
    replies = await other.request({"type": "query", "payload": {"channel": "#big"}})
    assert replies[0]["payload"]["history"] == []
    await other.close()


async def test_duplicate_name_replaces_the_older_socket(shared_hub):
    name = uid("twin")
    old = await RawAgent.connect(shared_hub.agent_url(), name, ["#twin"])
    new = await RawAgent.connect(shared_hub.agent_url(), name, ["#twin"])
    code, reason = await asyncio.wait_for(old.closed, 5)
    assert (code, reason) == (4000, "Replaced by new connection")
    talker = await RawAgent.connect(shared_hub.agent_url(), uid("talker"), ["#twin"])
    ack = await talker.post("#twin", "to the twin")
    await new.wait(lambda f: f.get("id") == ack["payload"]["ref"])
    replies = await new.request({"type": "presence"})
    assert replies[0]["payload"]["agents"][name] == ["#twin"]
    for a in (new, talker):
        await a.close()


async def test_subscribe_and_unsubscribe(shared_hub):
    a = await RawAgent.connect(shared_hub.agent_url(), uid("sub"), ["#start"])
    b = await RawAgent.connect(shared_hub.agent_url(), uid("pub"), ["#news"])
    await a.request({"type": "subscribe", "payload": {"channel": "#news"}})
    ack = await b.post("#news", "one")
    await a.wait(lambda f: f.get("id") == ack["payload"]["ref"])
    await a.request({"type": "unsubscribe", "payload": {"channel": "#news"}})
    await b.post("#news", "two")
    marker = await b.post("#start", "marker")
    await a.wait(lambda f: f.get("id") == marker["payload"]["ref"])
    assert [m["payload"]["content"] for m in a.messages("#news")] == ["one"]
    presence = (await b.request({"type": "presence"}))[0]["payload"]["agents"]
    assert presence[a.name] == ["#start"]
    await a.close()
    await b.close()


async def test_workspace_scoping(shared_hub):
    store = shared_hub.store()
    writable = type(store)(shared_hub.cfg.db.url)
    _ws, token = writable.create_workspace(f"lab-{uuid.uuid4().hex[:6]}", ["#general"])
    inside = await RawAgent.connect(shared_hub.agent_url(), uid("in"), ["#general"])
    outside = await RawAgent.connect(shared_hub.agent_url(token), uid("out"), ["#general"])
    ack = await inside.post("#general", f"secret for @{outside.name}")
    marker = await outside.post("#general", "other workspace")
    presence = (await outside.request({"type": "presence"}))[0]["payload"]["agents"]
    assert inside.name not in presence and outside.name in presence
    rows = (await outside.request({"type": "query"}))[0]["payload"]["history"]
    assert [r["msg_id"] for r in rows] == [marker["payload"]["ref"]]
    assert all(f.get("id") != ack["payload"]["ref"] for f in outside.frames)
    assert marker["payload"]["seq"] == 1  # channels and seqs are per workspace
    await inside.close()
    await outside.close()


async def test_heartbeat_and_status_update_are_acked(shared_hub):
    agent = await RawAgent.connect(shared_hub.agent_url(), uid("hb"), machine="m1")
    replies = await agent.request(
        {
            "type": "heartbeat",
            "payload": {"cpu_count": 2, "mem_used_percent": 40.0, "orochi_current_task": "testing"},
        }
    )
    assert [f["type"] for f in replies] == ["ack"]
    replies = await agent.request(
        {"type": "status_update", "payload": {"status": "busy", "current_task": "x"}}
    )
    assert [f["type"] for f in replies] == ["ack"]
    await agent.close()


@pytest.mark.parametrize("path", ["/", "/ws/agent/"])
async def test_plain_websockets_client_can_talk(shared_hub, path):
    """An agent written for the published server: plain websockets, next-frame reads."""
    async with websockets.connect(
        f"{shared_hub.ws_url}{path}?token={shared_hub.default_token}"
    ) as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "register",
                    "sender": uid("legacy"),
                    "payload": {"channels": ["#general"], "machine": "m"},
                }
            )
        )
        ack = json.loads(await ws.recv())
        assert ack["type"] == "ack"
        await ws.send(json.dumps({"type": "presence", "sender": "x", "payload": {}}))
        reply = json.loads(await ws.recv())
        assert reply["type"] == "presence"
        assert json.loads(await ws.recv())["type"] == "ack"
