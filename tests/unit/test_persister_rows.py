"""The persister's pure row mapping (persister.rows): literal inbound bodies in, rows and
delivery envelopes out, the hand-spliced envelope checked against json by hypothesis."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from persister.rows import (
    InvalidInbound,
    build_message,
    delivery_from_row,
    parse_inbound,
    ts_and_epoch,
)
from scitex_orochi.hub.store import INSERT_COLUMNS

from support.persister import inbound


def test_parse_inbound_rejections_name_the_problem():
    good = inbound("gw-1")
    assert parse_inbound(good).channel == "#general"
    cases = {
        "origin": lambda b: b.pop("origin"),
        "ws": lambda b: b.update(ws="a|b"),
        "frame.type": lambda b: b["frame"].update(type="register"),
        "frame.sender": lambda b: b["frame"].update(sender=""),
        "payload.channel": lambda b: b["frame"]["payload"].pop("channel"),
        "payload.metadata": lambda b: b["frame"]["payload"].update(metadata=[1]),
        "payload.attachments": lambda b: b["frame"]["payload"].update(attachments="x"),
        "sender_type": lambda b: b.update(sender_type="robot"),
        "mentions": lambda b: b.update(mentions=[1]),
        "frame.id": lambda b: b["frame"].pop("id"),
    }
    for what, spoil in cases.items():
        body = json.loads(json.dumps(good))
        spoil(body)
        with pytest.raises(InvalidInbound, match=what.replace(".", r"\.")) as info:
            parse_inbound(body)
        assert info.value.origin == (None if what == "origin" else "gw-1")
    with pytest.raises(InvalidInbound):
        parse_inbound([1, 2])
    missing = json.loads(json.dumps(good))
    del missing["mentions"]
    missing["frame"]["payload"]["content"] = "hi @carol and a@b.com"
    assert parse_inbound(missing).mentions == ["carol"]


def row_of(params: tuple) -> dict:
    """build_message's insert parameters as the row Store.find_messages returns."""
    row = dict(zip(INSERT_COLUMNS, params, strict=True))
    row["num"] = row.pop("pk")  # history rows call the hub number `num`
    for key in ("mentions", "metadata", "attachments"):
        row[key] = json.loads(row[key])
    return row


def test_build_message_and_rebuild_from_row_agree():
    body = inbound("gw-1", content="hi @bob")
    del body["frame"]["payload"]["extra"]
    params, delivery = build_message(parse_inbound(body), 7, 7)
    row = row_of(params)
    assert row["seq"] == 7 and row["ts_epoch"] == 1735787045.678901
    assert row["mentions"] == ["bob"] and row["metadata"] == {"k": "v"}
    frame = json.loads(delivery["frame"])
    assert frame["payload"]["seq"] == 7 and frame["payload"]["mentions"] == ["bob"]
    assert body["frame"]["payload"].get("seq") is None  # the inbound body is not mutated
    # Live delivery and history replay are byte for byte the same envelope.
    assert delivery_from_row(row) == delivery


def test_a_reply_carries_its_thread_live_and_in_replay():
    body = inbound("gw-1", content="on it")
    del body["frame"]["payload"]["extra"]
    params, delivery = build_message(parse_inbound(body), 4, 12, thread=(9, "root-id"))
    frame = json.loads(delivery["frame"])
    assert frame["payload"]["thread"] == {"root": "root-id", "num": 9}
    assert delivery["num"] == 12
    row = row_of(params)
    row["thread"] = {"root": "root-id", "num": 9}  # what history folding gives
    assert delivery_from_row(row) == delivery


def test_build_message_keeps_what_the_agent_sent():
    """Unknown keys and odd values survive; missing documented fields are added."""
    body = inbound("gw-1", content="hi")  # payload carries "extra": 1
    body["frame"]["reply_to"] = "m-1"
    frame = json.loads(build_message(parse_inbound(body), 3, 3)[1]["frame"])
    assert frame["reply_to"] == "m-1" and frame["payload"]["extra"] == 1
    assert frame["payload"]["seq"] == 3 and frame["payload"]["content"] == "hi"

    bare = inbound("gw-1")
    bare["frame"]["payload"] = {"channel": "#general", "content": None, "metadata": None}
    params, delivery = build_message(parse_inbound(bare), 1, 1)
    payload = json.loads(delivery["frame"])["payload"]
    assert payload["content"] is None and payload["metadata"] is None  # as sent
    assert payload["attachments"] == [] and payload["mentions"] == []  # added
    assert row_of(params)["content"] == "" and row_of(params)["metadata"] == {}


text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)


json_leaf = st.none() | st.booleans() | st.integers(-(10**6), 10**6) | text


json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    sender=text.filter(bool),
    channel=text.filter(lambda c: c and "|" not in c),
    content=text,
    metadata=st.dictionaries(text, json_value, max_size=3),
    attachments=st.lists(json_value, max_size=3),
    mentions=st.lists(text, max_size=3),
    seq=st.integers(1, 2**53),
)
def test_spliced_envelope_is_the_json_of_the_frame(
    sender, channel, content, metadata, attachments, mentions, seq
):
    """The fast path spells the envelope out by hand: it must decode to exactly the frame
    as sent plus seq, mentions and sender_type, for any text (quotes, controls,
    non-ASCII)."""
    sent = {
        "type": "message",
        "sender": sender,
        "id": 'm"1\u2028',
        "ts": "2025-01-02T03:04:05+00:00",
        "payload": {
            "channel": channel,
            "content": content,
            "metadata": metadata,
            "attachments": attachments,
        },
    }
    body = {
        "origin": "gw-1",
        "ws": "default",
        "sender_type": "agent",
        "mentions": mentions,
        "frame": sent,
    }
    delivery = build_message(parse_inbound(body), seq, seq)[1]
    expected = json.loads(json.dumps(sent))
    expected["payload"].update(seq=seq, mentions=mentions, sender_type="agent")
    assert json.loads(delivery["frame"]) == expected


def test_unparsable_ts_is_kept_with_now_as_epoch():
    assert ts_and_epoch("2025-01-01T00:00:00Z")[1] == 1735689600.0
    assert ts_and_epoch("garbage", now=5.0) == ("garbage", 5.0)
    ts, epoch = ts_and_epoch(None, now=5.0)
    assert epoch == 5.0 and ts == "1970-01-01T00:00:05+00:00"
