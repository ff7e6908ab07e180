"""The client's conversation rules with literal input: message references, DM channel
names, the react/edit/delete/search payloads, acks, events, threads and the cursor with
events in the seq stream (over a socket: tests/component/test_client_conv_fakehub.py)."""

from __future__ import annotations

import asyncio

import pytest

from scitex_orochi import Message
from scitex_orochi.client.core import (
    Changed,
    Cursors,
    Event,
    Requests,
    Sent,
    Thread,
    build_frame,
    channel_of,
    classify,
    dm_channel_for,
    edit_payload,
    error_from_payload,
    item_from_row,
    message_ref,
    react_payload,
    reply_metadata,
    search_payload,
)
from scitex_orochi.client.errors import NotFound, ServerError
from scitex_orochi.protocol.conversations import ConversationError, dm_participants


def msg(seq: int, channel: str = "#g", sender: str = "x", content: str = "m") -> Message:
    return Message(channel=channel, content=content, sender=sender, seq=seq, id=f"id{seq}")


def event(seq: int, channel: str = "#g", type_: str = "reaction_update") -> Event:
    return Event.from_payload(type_, {"channel": channel, "seq": seq, "message": "id1", "num": 1})


# ---- names ---------------------------------------------------------------------------
def test_message_ref_takes_ids_numbers_digits_and_objects():
    assert message_ref("abc-1") == "abc-1"
    assert message_ref(42) == 42 and message_ref("42") == 42 and message_ref(" 007 ") == 7
    assert message_ref(Sent(id="s1", channel="#g", seq=3)) == "s1"
    assert message_ref(msg(3)) == "id3"
    assert message_ref(Message(channel="#g", content="", sender="x", num=9)) == 9
    for bad in ("", "   ", 0, -3, "0"):
        with pytest.raises(ValueError):
            message_ref(bad)
    with pytest.raises(TypeError):
        message_ref(True)
    assert channel_of(msg(1, "#h")) == "#h" and channel_of("id") is None


def test_dm_channel_is_sorted_agent_keys_and_takes_human_keys():
    assert dm_channel_for("bob", "alice") == "dm:agent:alice|agent:bob"
    assert dm_channel_for("alice", "agent:bob") == "dm:agent:alice|agent:bob"
    channel = dm_channel_for("zed", "human:ann")
    assert channel == "dm:agent:zed|human:ann"
    assert dm_participants(channel) == ("agent:zed", "human:ann")  # the hub's own check
    with pytest.raises(ConversationError):
        dm_channel_for("bob", "bob")
    with pytest.raises(ConversationError):
        dm_channel_for("bob", "has space")


# ---- frames ----------------------------------------------------------------------------
def test_change_and_search_payloads_follow_the_contract():
    assert react_payload("m1", "👍") == {"message": "m1", "emoji": "👍", "action": "add"}
    assert react_payload(5, "👍", remove=True)["action"] == "remove"
    assert edit_payload(5, "new") == {"message": 5, "content": "new"}
    assert search_payload("deploy failed") == {"search": "deploy failed"}
    assert search_payload("x", channel="#g", sender="bob", limit=5, after="2024-01-01") == {
        "search": "x",
        "channel": "#g",
        "sender": "bob",
        "limit": 5,
        "after": "2024-01-01",
    }
    assert reply_metadata(7, {"k": 1}) == {"k": 1, "reply_to": 7}
    frame = build_frame("react", "a", react_payload("m1", "🎉"))
    assert frame["type"] == "react" and frame["payload"]["message"] == "m1"


def test_ack_of_a_change_and_error_codes():
    changed = Changed.from_ack({"status": "ok", "ref": "r", "seq": 9, "num": 4, "outcome": "added"})
    assert changed == Changed(ref="r", outcome="added", seq=9, num=4)
    assert changed.to_dict() == {"ref": "r", "outcome": "added", "seq": 9, "num": 4}
    assert isinstance(error_from_payload({"code": "UNKNOWN_MESSAGE"}), NotFound)
    assert isinstance(error_from_payload({"code": "unknown_message"}), NotFound)
    forbidden = error_from_payload({"code": "FORBIDDEN", "detail": "not yours"})
    assert type(forbidden) is ServerError and forbidden.code == "FORBIDDEN"


async def test_an_error_ack_fails_its_request_even_without_an_error_frame():
    requests = Requests()
    future = asyncio.get_running_loop().create_future()
    frame = build_frame("delete", "a", {"message": 1})
    requests.add(frame, future)
    ack = {"type": "ack", "payload": {"status": "error", "ref": frame["id"], "code": "FORBIDDEN"}}
    assert requests.on_ack(ack)
    with pytest.raises(ServerError, match="FORBIDDEN"):
        await future


# ---- events, threads, folded rows --------------------------------------------------
def test_events_are_classified_and_parsed():
    frame = {
        "type": "message_edit",
        "sender": "orochi-server",
        "ts": "t",
        "payload": {
            "channel": "#g",
            "seq": 5,
            "message": "m1",
            "num": 2,
            "content": "new",
            "editor": "a",
            "edited_at": "t2",
        },
    }
    assert classify(frame) == "event"
    ev = Event.from_frame(frame)
    assert (ev.type, ev.channel, ev.seq, ev.message, ev.num) == ("message_edit", "#g", 5, "m1", 2)
    assert ev.get("content") == "new" and ev.to_dict()["type"] == "message_edit"
    row = item_from_row({"event": "message_delete", "channel": "#g", "seq": 6, "message": "m1"})
    assert isinstance(row, Event) and row.type == "message_delete" and "event" not in row.payload
    assert isinstance(item_from_row({"msg_id": "m", "channel": "#g", "seq": 1}), Message)


def test_folded_rows_and_threads():
    row = {
        "msg_id": "r1",
        "num": 3,
        "channel": "#g",
        "sender": "b",
        "content": "answer",
        "seq": 4,
        "metadata": {"reply_to": "m1"},
        "thread": {"root": "m1", "num": 1},
        "reactions": {"👍": ["a"]},
        "edited_at": "t",
    }
    m = Message.from_row(row)
    assert (m.num, m.reply_to, m.thread, m.reactions, m.edited_at) == (
        3,
        "m1",
        {"root": "m1", "num": 1},
        {"👍": ["a"]},
        "t",
    )
    out = m.to_dict()
    assert out["num"] == 3 and out["thread"]["root"] == "m1" and out["reactions"] == {"👍": ["a"]}
    plain = Message.from_row({"msg_id": "p", "channel": "#g", "sender": "s", "content": "x"})
    assert set(plain.to_dict()) == {
        "id",
        "ts",
        "channel",
        "sender",
        "content",
        "mentions",
        "seq",
        "metadata",
        "attachments",
        "sender_type",
    }  # an unchanged message reads exactly as before
    thread = Thread.from_rest(
        {"root": {"msg_id": "m1", "num": 1, "content": "q"}, "replies": [row | {"seq": 9}, row]}
    )
    assert thread.root.id == "m1" and [r.seq for r in thread.replies] == [4, 9]
    assert Thread.from_rest(None).replies == []


# ---- cursors with events -----------------------------------------------------------
def test_events_advance_the_cursor_and_are_dropped_when_seen():
    cursors = Cursors("me")
    cursors.track("#g")
    cursors.note_head("#g", 3)
    assert cursors.accept_event(event(4))
    assert cursors.last["#g"] == 4
    assert not cursors.accept_event(event(4))  # a duplicate
    assert cursors.accept(msg(5)) == [msg(5)]  # no gap: the event took seq 4


def test_an_event_delivered_during_a_fill_is_not_delivered_again_by_it():
    cursors = Cursors("me")
    cursors.track("#g")
    cursors.note_head("#g", 3)
    assert cursors.accept(msg(6)) == []  # a gap: 4 and 5 missing
    assert cursors.take_gaps() == ["#g"]
    assert cursors.begin_fill("#g") == 3
    assert cursors.accept_event(event(5))  # live, during the fill
    filled = cursors.fill("#g", [msg(4), event(5), msg(6)])
    assert [(type(i).__name__, i.seq) for i in filled] == [("Message", 4), ("Message", 6)]
    assert cursors.end_fill("#g") == []
    assert cursors.last["#g"] == 6


def test_an_event_ahead_of_the_cursor_is_stepped_over_once_the_gap_closes():
    cursors = Cursors("me")
    cursors.track("#g")
    cursors.note_head("#g", 1)
    assert cursors.accept_event(event(3))  # seq 2 not seen yet
    assert cursors.last["#g"] == 1
    assert cursors.accept(msg(2)) == [msg(2)]
    assert cursors.last["#g"] == 3  # the event seen already
    assert cursors.accept(msg(4)) == [msg(4)] and cursors.take_gaps() == []
    assert not cursors.accept_event(event(3))
