"""The client's pure rules with literal input, then the client over a real socket
against `tests/support/fakehub.FakeHub` (a scripted hub speaking PROTOCOL.md)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from scitex_orochi import Message, OrochiClient
from scitex_orochi.client.core import (
    Backoff,
    Cursors,
    Reply,
    Requests,
    build_frame,
    classify,
)
from scitex_orochi.client.errors import (
    AuthError,
    ConnectionFailed,
    NotFound,
    Replaced,
    RequestTimeout,
    ServerError,
)
from scitex_orochi.client.metrics import collect
from scitex_orochi.client.sync import SyncOrochiClient

from support.fakehub import FakeHub

FAST = Backoff(initial_s=0.01, factor=2.0, max_s=0.05)
WAIT_S = 10.0


# ---- pure parts ----------------------------------------------------------------
def test_build_frame_is_a_protocol_envelope():
    frame = build_frame("message", "a", {"channel": "#g", "content": "x"})
    assert set(frame) == {"type", "sender", "payload", "id", "ts"}
    assert frame["ts"].endswith("+00:00") and len(frame["id"]) == 36


def test_message_from_delivered_frame():
    msg = Message.from_frame({"type": "message", "sender": "bob", "id": "i1", "ts": "t",
                              "payload": {"channel": "#g", "content": "hi @ann and a@b.com",
                                          "seq": 7, "metadata": {"k": 1}}})
    assert (msg.channel, msg.sender, msg.seq, msg.id) == ("#g", "bob", 7, "i1")
    assert msg.mentions == ["ann"] and msg.metadata == {"k": 1}


def test_message_from_history_row_prefers_stored_mentions():
    msg = Message.from_row({"msg_id": "m", "ts": "2024-01-01T00:00:00+00:00", "channel": "#g",
                            "sender": "s", "content": "@x", "mentions": ["y"], "seq": 3})
    assert msg.mentions == ["y"] and msg.id == "m" and msg.time.year == 2024


def test_classify_tells_history_replies_from_channel_messages():
    assert classify({"type": "message", "sender": "orochi-server",
                     "payload": {"history": []}}) == "history"
    assert classify({"type": "message", "sender": "bob", "payload": {}}) == "message"
    assert classify({"type": "presence_change", "payload": {}}) == "other"


async def test_requests_match_acks_by_ref_in_any_order():
    loop = asyncio.get_running_loop()
    table = Requests()
    a, b = build_frame("query", "me", {}), build_frame("query", "me", {})
    fa, fb = loop.create_future(), loop.create_future()
    table.add(a, fa, "history")
    table.add(b, fb, "history")
    table.on_reply("history", {"payload": {"history": ["B"], "ref": b["id"]}})
    table.on_reply("history", {"payload": {"history": ["A"], "ref": a["id"]}})
    assert table.on_ack({"payload": {"ref": b["id"]}})
    assert table.on_ack({"payload": {"ref": a["id"]}})
    assert fa.result().reply == {"history": ["A"], "ref": a["id"]}
    assert fb.result().reply["history"] == ["B"] and len(table) == 0


async def test_replies_without_ref_go_to_the_oldest_waiting_request_of_their_kind():
    loop = asyncio.get_running_loop()
    table = Requests()
    who, query = build_frame("presence", "me", {}), build_frame("query", "me", {})
    fw, fq = loop.create_future(), loop.create_future()
    table.add(who, fw, "presence")
    table.add(query, fq, "history")
    table.on_reply("history", {"payload": {"history": [1]}})
    table.on_reply("presence", {"payload": {"agents": {}}})
    table.on_ack({"payload": {"ref": query["id"]}})
    table.on_ack({"payload": {"ref": who["id"]}})
    assert fq.result() == Reply(ack={"ref": query["id"]}, reply={"history": [1]})
    assert fw.result().reply == {"agents": {}}


async def test_error_with_ref_fails_only_its_request():
    loop = asyncio.get_running_loop()
    table = Requests()
    a, b = build_frame("x", "me", {}), build_frame("y", "me", {})
    fa, fb = loop.create_future(), loop.create_future()
    table.add(a, fa)
    table.add(b, fb)
    table.on_error({"payload": {"code": "UNKNOWN_TYPE", "detail": "no", "ref": a["id"]}})
    with pytest.raises(ServerError, match="UNKNOWN_TYPE"):
        fa.result()
    assert not fb.done() and b["id"] in table
    table.on_error({"payload": {"code": "CHANNEL_NOT_FOUND", "ref": b["id"]}})
    assert isinstance(fb.exception(), NotFound)


async def test_only_resendable_requests_survive_a_drop():
    loop = asyncio.get_running_loop()
    table = Requests()
    msg, beat = build_frame("message", "me", {}), build_frame("heartbeat", "me", {})
    fm, fh = loop.create_future(), loop.create_future()
    table.add(msg, fm, resend=True)
    table.add(beat, fh, resend=False)
    table.drop_not_resent(ConnectionFailed("lost"))
    assert isinstance(fh.exception(), ConnectionFailed)
    assert table.to_resend() == [msg]


def test_backoff_grows_caps_and_jitters():
    backoff = Backoff(initial_s=0.1, factor=2.0, max_s=1.0)
    assert [backoff.ceiling(n) for n in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert backoff.delay(3, rand=lambda: 0.0) == 0.4
    assert backoff.delay(3, rand=lambda: 1.0) == 0.8
    assert backoff.delay(1000, rand=lambda: 0.5) == 0.75


def _m(channel, seq, sender="bob", content="x", mentions=()):
    return Message(channel=channel, content=content, sender=sender, seq=seq,
                   mentions=list(mentions))


def test_cursors_drop_duplicates_and_hold_gaps_until_filled():
    cursors = Cursors("me")
    cursors.track("#g")
    cursors.note_head("#g", 2)
    assert [m.seq for m in cursors.accept(_m("#g", 3))] == [3]
    assert cursors.accept(_m("#g", 3)) == []
    assert cursors.accept(_m("#g", 6)) == []  # 4 and 5 missing
    assert cursors.take_gaps() == ["#g"]
    assert cursors.accept(_m("#g", 7)) == []  # held while filling
    assert cursors.begin_fill("#g") == 3
    rows = [_m("#g", 6), _m("#g", 4), _m("#g", 5, sender="me"), _m("#g", 7)]
    assert [m.seq for m in cursors.fill("#g", rows)] == [4, 6, 7]
    assert cursors.end_fill("#g") == []  # 6 and 7 came from the fill already
    assert cursors.last["#g"] == 7


def test_cursors_resume_mention_only_channels_for_our_mentions():
    cursors = Cursors("me")
    assert [m.seq for m in cursors.accept(_m("#other", 10, mentions=["me"]))] == [10]
    assert cursors.accept(_m("#other", 15, mentions=["me"]))  # no gap logic off-channel
    cursors.begin_fill("#other")
    got = cursors.fill("#other", [_m("#other", 16), _m("#other", 17, mentions=["me"])])
    assert [m.seq for m in got] == [17]


def test_own_messages_advance_the_cursor_without_a_gap():
    cursors = Cursors("me")
    cursors.track("#g")
    cursors.note_head("#g", 0)
    cursors.note_own("#g", 1)
    assert [m.seq for m in cursors.accept(_m("#g", 2))] == [2]
    assert cursors.take_gaps() == []


def test_metrics_from_a_fake_proc(tmp_path):
    (tmp_path / "cpuinfo").write_text("processor\t: 0\nmodel name\t: Test CPU 9000\n")
    (tmp_path / "meminfo").write_text("MemTotal:  2048000 kB\nMemAvailable:  512000 kB\n")
    metrics = collect(proc=tmp_path)
    assert metrics["cpu_model"] == "Test CPU 9000"
    assert metrics["mem_total_mb"] == 2000 and metrics["mem_free_mb"] == 500
    assert metrics["mem_used_percent"] == 75.0
    assert 0 <= metrics["disk_used_percent"] <= 100 and metrics["cpu_count"] >= 1


# ---- over a socket ---------------------------------------------------------------
def client(hub: FakeHub, name: str, **kw) -> OrochiClient:
    kw.setdefault("channels", ["#g"])
    return OrochiClient(name, host="127.0.0.1", port=hub.port, token=kw.pop("token", hub.token),
                        backoff=FAST, timeout=WAIT_S, connect_timeout=WAIT_S, **kw)


async def test_send_is_acked_with_seq_and_delivered_to_others():
    async with FakeHub() as hub, client(hub, "a") as a, client(hub, "b") as b:
        sent = await a.send("#g", "hello @b")
        assert (sent.channel, sent.seq, sent.dup) == ("#g", 1, False)
        msg = await b.recv(WAIT_S)
        assert (msg.sender, msg.content, msg.seq, msg.mentions) == ("a", "hello @b", 1, ["b"])
        assert set(await a.who()) == {"a", "b"}
        history = await b.query_history("#g", limit=5)
        assert [m.content for m in history] == ["hello @b"]


@pytest.mark.parametrize("refs", [True, False])
async def test_concurrent_calls_stay_in_step_while_messages_arrive(refs):
    async with FakeHub(refs_on_replies=refs) as hub, client(hub, "a") as a, \
            client(hub, "b") as b:
        for i in range(5):
            hub.post("x", "#h", f"h{i}")

        async def flood():
            for i in range(30):
                await b.send("#g", f"m{i}")

        calls = [a.query_history("#h", limit=i + 1) for i in range(5)]
        calls += [a.who() for _ in range(5)] + [a.send("#g", f"s{i}") for i in range(5)]
        results, _ = await asyncio.gather(asyncio.gather(*calls), flood())
        assert [len(r) for r in results[:5]] == [1, 2, 3, 4, 5]
        assert all(isinstance(r, dict) and "a" in r for r in results[5:10])
        assert sorted(r.content for r in [await a.recv(WAIT_S) for _ in range(30)]) == \
            sorted(f"m{i}" for i in range(30))


async def test_bad_token_raises_auth_error_without_retrying():
    async with FakeHub(token="right") as hub:
        with pytest.raises(AuthError, match="refused the token"):
            await client(hub, "a", token="wrong").connect()
        assert hub.registrations == 0


async def test_cannot_connect_names_the_url():
    async with FakeHub() as hub:
        port = hub.port
    with pytest.raises(ConnectionFailed, match=f"ws://127.0.0.1:{port}/") as info:
        await OrochiClient("a", port=port, token="t", connect_timeout=2).connect()
    assert "token" not in str(info.value)


async def test_second_register_of_a_name_replaces_the_first():
    async with FakeHub() as hub, client(hub, "a") as first:
        async with client(hub, "a"):
            with pytest.raises(Replaced):
                await asyncio.wait_for(first.recv(), WAIT_S)
            with pytest.raises(Replaced):
                await first.who()


async def test_unknown_request_type_is_a_server_error():
    async with FakeHub() as hub, client(hub, "a") as a:
        with pytest.raises(ServerError, match="UNKNOWN_TYPE"):
            await a._request("bogus", {})


async def test_unacked_request_times_out_clearly():
    async with FakeHub() as hub, client(hub, "a") as a:
        hub.hold_acks = True
        with pytest.raises(RequestTimeout, match="no reply to message"):
            await a.send("#g", "x", timeout=0.2)


async def test_resume_after_a_drop_yields_each_missed_message_once_in_order():
    async with FakeHub() as hub, client(hub, "a", channels=["#g", "#k"]) as a:
        await hub.deliver("x", "#g", "before")
        assert (await a.recv(WAIT_S)).content == "before"
        await hub.drop_all()
        for i in range(5):  # stored while `a` is away
            hub.post("x", "#g", f"g{i}")
            hub.post("x", "#k", f"k{i}")
        hub.post("x", "#other", "not for a")
        hub.post("x", "#other", "for @a")
        await hub.wait_registrations(2)
        await hub.deliver("x", "#g", "live")
        got = [await a.recv(WAIT_S) for _ in range(11)]
        per = {c: [m.content for m in got if m.channel == c] for c in ("#g", "#k")}
        assert per["#g"] == [f"g{i}" for i in range(5)] + ["live"]
        assert per["#k"] == [f"k{i}" for i in range(5)]
        assert a.pending_messages() == 0 and a.reconnects == 1


async def test_unacked_send_is_resent_with_the_same_id_after_a_drop():
    async with FakeHub() as hub, client(hub, "a") as a:
        hub.hold_acks = True
        task = asyncio.create_task(a.send("#g", "once"))
        await hub.wait_stored("#g", 1)
        hub.hold_acks = False
        await hub.drop_all()
        sent = await asyncio.wait_for(task, WAIT_S)
        assert sent.dup and sent.seq == 1 and len(hub.rows["#g"]) == 1
        sends = [f for f in hub.frames if f["type"] == "message"]
        assert len(sends) == 2 and sends[0]["id"] == sends[1]["id"] == sent.id


async def test_a_gap_in_live_seq_is_filled_from_history():
    async with FakeHub() as hub, client(hub, "a") as a:
        hub.post("x", "#g", "skipped")  # stored, never delivered live
        await hub.deliver("x", "#g", "seen")
        got = [await a.recv(WAIT_S) for _ in range(2)]
        assert [(m.seq, m.content) for m in got] == [(1, "skipped"), (2, "seen")]


async def test_heartbeat_carries_metrics_and_subscribe_changes_membership():
    async with FakeHub() as hub, client(hub, "a") as a, client(hub, "b") as b:
        await a.heartbeat()
        beat = next(f for f in hub.frames if f["type"] == "heartbeat")
        assert "cpu_count" in beat["payload"]
        await a.subscribe("#new")
        await a.update_status("busy", current_task="testing")
        await b.send("#new", "on new")
        assert (await a.recv(WAIT_S)).channel == "#new"
        await a.unsubscribe("#new")
        assert "a" not in hub.members["#new"]


async def test_listen_ends_when_the_client_closes():
    async with FakeHub() as hub:
        a = await client(hub, "a").connect()
        seen: list[str] = []

        async def consume():
            async for msg in a.listen():
                seen.append(msg.content)

        task = asyncio.create_task(consume())
        await hub.deliver("x", "#g", "one")
        await a.close()
        await asyncio.wait_for(task, WAIT_S)
        assert seen == ["one"]


def test_sync_client_in_a_script():
    ready = threading.Event()
    stop: asyncio.Future | None = None
    box: dict = {}

    def run_hub():
        async def main():
            nonlocal stop
            async with FakeHub() as hub:
                box["hub"] = hub
                stop = asyncio.get_running_loop().create_future()
                box["loop"] = asyncio.get_running_loop()
                ready.set()
                await stop
        asyncio.run(main())

    thread = threading.Thread(target=run_hub, daemon=True)
    thread.start()
    assert ready.wait(WAIT_S)
    hub = box["hub"]
    try:
        with SyncOrochiClient("s", port=hub.port, token=hub.token, channels=["#g"]) as a, \
                SyncOrochiClient("t", port=hub.port, token=hub.token, channels=["#g"]) as b:
            sent = a.send("#g", "from a script")
            assert sent.seq == 1
            assert b.recv(timeout=WAIT_S).content == "from a script"
            assert set(a.who()) == {"s", "t"}
            assert [m.content for m in b.query_history("#g")] == ["from a script"]
    finally:
        box["loop"].call_soon_threadsafe(stop.set_result, None)
        thread.join(WAIT_S)
