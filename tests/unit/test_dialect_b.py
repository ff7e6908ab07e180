"""DialectB (gateway_ws/dialect_b.py) with literal frames: what B's frames become, how
deliveries are shaped for B, and the Roster's shared names."""

from __future__ import annotations

import json

import pytest

from gateway_ws.delivery import DeliveryCore
from gateway_ws.dialect import DIALECT_A
from gateway_ws.dialect_b import DialectB, b_channel
from gateway_ws.routing import Roster
from gateway_ws.service import dialect_for
from scitex_orochi.protocol import codec
from scitex_orochi.protocol import conversations as conv


def parse(raw: dict) -> codec.Envelope:
    return DialectB("alice").parse(json.dumps(raw))


def test_the_dialect_is_b_only_on_the_agent_path_with_an_agent():
    assert isinstance(dialect_for("/ws/agent/?token=t&agent=alice"), DialectB)
    assert dialect_for("/ws/agent/?token=t&agent=alice").agent == "alice"  # type: ignore[attr-defined]
    for path in ("/?token=t&agent=alice", "/ws/agent/?token=t", "/ws/agent?agent=a", "/"):
        assert dialect_for(path) is DIALECT_A


def test_register_takes_the_name_from_the_url_and_keeps_no_claude_md():
    env = parse(
        {
            "type": "register",
            "sender": "whatever",
            "payload": {
                "hostname": "h1",
                "role": "head",
                "orochi_claude_md": "x" * 200_000,
                "icon": "🐍",
                "instance_id": "i1",
                "start_ts_unix": 1.0,
            },
        }
    )
    assert env.type == "register" and env.sender == "alice"
    assert env.payload["channels"] == [] and env.payload["machine"] == "h1"
    assert env.payload["instance_id"] == "i1"
    assert "orochi_claude_md" not in env.payload and "icon" not in env.payload
    cli = parse({"type": "register", "payload": {"channels": ["general", "dm:agent:a|agent:b"]}})
    assert cli.payload["channels"] == ["#general", "dm:agent:a|agent:b"]
    no_ts = parse({"type": "register", "payload": {"instance_id": "i1"}})
    assert "instance_id" not in no_ts.payload  # the 4409 rule needs start_ts_unix too


def test_messages_take_text_bare_channels_and_metadata_attachments():
    att = {"url": "/media/a.png", "filename": "a.png"}
    env = parse(
        {
            "type": "message",
            "sender": "alice",
            "payload": {
                "channel": "general",
                "text": "hi",
                "metadata": {"reply_to": 7, "attachments": [att]},
            },
        }
    )
    assert env.payload["channel"] == "#general" and env.payload["content"] == "hi"
    assert env.payload["metadata"] == {"reply_to": 7} and env.payload["attachments"] == [att]
    assert (
        parse({"type": "message", "payload": {"channel": "#x", "content": "c"}}).payload["content"]
        == "c"
    )
    assert b_channel("dm:agent:a|agent:b") == "dm:agent:a|agent:b"
    with pytest.raises(codec.ProtocolError) as exc:
        parse({"type": "message", "payload": {"text": "x"}})
    assert json.loads(DialectB("a").unreadable(exc.value)[0])["code"] == "channel_required"


def test_liveness_frames_become_b_only_envelopes():
    b = DialectB("alice")
    assert b.parse('{"type":"task_update","payload":{"task":"' + "t" * 300 + '"}}').payload == {
        "task": "t" * 200
    }
    subs = b.parse(
        json.dumps(
            {"type": "subagents_update", "payload": {"subagents": [{"name": "s", "x": 1}, 3]}}
        )
    )
    assert subs.payload == {"count": 2, "subagents": [{"name": "s"}]}
    assert b.parse('{"type":"pong","payload":{"ts":12.5}}').payload == {"ts": 12.5}
    echo = json.loads(b.echo(100.0))
    got = b.parse(json.dumps({"type": "echo_pong", "nonce": echo["nonce"], "ts": 1}))
    assert got.payload == {"sent": 100.0}
    again = b.parse(json.dumps({"type": "echo_pong", "nonce": echo["nonce"]}))
    assert again.payload == {"sent": None}  # each nonce answers once


def test_replies_are_flat_with_b_codes_and_no_acks():
    b = DialectB("alice")
    assert b.ack("r1", seq=3) is None
    assert json.loads(b.registered("r", ["#general"]) or "") == {
        "type": "registered",
        "channels": ["#general"],
    }
    assert json.loads(b.subscribed("r", "unsubscribe", "#x", [], False) or "")["type"] == (
        "unsubscribed"
    )
    with pytest.raises(codec.ProtocolError) as exc:
        b.parse('{"type":"bogus"}')
    assert json.loads(b.unreadable(exc.value)[0]) == {
        "type": "error",
        "code": "unknown_type",
        "message": "Unknown message type: bogus",
    }
    assert json.loads(b.refusal("NOT_REGISTERED", "x", "r")[0])["code"] == "not_registered"
    assert json.loads(b.refusal("NOT_A_MEMBER", "x", "r")[0])["code"] == "acl_denied"


def a_frame(thread=None, attachments=()):
    payload = {
        "channel": "#g",
        "content": "hello",
        "metadata": {"k": 1},
        "attachments": list(attachments),
        "seq": 4,
        "mentions": [],
        "sender_type": "human",
    }
    if thread:
        payload["thread"] = thread
    return codec.dumps(
        {"type": "message", "sender": "bob", "id": "m-1", "ts": "T", "payload": payload}
    )


def test_deliveries_become_flat_messages_thread_replies_and_events():
    body = {"ws": "w", "channel": "#g", "seq": 4, "id": "m-1", "sender": "bob", "mentions": []}
    msg = json.loads(DialectB.delivery({**body, "frame": a_frame(), "num": 41}) or "")
    assert msg == {
        "type": "message",
        "id": 41,
        "sender": "bob",
        "sender_type": "human",
        "channel": "#g",
        "text": "hello",
        "ts": "T",
        "metadata": {"k": 1},
    }
    reply = DialectB.delivery(
        {**body, "frame": a_frame({"root": "m-0", "num": 40}, [{"url": "u"}]), "num": 42}
    )
    assert json.loads(reply or "") == {
        "type": "thread_reply",
        "parent_id": 40,
        "reply_id": 42,
        "sender": "bob",
        "sender_type": "human",
        "channel": "#g",
        "text": "hello",
        "ts": "T",
        "metadata": {"k": 1, "attachments": [{"url": "u"}]},
    }
    event = conv.event_frame(
        "reaction_update",
        "e1",
        "T",
        conv.reaction_update(
            channel="#g", seq=5, message="m-1", num=41, emoji="👍", reactor="c", action="remove"
        ),
    )
    got = DialectB.delivery({**body, "frame": event, "num": 41, "event": "reaction_update"})
    assert json.loads(got or "") == {
        "type": "reaction_update",
        "message_id": 41,
        "emoji": "👍",
        "reactor": "c",
        "action": "removed",
    }


class Conn:
    def __init__(self, name: str, dialect) -> None:
        self.name, self.dialect = name, dialect

    def __repr__(self) -> str:
        return f"<{self.name} {self.dialect.name}>"


def test_shared_names_reach_every_holder_once_never_the_sender_and_survive_a_leave():
    roster: Roster[Conn] = Roster()
    one, two = Conn("ann", DialectB("ann")), Conn("ann", DialectB("ann"))
    bob = Conn("bob", DIALECT_A)
    roster.bind_shared("w", "ann", one)
    roster.bind_shared("w", "ann", two)
    roster.bind("w", "bob", bob)
    for conn in (one, two, bob):
        roster.join("w", "#g", conn)
    assert roster.holders("w", "ann") == [two, one]
    assert set(roster.recipients("w", "#g", [], "bob")) == {one, two}
    assert roster.recipients("w", "#g", [], "ann") == [bob]
    assert set(roster.recipients("w", "#other", ["ann"], "bob")) == {one, two}
    assert set(roster.recipients("w", "dm:agent:ann|agent:bob", [], "bob")) == {one, two}
    assert roster.unbind("w", "ann", two) is one  # the other holder takes the name
    assert roster.holders("w", "ann") == [one]
    assert roster.unbind("w", "ann", one) is None and roster.holders("w", "ann") == []

    # One encoding per dialect; events reach B without the capability.
    roster.bind_shared("w", "ann", one)
    encoded: list[str] = []

    def encode(text: str) -> tuple[bytes, bytes]:
        encoded.append(text)
        return text.encode(), text.encode()

    core: DeliveryCore[Conn] = DeliveryCore(
        roster, encode, lambda c: c.dialect.all_events, lambda c: c.dialect
    )
    core.others = 1
    body = {"ws": "w", "channel": "#g", "seq": 1, "id": "m", "sender": "zed", "mentions": []}
    out, _gaps = core.offer([{**body, "frame": a_frame(), "num": 9}])
    assert json.loads(out[one][0][0])["id"] == 9 and json.loads(out[bob][0][0])["id"] == "m-1"
    assert len(encoded) == 2
