"""The per-connection session state machine, with literal frames."""

from __future__ import annotations

import json

import pytest

from gateway_ws.session import Session
from scitex_orochi.protocol import codec


def frame(obj) -> codec.Envelope:
    return codec.parse_frame(json.dumps(obj))


def registered(name="a", channels=("#x",), **payload) -> Session:
    s = Session("w", False, "gw:1", "gw", now=10.0)
    s.register(
        frame(
            {"type": "register", "sender": name, "payload": {"channels": list(channels), **payload}}
        ),
        now=11.0,
    )
    return s


def test_frames_needing_identity_are_refused_before_register():
    s = Session("w", False, "gw:1", "gw", now=0)
    for ftype in ("message", "subscribe", "unsubscribe", "heartbeat", "status_update"):
        payload = {"channel": "#x"} if ftype != "heartbeat" else {}
        with pytest.raises(codec.ProtocolError) as info:
            s.check(frame({"type": ftype, "id": "f1", "payload": payload}))
        assert info.value.code == "NOT_REGISTERED" and info.value.ref == "f1"
    s.check(frame({"type": "presence"}))
    s.check(frame({"type": "query"}))


def test_sender_must_match_the_registered_name():
    s = registered("alice")
    s.check(frame({"type": "message", "sender": "alice", "payload": {"channel": "#x"}}))
    s.check(frame({"type": "message", "payload": {"channel": "#x"}}))
    with pytest.raises(codec.ProtocolError) as info:
        s.check(frame({"type": "message", "sender": "bob", "payload": {"channel": "#x"}}))
    assert info.value.code == "SENDER_MISMATCH"
    s.check(frame({"type": "presence", "sender": "whoever"}))  # reads carry no identity


def test_register_builds_the_presence_record():
    s = registered(
        "alice",
        ("#x", "#y"),
        machine="box",
        role="coder",
        orochi_current_task="tests",
        orochi_subagent_count=3,
    )
    r = s.record
    assert r["name"] == "alice" and r["ws"] == "w" and r["conn"] == "gw:1"
    assert r["agent_id"] == "alice@box" and r["role"] == "coder"
    assert r["channels"] == ["#x", "#y"] and r["since"] == 11.0
    assert r["current_task"] == "tests" and r["subagent_count"] == 3


def test_reregister_reports_channels_left_and_previous_name():
    s = registered("alice", ("#x",))
    left, previous = s.register(
        frame({"type": "register", "sender": "bob", "payload": {"channels": ["#z"]}}), now=12
    )
    assert left == ["#x"] and previous == "alice" and s.channels == ["#z"]


def test_subscribe_unsubscribe_report_changes():
    s = registered()
    assert s.subscribe("#y") and not s.subscribe("#y")
    assert s.record["channels"] == ["#x", "#y"]
    assert s.unsubscribe("#x") and not s.unsubscribe("#x")
    assert s.record["channels"] == ["#y"]


def test_heartbeat_and_status_update_the_record():
    s = registered()
    s.heartbeat({"cpu_count": 2, "orochi_current_task": "t" * 500, "orochi_subagent_count": True})
    assert s.record["resources"] == {"cpu_count": 2}
    assert len(s.record["current_task"]) == codec.MAX_TASK_CHARS
    assert s.record["subagent_count"] == 0
    s.status({"status": "busy", "current_task": "deploy", "role": "ops"})
    assert (s.record["status"], s.record["current_task"], s.record["role"]) == (
        "busy",
        "deploy",
        "ops",
    )
    s.seen(99.0)
    assert s.presence_record()["last_seen"] == 99.0
