"""The client's pure rules with literal input: frames, messages, request matching, backoff,
resume cursors, metrics from a fake /proc (the client over a socket is
tests/component/test_client_fakehub.py)."""

from __future__ import annotations

import asyncio

import pytest

from scitex_orochi import Message
from scitex_orochi.client.core import Backoff, Cursors, Reply, Requests, build_frame, classify
from scitex_orochi.client.errors import ConnectionFailed, NotFound, ServerError
from scitex_orochi.client.metrics import collect


def test_build_frame_is_a_protocol_envelope():
    frame = build_frame("message", "a", {"channel": "#g", "content": "x"})
    assert set(frame) == {"type", "sender", "payload", "id", "ts"}
    assert frame["ts"].endswith("+00:00") and len(frame["id"]) == 36


def test_message_from_delivered_frame():
    msg = Message.from_frame(
        {
            "type": "message",
            "sender": "bob",
            "id": "i1",
            "ts": "t",
            "payload": {
                "channel": "#g",
                "content": "hi @ann and a@b.com",
                "seq": 7,
                "metadata": {"k": 1},
            },
        }
    )
    assert (msg.channel, msg.sender, msg.seq, msg.id) == ("#g", "bob", 7, "i1")
    assert msg.mentions == ["ann"] and msg.metadata == {"k": 1}


def test_message_from_history_row_prefers_stored_mentions():
    msg = Message.from_row(
        {
            "msg_id": "m",
            "ts": "2024-01-01T00:00:00+00:00",
            "channel": "#g",
            "sender": "s",
            "content": "@x",
            "mentions": ["y"],
            "seq": 3,
        }
    )
    assert msg.mentions == ["y"] and msg.id == "m" and msg.time.year == 2024


def test_classify_tells_history_replies_from_channel_messages():
    assert (
        classify({"type": "message", "sender": "orochi-server", "payload": {"history": []}})
        == "history"
    )
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
    return Message(
        channel=channel, content=content, sender=sender, seq=seq, mentions=list(mentions)
    )


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
