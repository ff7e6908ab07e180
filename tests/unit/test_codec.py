"""Pure tests of the protocol codec: literal frames in, literal errors and replies out."""

from __future__ import annotations

import json

import pytest

from scitex_orochi.protocol import codec


def parse(obj) -> codec.Envelope:
    return codec.parse_frame(json.dumps(obj))


def error_of(text) -> codec.ProtocolError:
    with pytest.raises(codec.ProtocolError) as info:
        codec.parse_frame(text)
    return info.value


def test_message_defaults_are_filled():
    f = parse({"type": "message", "sender": "a", "id": "m1", "payload": {"channel": "#g"}})
    assert f.payload == {"channel": "#g", "content": "", "metadata": {}, "attachments": []}
    assert f.id == "m1" and f.sender == "a"
    assert f.ts.endswith("+00:00")


def test_missing_id_and_ts_are_generated():
    f = parse({"type": "presence"})
    assert len(f.id) == 36 and f.ts


@pytest.mark.parametrize(
    "text, code, has_ref",
    [
        ("not json", "PARSE_ERROR", False),
        ("[1, 2]", "PARSE_ERROR", False),
        ('{"payload": {}}', "PARSE_ERROR", False),
        ('{"type": 5}', "PARSE_ERROR", False),
        ('{"type": "dance", "id": "x"}', "UNKNOWN_TYPE", True),
        ('{"type": "message", "id": "x", "payload": []}', "INVALID_FIELD", True),
        ('{"type": "message", "id": "x", "payload": {}}', "INVALID_FIELD", True),
        ('{"type": "message", "id": "x", "payload": {"channel": 7}}', "INVALID_FIELD", True),
        (
            '{"type": "message", "id": "x", "payload": {"channel": "#a", "content": 1}}',
            "INVALID_FIELD",
            True,
        ),
        (
            '{"type": "message", "id": "x", "payload": {"channel": "#a", "metadata": "m"}}',
            "INVALID_FIELD",
            True,
        ),
        ('{"type": "message", "id": "x", "payload": {"channel": "#a b"}}', "INVALID_FIELD", True),
        ('{"type": "query", "id": "x", "payload": {"limit": "5"}}', "INVALID_FIELD", True),
        ('{"type": "query", "id": "x", "payload": {"limit": 0}}', "INVALID_FIELD", True),
        ('{"type": "query", "id": "x", "payload": {"after_seq": true}}', "INVALID_FIELD", True),
        ('{"type": "register", "id": "x", "payload": {}}', "INVALID_FIELD", True),
        (
            '{"type": "register", "id": "x", "sender": "a", "payload": {"channels": [1]}}',
            "INVALID_FIELD",
            True,
        ),
        ('{"type": "message", "id": 12, "payload": {"channel": "#a"}}', "PARSE_ERROR", False),
    ],
)
def test_bad_frames_get_the_right_code(text, code, has_ref):
    err = error_of(text)
    assert err.code == code
    assert (err.ref == "x") is has_ref


def test_unknown_type_detail_names_the_type():
    assert error_of('{"type": "dance"}').detail == "Unknown message type: dance"


def test_binary_frames_are_refused():
    assert error_of(b"\x00\x01").code == "PARSE_ERROR"


def test_deep_nesting_is_a_parse_error_not_a_crash():
    text = "[" * 100_000 + "]" * 100_000
    assert error_of(text).code == "PARSE_ERROR"


def test_register_accepts_a_single_channel_string_and_dedupes():
    f = parse({"type": "register", "sender": "a", "payload": {"channels": "#x"}})
    assert f.payload["channels"] == ["#x"]
    f = parse({"type": "register", "sender": "a", "payload": {"channels": ["#x", "#x", "#y"]}})
    assert f.payload["channels"] == ["#x", "#y"]


def test_query_defaults_to_general():
    assert parse({"type": "query"}).payload["channel"] == "#general"


def test_ack_and_error_shapes():
    ack = json.loads(codec.ack("r1", seq=3, channel="#g"))
    assert ack["type"] == "ack" and ack["sender"] == "orochi-server"
    assert ack["payload"] == {"status": "ok", "ref": "r1", "seq": 3, "channel": "#g"}
    err = json.loads(codec.error("AUTH_FAILED", "Invalid or missing token"))
    assert err["payload"] == {"code": "AUTH_FAILED", "detail": "Invalid or missing token"}


def test_history_and_presence_replies():
    h = json.loads(codec.history_reply("#g", [{"seq": 1}], "q1"))
    assert h["type"] == "message" and h["payload"]["history"] == [{"seq": 1}]
    assert h["payload"]["content"] == "" and h["payload"]["channel"] == "#g"
    p = json.loads(codec.presence_reply({"a": ["#g"]}))
    assert p == {**p, "type": "presence", "payload": {"agents": {"a": ["#g"]}}}


def test_frame_from_row_carries_seq():
    row = {
        "msg_id": "m",
        "ts": "t",
        "channel": "#g",
        "sender": "a",
        "content": "hi",
        "metadata": {},
        "attachments": [],
        "mentions": ["b"],
        "seq": 9,
    }
    f = json.loads(codec.frame_from_row(row))
    assert f["id"] == "m" and f["payload"]["seq"] == 9 and f["payload"]["mentions"] == ["b"]


def test_heartbeat_resources_keep_known_numeric_keys():
    res = codec.heartbeat_resources(
        {
            "cpu_count": 4,
            "mem_used_percent": 51.5,
            "evil": 1,
            "load_avg_1m": True,
            "cpu_model": "x" * 500,
        }
    )
    assert res == {"cpu_count": 4, "mem_used_percent": 51.5}
