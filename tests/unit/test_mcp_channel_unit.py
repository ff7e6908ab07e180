"""What the MCP server raises as a Claude Code channel event for a message, with literal
input (the server itself: tests/component/test_mcp.py)."""

from __future__ import annotations

import re

from scitex_orochi import Message
from scitex_orochi.client.mcp_server import channel_notification

SAFE_META_KEY = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")  # what Claude Code keeps


def message(**kw) -> Message:
    fields = {"channel": "#g", "content": "hi", "sender": "bob", "id": "m1", "ts": "t", **kw}
    return Message(**fields)


def test_a_plain_message_carries_channel_sender_id_ts_and_what_is_known():
    params = channel_notification(message(seq=4, num=9, mentions=["me"]), "me")
    assert params == {
        "content": "hi",
        "meta": {
            "channel": "#g",
            "sender": "bob",
            "id": "m1",
            "ts": "t",
            "seq": "4",
            "num": "9",
            "mentions": "me",
        },
    }


def test_meta_is_strings_under_identifier_keys():
    msg = message(
        channel="dm:agent:bob|agent:me",
        sender_type="agent",
        metadata={"reply_to": 3},
        thread={"root": "r", "num": 3},
        attachments=[{"url": "/media/x"}],
        num=10,
    )
    meta = channel_notification(msg, "me")["meta"]
    assert meta["dm_with"] == "agent:bob" and meta["reply_to"] == "3"
    assert meta["thread_root"] == "r" and meta["attachments"] == "1"
    assert all(isinstance(v, str) for v in meta.values())
    assert all(SAFE_META_KEY.match(k) for k in meta)


def test_own_and_empty_messages_are_not_raised():
    assert channel_notification(message(sender="me"), "me") is None
    assert channel_notification(message(content="  "), "me") is None
    assert channel_notification(message(content="", attachments=[{"url": "x"}]), "me")
    # a DM the agent is not in (an admin token sees every DM): no partner to name
    meta = channel_notification(message(channel="dm:agent:a|agent:b"), "me")["meta"]
    assert "dm_with" not in meta
    meta = channel_notification(message(channel="dm:agent:me|human:ann"), "me")["meta"]
    assert meta["dm_with"] == "human:ann"
