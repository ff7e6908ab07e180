"""The client's conversation calls (reply, react, edit, delete, dm, search, thread, events)
over a real socket against `support.fakehub.FakeHub`: the frames on the wire, the acks and
the errors (the pure rules: tests/unit/test_client_conv_unit.py; the real hub:
tests/e2e/test_client_hub.py)."""

from __future__ import annotations

import asyncio

import pytest

from scitex_orochi import OrochiClient
from scitex_orochi.client.core import Backoff, Changed, Sent
from scitex_orochi.client.errors import NotFound, RequestTimeout, ServerError
from scitex_orochi.client.sync import SyncOrochiClient

from support.fakehub import FakeHub, ThreadsApi, hub_in_thread

FAST = Backoff(initial_s=0.01, factor=2.0, max_s=0.05)
WAIT_S = 10.0


def client(hub: FakeHub, name: str, **kw) -> OrochiClient:
    kw.setdefault("channels", ["#g"])
    return OrochiClient(
        name,
        host="127.0.0.1",
        port=hub.port,
        token=hub.token,
        backoff=FAST,
        timeout=WAIT_S,
        connect_timeout=WAIT_S,
        **kw,
    )


def sent_frames(hub: FakeHub, type_: str) -> list[dict]:
    return [f for f in hub.frames if f.get("type") == type_]


async def test_register_lists_events_only_when_asked():
    async with FakeHub() as hub, client(hub, "plain"), client(hub, "ev", events=True):
        plain, ev = sent_frames(hub, "register")
        assert set(plain["payload"]) == {"channels", "machine", "agent_id"}  # as published
        assert ev["payload"]["capabilities"] == ["events"]
    async with FakeHub() as hub:
        extra = {"capabilities": ["other"]}
        async with client(hub, "both", events=True, extra_register=extra):
            assert sent_frames(hub, "register")[0]["payload"]["capabilities"] == [
                "other",
                "events",
            ]


async def test_reply_names_the_root_and_is_delivered_in_its_thread():
    async with FakeHub() as hub, client(hub, "a") as a, client(hub, "b") as b:
        root = await a.send("#g", "question")
        assert root.num == 1
        reply = await b.reply(root, "answer", metadata={"k": 1})
        assert reply.channel == "#g" and reply.num == 2
        wire = sent_frames(hub, "message")[-1]["payload"]
        assert wire["metadata"] == {"k": 1, "reply_to": root.id}
        got = await a.recv(WAIT_S)
        assert got.content == "answer" and got.reply_to == root.id
        assert got.thread == {"root": root.id, "num": 1}
        await b.reply(1, "by number", channel="#g")
        assert sent_frames(hub, "message")[-1]["payload"]["metadata"] == {"reply_to": 1}
        with pytest.raises(ValueError, match="channel"):
            await b.reply(root.id, "which channel?")
        orphan = await b.reply("nope", "x", channel="#g")  # stored, in no thread
        got = [await a.recv(WAIT_S) for _ in range(2)][-1]
        assert (got.id, got.reply_to, got.thread) == (orphan.id, "nope", None)


async def test_react_add_existed_remove_not_found():
    async with FakeHub() as hub, client(hub, "a") as a, client(hub, "b") as b:
        root = await a.send("#g", "ship it?")
        first = await b.react(root, "👍")
        assert first.outcome == "added" and first.num == root.num and first.seq == 2
        assert (await b.react(root.num, "👍")).outcome == "existed"
        assert (await b.react(str(root.num), "👍", remove=True)).outcome == "removed"
        again = await b.react(root.id, "👍", remove=True)
        assert again == Changed(ref=again.ref, outcome="not_found", seq=None, num=root.num)
        assert sent_frames(hub, "react")[0]["payload"] == {
            "message": root.id,
            "emoji": "👍",
            "action": "add",
        }


async def test_edit_and_delete_only_by_the_sender_and_errors_keep_the_connection():
    async with FakeHub() as hub, client(hub, "a") as a, client(hub, "b") as b:
        mine = await a.send("#g", "typo")
        with pytest.raises(ServerError, match="FORBIDDEN") as refused:
            await b.edit(mine, "not yours")
        assert refused.value.code == "FORBIDDEN"
        with pytest.raises(NotFound, match="UNKNOWN_MESSAGE"):
            await a.delete("no-such-id")
        edited = await a.edit(mine, "fixed")
        assert edited.outcome == "edited" and edited.seq is not None
        assert sent_frames(hub, "edit")[-1]["payload"] == {"message": mine.id, "content": "fixed"}
        deleted = await a.delete(mine.num)
        assert deleted.outcome == "deleted" and deleted.seq == edited.seq + 1
        with pytest.raises(ServerError, match="MESSAGE_DELETED"):
            await a.edit(mine, "too late")
        assert (await a.send("#g", "still connected")).seq is not None


async def test_events_reach_only_clients_that_asked_in_seq_order():
    async with (
        FakeHub() as hub,
        client(hub, "a") as a,
        client(hub, "watcher", events=True) as watcher,
        client(hub, "plain") as plain,
    ):
        root = await a.send("#g", "hello")
        await a.react(root, "🎉")
        await a.edit(root, "hello, edited")
        await a.delete(root)
        assert (await watcher.recv(WAIT_S)).content == "hello"
        got = [await watcher.recv_event(WAIT_S) for _ in range(3)]
        assert [e.type for e in got] == ["reaction_update", "message_edit", "message_delete"]
        assert [e.seq for e in got] == [2, 3, 4]
        assert got[0].get("emoji") == "🎉" and got[0].get("reactor") == "a"
        assert got[1].get("content") == "hello, edited" and got[2].get("deleted_by") == "a"
        assert all(e.message == root.id and e.num == root.num for e in got)
        after = await a.send("#g", "next")
        assert (await watcher.recv(WAIT_S)).seq == after.seq == 5  # no gap: events held 2..4
        assert [m.content for m in [await plain.recv(WAIT_S) for _ in range(2)]] == [
            "hello",
            "next",
        ]
        with pytest.raises(ValueError, match="events=True"):
            await plain.recv_event(0.01)
        with pytest.raises(RequestTimeout):
            await watcher.recv_event(0.05)


async def test_listen_events_ends_when_the_client_closes():
    async with FakeHub() as hub, client(hub, "a") as a:
        watcher = client(hub, "w", events=True)
        await watcher.connect()
        seen, arrived = [], asyncio.Event()

        async def collect():
            async for event in watcher.listen_events():
                seen.append(event)
                arrived.set()

        task = asyncio.create_task(collect())
        await a.react(await a.send("#g", "x"), "👀")
        await asyncio.wait_for(arrived.wait(), WAIT_S)
        await watcher.close()
        await asyncio.wait_for(task, WAIT_S)  # the iterator ends: no exception, no hang
        assert [e.get("emoji") for e in seen] == ["👀"]


async def test_dm_goes_to_the_sorted_dm_channel():
    async with FakeHub() as hub, client(hub, "zed") as zed, client(hub, "amy") as amy:
        channel = "dm:agent:amy|agent:zed"
        assert zed.dm_channel("amy") == amy.dm_channel("agent:zed") == channel
        await amy.subscribe(channel)
        sent = await zed.dm("amy", "psst")
        assert sent.channel == channel
        got = await amy.recv(WAIT_S)
        assert (got.channel, got.content, got.sender) == (channel, "psst", "zed")
        to_human = await zed.dm("human:ann", "hello")
        assert to_human.channel == "dm:agent:zed|human:ann"
        with pytest.raises(ValueError):
            await zed.dm("zed", "myself")


async def test_search_sends_a_query_with_search_and_returns_messages():
    async with FakeHub() as hub, client(hub, "a") as a:
        await a.send("#g", "deploy failed on staging")
        await a.send("#ops", "deploy failed again")
        await a.send("#g", "all good")
        found = await a.search("deploy failed")
        assert [m.content for m in found] == ["deploy failed again", "deploy failed on staging"]
        only_g = await a.search("deploy", channel="#g", sender="a", limit=5)
        assert [m.channel for m in only_g] == ["#g"]
        assert sent_frames(hub, "query")[-1]["payload"] == {
            "search": "deploy",
            "channel": "#g",
            "sender": "a",
            "limit": 5,
        }
        assert await a.search("nothing like this") == []


async def test_thread_reads_root_and_replies_over_rest():
    async with FakeHub() as hub, client(hub, "a") as a:
        root = await a.send("#g", "root")
        for i in range(3):
            await a.reply(root, f"r{i}")
        with ThreadsApi(hub, token=hub.token) as api:
            reader = client(hub, "reader", dashboard_port=api.port)  # no connection needed
            thread = await reader.thread(root)
            assert thread.root.id == root.id and thread.root.payload["reply_count"] == 3
            assert [m.content for m in thread.replies] == ["r0", "r1", "r2"]
            assert [m.content for m in (await reader.thread(root.num, limit=2)).replies] == [
                "r0",
                "r1",
            ]
            assert api.seen == [f"/api/threads/{root.num}/", f"/api/threads/{root.num}/?limit=2"]
            with pytest.raises(NotFound):
                await reader.thread(999)
            with pytest.raises(ValueError, match="needs its number"):
                await reader.thread(root.id)  # the route takes numbers only
            a.dashboard_port = api.port
            no_num = Sent(id=root.id, channel="#g", seq=root.seq)  # as a hub without num acks
            assert (await a.thread(no_num)).root.id == root.id  # num looked up in history
            assert api.seen[-1] == f"/api/threads/{root.num}/?agent=a"  # read as the agent


def test_sync_client_conversation_calls():
    with hub_in_thread() as hub:
        kw = dict(port=hub.port, token=hub.token, timeout=WAIT_S, channels=["#g"])
        with SyncOrochiClient("s", **kw) as s, SyncOrochiClient("t", events=True, **kw) as t:
            root = s.send("#g", "sync root")
            assert s.reply(root, "sync reply").channel == "#g"
            assert s.react(root, "✅").outcome == "added"
            assert s.edit(root, "sync root!").outcome == "edited"
            assert [m.content for m in s.search("sync reply")] == ["sync reply"]
            assert s.dm_channel("t") == "dm:agent:s|agent:t"
            assert s.dm("t", "dm").channel == "dm:agent:s|agent:t"
            assert t.recv(WAIT_S).content == "sync root"
            assert t.recv_event(WAIT_S).type == "reaction_update"
            assert s.delete(root).outcome == "deleted"


async def test_subscribe_mention_only_says_so_and_plain_subscribe_does_not():
    async with FakeHub() as hub, client(hub, "a") as a:
        await a.subscribe("#full")
        await a.subscribe("#g", mention_only=True)
        full, quiet = sent_frames(hub, "subscribe")
        assert full["payload"] == {"channel": "#full"}  # as the published clients send it
        assert quiet["payload"] == {"channel": "#g", "mention_only": True}
        assert a.channels == ["#full"]  # a reconnect's register does not join #g in full
