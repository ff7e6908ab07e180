"""Conversations over dialect A (docs/conversations.md, PROTOCOL.md §10) against the real
supervised hub: reactions, edits and deletes as events in the channel's seq stream, only
to connections with the `events` capability; threads; DMs for participants only; resume
with after_seq; lasting subscriptions; bad input answered with a code, nothing stored."""

from __future__ import annotations

import uuid

from support.agent import RawAgent


def uid(prefix: str = "c") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def events_of(agent: RawAgent, kind: str) -> list[dict]:
    return [f for f in agent.frames if f["type"] == kind]


async def test_reactions_edits_deletes_reach_event_clients_only_in_seq_order(shared_hub):
    ch = f"#{uid('conv')}"
    url = shared_hub.agent_url()
    alice = await RawAgent.connect(url, uid("alice"), [ch], capabilities=["events"])
    watcher = await RawAgent.connect(url, uid("watch"), [ch], capabilities=["events"])
    legacy = await RawAgent.connect(url, uid("legacy"), [ch])  # a 0.1/0.17 client
    healer = await RawAgent.connect(url, uid("healer"), [ch])
    posted = await alice.post(ch, "deploy done")
    mid, num = posted["payload"]["ref"], posted["payload"]["num"]
    assert posted["payload"]["seq"] == 1 and isinstance(num, int)

    ack = (await healer.request({"type": "react", "payload": {"message": mid, "emoji": "👀"}}))[-1]
    assert ack["payload"]["outcome"] == "added" and ack["payload"]["seq"] == 2
    again = await healer.request({"type": "react", "payload": {"message": num, "emoji": "👀"}})
    assert again[-1]["payload"]["outcome"] == "existed"
    edit = await alice.request(
        {"type": "edit", "payload": {"message": mid, "content": "deploy done (v2)"}}
    )
    assert edit[-1]["payload"]["outcome"] == "edited" and edit[-1]["payload"]["seq"] == 3
    await legacy.post(ch, "a plain message after the events")

    got = await watcher.wait(lambda f: f["type"] == "message_edit")
    assert got["sender"] == "orochi-server" and got["payload"]["content"] == "deploy done (v2)"
    assert got["payload"]["editor"] == alice.name and got["payload"]["num"] == num
    (reaction,) = events_of(watcher, "reaction_update")
    assert reaction["payload"] == {
        "channel": ch,
        "seq": 2,
        "message": mid,
        "num": num,
        "emoji": "👀",
        "reactor": healer.name,
        "action": "add",
    }
    await legacy.wait(lambda f: f["type"] == "message" and f["payload"].get("seq") == 1)
    await watcher.wait(lambda f: f["type"] == "message" and f["payload"].get("seq") == 4)
    # The published clients never meet a frame type they do not know.
    assert {f["type"] for f in legacy.frames} <= {"ack", "message"}
    seqs = [f["payload"]["seq"] for f in watcher.frames if "seq" in f["payload"]]
    seqs = [s for s in seqs if s]  # acks of its own frames carry none
    assert seqs == sorted(seqs) == [1, 2, 3, 4]

    # History is the folded state; after_seq is the event log, for event clients.
    history = (await legacy.request({"type": "query", "payload": {"channel": ch}}))[0]
    rows = {r["seq"]: r for r in history["payload"]["history"]}
    assert rows[1]["content"] == "deploy done (v2)" and rows[1]["edited_at"]
    assert rows[1]["reactions"] == {"👀": [healer.name]} and rows[1]["num"] == num
    log = (await watcher.request({"type": "query", "payload": {"channel": ch, "after_seq": 0}}))[0]
    assert [(r["seq"], r.get("event")) for r in log["payload"]["history"]] == [
        (1, None),
        (2, "reaction_update"),
        (3, "message_edit"),
        (4, None),
    ]
    plain = await legacy.request({"type": "query", "payload": {"channel": ch, "after_seq": 0}})
    assert [r["seq"] for r in plain[0]["payload"]["history"]] == [1, 4]

    # Only the sender deletes; then the tombstone refuses edits.
    refused = await healer.request({"type": "delete", "payload": {"message": mid}})
    assert [f["type"] for f in refused] == ["error", "ack"]
    assert refused[0]["payload"]["code"] == "FORBIDDEN"
    assert (await alice.request({"type": "delete", "payload": {"message": num}}))[-1]["payload"][
        "outcome"
    ] == "deleted"
    dead = await alice.request({"type": "edit", "payload": {"message": mid, "content": "x"}})
    assert dead[0]["payload"]["code"] == "MESSAGE_DELETED"
    await watcher.wait(lambda f: f["type"] == "message_delete")
    history = (await legacy.request({"type": "query", "payload": {"channel": ch}}))[0]
    tomb = next(r for r in history["payload"]["history"] if r["seq"] == 1)
    assert tomb["deleted"] is True and tomb["content"] == "" and "reactions" not in tomb
    for agent in (alice, watcher, legacy, healer):
        await agent.close()


async def test_bad_changes_name_the_problem_and_the_connection_stays_usable(shared_hub):
    ch = f"#{uid('bad')}"
    agent = await RawAgent.connect(shared_hub.agent_url(), uid("a"), [ch])
    mid = (await agent.post(ch, "target"))["payload"]["ref"]
    cases = [
        ({"type": "react", "payload": {"message": "no-such-id", "emoji": "👍"}}, "UNKNOWN_MESSAGE"),
        ({"type": "react", "payload": {"message": 10**15, "emoji": "👍"}}, "UNKNOWN_MESSAGE"),
        ({"type": "react", "payload": {"message": mid, "emoji": ""}}, "INVALID_FIELD"),
        ({"type": "react", "payload": {"message": mid, "emoji": "x" * 33}}, "INVALID_FIELD"),
        (
            {"type": "react", "payload": {"message": mid, "emoji": "👍", "action": "x"}},
            "INVALID_FIELD",
        ),
        ({"type": "react", "payload": {"message": True, "emoji": "👍"}}, "INVALID_FIELD"),
        ({"type": "edit", "payload": {"message": mid}}, "INVALID_FIELD"),
        ({"type": "delete", "payload": {}}, "INVALID_FIELD"),
    ]
    for frame, code in cases:
        replies = await agent.request(frame)
        assert replies[0]["type"] == "error" and replies[0]["payload"]["code"] == code, replies
        assert replies[-1]["payload"]["status"] == "error"
    history = (await agent.request({"type": "query", "payload": {"channel": ch}}))[0]
    (row,) = history["payload"]["history"]
    assert "reactions" not in row and "edited_at" not in row  # nothing stored
    assert (await agent.post(ch, "still here"))["payload"]["seq"] == 2
    await agent.close()


async def test_threads_carry_their_root_live_and_in_history(shared_hub):
    ch = f"#{uid('thr')}"
    url = shared_hub.agent_url()
    head = await RawAgent.connect(url, uid("head"), [ch])
    worker = await RawAgent.connect(url, uid("worker"), [ch])
    root = await head.post(ch, "who takes #42?")
    rid, rnum = root["payload"]["ref"], root["payload"].get("num")
    await worker.post(ch, "me", metadata={"reply_to": rid})
    live = await head.wait(lambda f: f["type"] == "message" and f["payload"].get("content") == "me")
    assert live["payload"]["thread"]["root"] == rid
    rnum = live["payload"]["thread"]["num"]
    await worker.post(ch, "done", metadata={"reply_to": str(rnum)})
    history = (await head.request({"type": "query", "payload": {"channel": ch}}))[0]
    rows = {r["content"]: r for r in history["payload"]["history"]}
    assert rows["who takes #42?"]["reply_count"] == 2
    assert rows["done"]["thread"] == {"root": rid, "num": rnum}
    await head.close()
    await worker.close()


async def test_dms_reach_participants_only(shared_hub):
    url = shared_hub.agent_url()
    a, b, eve = uid("a"), uid("b"), uid("eve")
    dm = "dm:" + "|".join(sorted((f"agent:{a}", f"agent:{b}")))
    alice = await RawAgent.connect(url, a, ["#general"])
    bob = await RawAgent.connect(url, b, ["#general"])
    mallory = await RawAgent.connect(url, eve, ["#general"], capabilities=["events"])
    ack = await alice.post(dm, f"psst @{eve}")  # a mention does not open a DM to others
    assert ack["payload"]["status"] == "ok"
    got = await bob.wait(lambda f: f["type"] == "message" and f["payload"]["channel"] == dm)
    assert got["payload"]["content"].startswith("psst")
    for frame in (
        {"type": "subscribe", "payload": {"channel": dm}},
        {"type": "query", "payload": {"channel": dm}},
        {"type": "message", "payload": {"channel": dm, "content": "let me in"}},
        {"type": "react", "payload": {"message": ack["payload"]["ref"], "emoji": "👀"}},
    ):
        replies = await mallory.request(frame)
        if frame["type"] == "react":  # the persister refuses: it knows the message's channel
            assert replies[0]["payload"]["code"] == "NOT_A_MEMBER", replies
        else:
            assert replies[0]["payload"]["code"] == "NOT_A_MEMBER", replies
    wrong_order = "dm:" + "|".join(sorted((f"agent:{a}", f"agent:{b}"), reverse=True))
    refused = await alice.request({"type": "message", "payload": {"channel": wrong_order}})
    assert refused[0]["payload"]["code"] == "INVALID_FIELD"
    assert not [f for f in mallory.frames if f.get("payload", {}).get("channel") == dm]
    for agent in (alice, bob, mallory):
        await agent.close()


async def test_a_reconnecting_agent_gets_its_lasting_subscriptions_back(shared_hub):
    url = shared_hub.agent_url()
    name, ch, quiet = uid("sub"), f"#{uid('keep')}", f"#{uid('quiet')}"
    agent = await RawAgent.connect(url, name, ["#general"])
    await agent.request({"type": "subscribe", "payload": {"channel": ch}})
    await agent.request({"type": "subscribe", "payload": {"channel": quiet, "mention_only": True}})
    await agent.close()
    poster = await RawAgent.connect(url, uid("poster"), ["#general"])

    async def back() -> RawAgent:
        again = await RawAgent.connect(url, name, ["#general"])
        await poster.post(ch, "are you there?")
        return again

    again = await back()
    got = await again.wait(lambda f: f["type"] == "message" and f["payload"]["channel"] == ch)
    assert got["payload"]["content"] == "are you there?"
    await poster.post(quiet, "chatter nobody needs")
    await poster.post(quiet, f"@{name} this one is for you")
    mention = await again.wait(lambda f: f["payload"].get("channel") == quiet)
    assert mention["payload"]["content"].startswith(f"@{name}")
    await again.close()
    await poster.close()
