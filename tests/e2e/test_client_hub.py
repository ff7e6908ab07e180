"""The agent client against the real supervised hub (scitex_orochi.hub.testing)."""

from __future__ import annotations

import asyncio

import pytest

from scitex_orochi import OrochiClient
from scitex_orochi.client.errors import (
    AuthError,
    NotFound,
    Replaced,
    RequestTimeout,
    ServerError,
)
from scitex_orochi.client.rest import RestClient

from support.client import WAIT_S, agent

GATEWAY = "gateway_ws:gateway_ws_00"


async def receive(client: OrochiClient, count: int) -> list:
    return [await client.recv(WAIT_S) for _ in range(count)]


async def kill_gateway(hub) -> None:
    await asyncio.to_thread(hub.kill, GATEWAY)


async def test_concurrent_calls_stay_in_step(hub):
    async with agent(hub, "a") as a, agent(hub, "b") as b:
        for i in range(10):
            await b.send("#hist", f"h{i}")

        async def flood():
            return [await b.send("#r", f"m{i}") for i in range(40)]

        calls = [a.query_history("#hist", limit=i + 1) for i in range(10)]
        calls += [a.who() for _ in range(10)]
        calls += [a.send("#other", f"s{i}") for i in range(10)]
        results, sent = await asyncio.gather(asyncio.gather(*calls), flood())
        assert [len(r) for r in results[:10]] == list(range(1, 11))
        assert all(r[0].content == "h9" for r in results[:10])  # newest first
        assert all({"a", "b"} <= set(r) for r in results[10:20])
        assert sorted(r.seq for r in results[20:30]) == list(range(1, 11))
        got = await receive(a, 40)
        assert [m.content for m in got] == [f"m{i}" for i in range(40)]
        assert [m.seq for m in got] == [s.seq for s in sent]


async def test_bad_token_is_refused_clearly(hub):
    with pytest.raises(AuthError, match="refused the token"):
        await agent(hub, "a", token="wrong").connect()


async def test_a_newer_connection_with_the_same_name_replaces_the_older(hub):
    async with agent(hub, "twin") as first:
        async with agent(hub, "twin") as second:
            with pytest.raises(Replaced):
                await first.recv(WAIT_S)
            assert "twin" in await second.who()


async def test_gateway_killed_while_another_agent_posts_resumes_once_in_order(hub):
    async with agent(hub, "listener") as a, agent(hub, "poster") as b:
        before = [await b.send("#r", f"before{i}") for i in range(5)]
        assert [m.content for m in await receive(a, 5)] == [f"before{i}" for i in range(5)]
        await kill_gateway(hub)
        # b's sends wait for its own reconnect; unacked ones are re-sent with their ids
        during = [await b.send("#r", f"during{i}") for i in range(20)]
        got = await receive(a, 20)
        assert [m.content for m in got] == [f"during{i}" for i in range(20)]
        assert [m.seq for m in got] == [s.seq for s in during]
        assert [s.seq for s in before + during] == list(range(1, 26))
        assert a.reconnects >= 1 and b.reconnects >= 1
        stored = await a.query_history("#r", after_seq=0, limit=100)
        assert [m.seq for m in stored] == list(range(1, 26))
        assert a.pending_messages() == 0


async def test_gateway_killed_while_messages_are_posted_over_rest(hub):
    rest = RestClient(hub.http_url, hub.admin_token)

    def post(i: int) -> None:
        rest.post(
            "/api/messages",
            {"sender": "rest-bot", "payload": {"channel": "#r", "content": f"rest{i}"}},
        )

    async with agent(hub, "listener") as a:
        await asyncio.to_thread(post, 0)
        assert (await a.recv(WAIT_S)).content == "rest0"
        await kill_gateway(hub)
        for i in range(1, 11):
            await asyncio.to_thread(post, i)
        got = await receive(a, 10)
        assert [m.content for m in got] == [f"rest{i}" for i in range(1, 11)]
        assert [m.seq for m in got] == list(range(2, 12))
        assert a.reconnects >= 1


async def test_sends_in_flight_when_the_gateway_dies_are_stored_once(hub):
    async with agent(hub, "listener") as a, agent(hub, "sender") as b:
        sends = asyncio.gather(*(b.send("#r", f"x{i}") for i in range(60)))
        first = await a.recv(WAIT_S)
        await kill_gateway(hub)
        sent = await asyncio.wait_for(sends, WAIT_S)
        assert sorted(s.seq for s in sent) == list(range(1, 61))
        got = [first] + await receive(a, 59)
        assert [m.seq for m in got] == list(range(1, 61))
        assert sorted(m.content for m in got) == sorted(f"x{i}" for i in range(60))
        stored = await a.query_history("#r", after_seq=0, limit=1000)
        assert len(stored) == 60 and len({m.id for m in stored}) == 60


async def test_status_heartbeat_and_subscriptions(hub):
    async with agent(hub, "a") as a, agent(hub, "b", channels=("#other",)) as b:
        await a.heartbeat()
        await a.update_status("busy", current_task="running the suite")
        await a.subscribe("#late")
        await b.send("#late", "after subscribe")
        assert (await a.recv(WAIT_S)).content == "after subscribe"
        await a.unsubscribe("#late")
        assert "#late" not in (await b.who())["a"]
        await b.send("#other", "ping @a")  # a mention reaches a off-channel
        msg = await a.recv(WAIT_S)
        assert (msg.channel, msg.mentions) == ("#other", ["a"])


async def test_a_reply_names_its_root_and_an_events_client_registers(hub):
    async with agent(hub, "asker") as a, agent(hub, "answerer", events=True) as b:
        root = await a.send("#r", "which build?")
        assert (await b.recv(WAIT_S)).content == "which build?"
        reply = await b.reply(root, "build 42")
        got = await a.recv(WAIT_S)
        assert (got.content, got.reply_to, got.seq) == ("build 42", root.id, reply.seq)
        stored = await a.query_history("#r", limit=1)
        assert stored[0].metadata["reply_to"] == root.id


# ---- conversations (docs/conversations.md) ------------------------------------------
async def test_react_edit_delete_with_events_in_seq_order(hub):
    async with (
        agent(hub, "owner", events=True) as owner,  # its acks carry the hub number
        agent(hub, "fan") as fan,
        agent(hub, "watcher", events=True) as watcher,
        agent(hub, "legacy") as legacy,
    ):
        root = await owner.send("#r", "deploy done")
        assert isinstance(root.num, int) and root.seq == 1
        assert (await fan.send("#other", "x")).num is None  # as the published clients see it
        added = await fan.react(root, "👀")
        assert (added.outcome, added.seq, added.num) == ("added", 2, root.num)
        assert (await fan.react(root.num, "👀")).outcome == "existed"
        edited = await owner.edit(root, "deploy done (v2)")
        assert (edited.outcome, edited.seq) == ("edited", 3)
        removed = await fan.react(root.id, "👀", remove=True)
        assert (removed.outcome, removed.seq) == ("removed", 4)
        assert (await fan.react(root, "👀", remove=True)).outcome == "not_found"
        after = await legacy.send("#r", "a plain message after the events")
        assert after.seq == 5

        assert (await watcher.recv(WAIT_S)).content == "deploy done"
        events = [await watcher.recv_event(WAIT_S) for _ in range(3)]
        assert [(e.type, e.seq) for e in events] == [
            ("reaction_update", 2),
            ("message_edit", 3),
            ("reaction_update", 4),
        ]
        assert events[0].get("reactor") == "fan" and events[0].get("action") == "add"
        assert events[1].get("content") == "deploy done (v2)" and events[1].num == root.num
        assert events[2].get("action") == "remove" and events[2].message == root.id
        assert (await watcher.recv(WAIT_S)).seq == 5
        # the legacy client meets messages only; its holes are filled, not duplicated
        got = [await legacy.recv(WAIT_S) for _ in range(1)]
        assert [m.content for m in got] == ["deploy done"]
        with pytest.raises(RequestTimeout):
            await legacy.recv(0.5)  # its own message is never delivered; nothing else comes

        with pytest.raises(ServerError, match="FORBIDDEN") as refused:
            await fan.delete(root)
        assert refused.value.code == "FORBIDDEN"
        deleted = await owner.delete(root.num)
        assert (deleted.outcome, deleted.seq) == ("deleted", 6)
        with pytest.raises(ServerError, match="MESSAGE_DELETED"):
            await owner.edit(root, "too late")
        with pytest.raises(NotFound, match="UNKNOWN_MESSAGE"):
            await fan.react("no-such-id", "👍")
        deletion = await watcher.recv_event(WAIT_S)
        assert (deletion.type, deletion.get("deleted_by"), deletion.seq) == (
            "message_delete",
            "owner",
            6,
        )
        (tomb,) = [m for m in await legacy.query_history("#r") if m.seq == 1]
        assert tomb.deleted and tomb.content == "" and tomb.num == root.num
        assert (await owner.send("#r", "still connected")).seq == 7


async def test_an_events_client_resumes_events_it_missed_once_in_order(hub):
    async with agent(hub, "owner") as owner, agent(hub, "watcher", events=True) as watcher:
        root = await owner.send("#r", "hello")
        assert (await watcher.recv(WAIT_S)).content == "hello"
        await kill_gateway(hub)
        await owner.react(root, "🎉")  # waits for owner's own reconnect
        await owner.edit(root, "hello again")
        got = [await watcher.recv_event(WAIT_S) for _ in range(2)]
        assert [(e.type, e.seq) for e in got] == [("reaction_update", 2), ("message_edit", 3)]
        assert watcher.reconnects >= 1
        after = await owner.send("#r", "after")
        assert (await watcher.recv(WAIT_S)).seq == after.seq == 4
        with pytest.raises(RequestTimeout):
            await watcher.recv_event(0.5)  # no event twice


async def test_replies_carry_their_thread(hub):
    async with agent(hub, "head", events=True) as head, agent(hub, "worker") as worker:
        root = await head.send("#r", "who takes #42?")
        await worker.reply(root, "me")
        live = await head.recv(WAIT_S)
        assert live.thread == {"root": root.id, "num": root.num} and live.reply_to == root.id
        await worker.reply(root.num, "done", channel="#r")
        assert (await head.recv(WAIT_S)).thread["num"] == root.num
        rows = {m.content: m for m in await head.query_history("#r")}
        assert rows["who takes #42?"].payload["reply_count"] == 2
        assert rows["done"].to_dict()["thread"] == {"root": root.id, "num": root.num}
        await worker.reply("no-such-id", "to nothing", channel="#r")  # not refused:
        orphan = await head.recv(WAIT_S)  # a plain message, no thread
        assert (orphan.reply_to, orphan.thread) == ("no-such-id", None)


async def test_dms_reach_their_participants_only(hub):
    async with (
        agent(hub, "amy") as amy,
        agent(hub, "zed") as zed,
        agent(hub, "eve", events=True) as eve,
    ):
        sent = await zed.dm("amy", "psst @eve")  # a mention does not open a DM to others
        assert sent.channel == "dm:agent:amy|agent:zed" == amy.dm_channel("zed")
        got = await amy.recv(WAIT_S)  # delivered by name: amy never subscribed
        assert (got.channel, got.content, got.sender) == (sent.channel, "psst @eve", "zed")
        answer = await amy.dm("zed", "ok")
        assert (await zed.recv(WAIT_S)).content == "ok" and answer.channel == sent.channel
        with pytest.raises(ServerError, match="NOT_A_MEMBER"):
            await eve.send(sent.channel, "let me in")
        with pytest.raises(ServerError, match="NOT_A_MEMBER"):
            await eve.react(sent, "👀")
        with pytest.raises(ServerError, match="NOT_A_MEMBER"):
            await eve.query_history(sent.channel)
        assert [m.content for m in await zed.query_history(sent.channel)] == ["ok", "psst @eve"]
        with pytest.raises(RequestTimeout):
            await eve.recv(0.5)


async def test_search_finds_words_in_what_the_agent_may_read(hub):
    async with agent(hub, "ops") as ops, agent(hub, "dev") as dev, agent(hub, "eve") as eve:
        await ops.send("#r", "deploy failed on staging")
        await ops.send("#builds", "deploy failed again, timeout")
        await ops.send("#r", "all good")
        await dev.dm("ops", "the deploy secret is in the vault")
        edited = await ops.send("#r", "deploy typo")
        await ops.edit(edited, "rollout finished")
        gone = await ops.send("#r", "deploy to delete")
        await ops.delete(gone)
        found = await dev.search("deploy")
        assert {m.content for m in found} == {
            "deploy failed on staging",
            "deploy failed again, timeout",
            "the deploy secret is in the vault",
        }
        assert all(m.num is not None for m in found)
        assert [m.content for m in await dev.search("deploy", channel="#builds")] == [
            "deploy failed again, timeout"
        ]
        assert [m.content for m in await dev.search("rollout")] == ["rollout finished"]
        assert await dev.search("typo") == []  # an edit is found by its new words only
        assert len(await dev.search("deploy", limit=1)) == 1
        by_sender = await dev.search("deploy", sender="dev")
        assert [m.channel for m in by_sender] == ["dm:agent:dev|agent:ops"]
        assert "the deploy secret is in the vault" not in {
            m.content for m in await eve.search("deploy")
        }  # others' DMs never


async def test_thread_over_the_http_gateway(hub):
    async with agent(hub, "head", events=True) as head, agent(hub, "worker") as worker:
        root = await head.send("#r", "who takes #42?")
        for text in ("me", "done"):
            await worker.reply(root, text)
        reader = agent(hub, "reader", dashboard_port=hub.dashboard_port)  # not connected
        thread = await reader.thread(root)  # an events client's Sent has the num
        assert (thread.root.id, thread.root.payload["reply_count"]) == (root.id, 2)
        assert [m.content for m in thread.replies] == ["me", "done"]
        assert all(m.thread == {"root": root.id, "num": root.num} for m in thread.replies)
        assert [m.content for m in (await reader.thread(root.num, limit=1)).replies] == ["me"]
        plain = await worker.send("#r", "a root without num in its ack")
        assert plain.num is None
        worker.dashboard_port = hub.dashboard_port
        assert (await worker.thread(plain)).replies == []  # num looked up, read as worker
        with pytest.raises(NotFound):
            await reader.thread(10**12)

        dm = await head.dm("worker", "private question")
        await worker.reply(dm.id, "private answer", channel=dm.channel)
        with pytest.raises(NotFound):  # not a participant: the DM is not there for it
            await reader.thread(dm)
        head.dashboard_port = hub.dashboard_port
        private = await head.thread(dm)  # read as head, a participant
        assert [m.content for m in private.replies] == ["private answer"]
