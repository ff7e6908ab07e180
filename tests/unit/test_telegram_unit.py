"""Telegram bridge, pure parts: update -> envelope, message -> Bot API calls, state file,
backoff (the Bot API client against the fake server is tests/component/test_telegram_api.py)."""

from __future__ import annotations

import random

from bridges.telegram import mapping
from bridges.telegram.api import backoff_delay
from bridges.telegram.state import OutboundState

CHAT = "-100123"


def _update(message: dict, update_id: int = 7) -> dict:
    base = {
        "message_id": 11,
        "date": 1_700_000_000,
        "chat": {"id": -100123, "type": "supergroup", "title": "t"},
        "from": {"id": 5, "first_name": "Ada", "last_name": "L", "username": "ada"},
    }
    return {"update_id": update_id, "message": {**base, **message}}


KEY = b"test bridge key"


def test_text_update_becomes_envelope_with_protocol_metadata():
    inbound = mapping.parse_update(_update({"text": "hello @bot"}), CHAT, "#telegram", KEY)
    assert inbound is not None and inbound.files == []
    env = inbound.envelope
    assert env["type"] == "message" and env["sender"] == "Ada(@ada)"
    assert env["ts"] == "2023-11-14T22:13:20+00:00"
    assert env["payload"]["channel"] == "#telegram"
    assert env["payload"]["content"] == "hello @bot"
    assert env["payload"]["metadata"] == {
        "source": "telegram",
        "telegram_user": "Ada L",
        "telegram_user_id": 5,
        "telegram_chat_id": -100123,
        "telegram_message_id": 11,
        "telegram_username": "ada",
    }
    # The id depends only on (chat, message): a re-post is the same message.
    again = mapping.parse_update(
        _update({"text": "hello @bot"}, update_id=8), CHAT, "#telegram", KEY
    )
    assert again is not None and again.envelope["id"] == env["id"]
    assert env["id"] == mapping.hub_message_id(-100123, 11, KEY)
    assert env["id"] != mapping.hub_message_id(-100123, 12, KEY)
    # Keyed with the hub's secret: without it, nobody can compute the next id.
    assert env["id"] != mapping.hub_message_id(-100123, 11, b"another hub")
    other = mapping.parse_update(_update({"text": "hello @bot"}), CHAT, "#telegram", b"k2")
    assert other is not None and other.envelope["id"] != env["id"]


def test_lone_surrogates_from_telegram_are_replaced_not_refused():
    inbound = mapping.parse_update(_update({"text": "bad \ud800 text"}), CHAT, "#telegram", KEY)
    assert inbound is not None
    inbound.envelope["payload"]["content"].encode("utf-8")  # carried as valid UTF-8


def test_sender_without_username_and_reply_metadata():
    upd = _update(
        {"text": "x", "from": {"id": 1, "first_name": "Bob"}, "reply_to_message": {"message_id": 3}}
    )
    inbound = mapping.parse_update(upd, CHAT, "#telegram", KEY)
    assert inbound is not None
    assert inbound.envelope["sender"] == "Bob"
    assert inbound.envelope["payload"]["metadata"]["telegram_reply_to"] == 3


def test_other_chats_and_non_messages_are_ignored():
    assert mapping.parse_update(_update({"text": "x", "chat": {"id": 1}}), CHAT, "#t", KEY) is None
    assert mapping.parse_update({"update_id": 1, "edited_message": {}}, CHAT, "#t", KEY) is None
    assert mapping.parse_update({"update_id": 1}, CHAT, "#t", KEY) is None
    assert mapping.parse_update("junk", CHAT, "#t", KEY) is None
    assert mapping.parse_update(_update({"new_chat_members": [{}]}), CHAT, "#t", KEY) is None


def test_photo_document_voice_and_caption():
    upd = _update(
        {
            "caption": "look",
            "photo": [
                {"file_id": "s", "file_unique_id": "us", "width": 90, "height": 90},
                {
                    "file_id": "b",
                    "file_unique_id": "ub",
                    "width": 900,
                    "height": 900,
                    "file_size": 10,
                },
            ],
            "document": {
                "file_id": "d",
                "file_unique_id": "ud",
                "file_name": "r.pdf",
                "mime_type": "application/pdf",
            },
            "voice": {"file_id": "v", "file_unique_id": "uv", "mime_type": "audio/ogg"},
        }
    )
    inbound = mapping.parse_update(upd, CHAT, "#telegram", KEY)
    assert inbound is not None
    assert inbound.envelope["payload"]["content"] == "look"
    kinds = [(f.kind, f.file_id, f.filename, f.mime_type) for f in inbound.files]
    assert kinds == [
        ("photo", "b", "photo_11.jpg", "image/jpeg"),
        ("document", "d", "r.pdf", "application/pdf"),
        ("voice", "v", "voice_11.oga", "audio/ogg"),
    ]
    rel = mapping.media_relpath(inbound.files[1], inbound.date)
    assert rel.startswith("2023-11/") and rel.endswith(".pdf")
    assert rel == mapping.media_relpath(inbound.files[1], inbound.date)
    att = mapping.attachment(inbound.files[1], rel, 3)
    assert att["url"] == f"/media/{rel}" and att["size"] == 3 and att["filename"] == "r.pdf"


def test_split_text_respects_limit_and_prefers_boundaries():
    assert mapping.split_text("short") == ["short"]
    assert mapping.split_text("") == [""]
    text = ("word " * 2000).strip()
    pieces = mapping.split_text(text)
    assert "".join(pieces) == text
    assert all(mapping.utf16_len(p) <= 4096 for p in pieces)
    assert all(p.endswith(" ") for p in pieces[:-1])
    solid = "x" * 10_000
    assert [len(p) for p in mapping.split_text(solid)] == [4096, 4096, 1808]
    # Astral characters count two UTF-16 units and are never cut in half.
    emoji = "😀" * 3000
    pieces = mapping.split_text(emoji)
    assert "".join(pieces) == emoji and [len(p) for p in pieces] == [2048, 952]


def test_outbound_calls_text_attachments_and_reply():
    atts = [
        {"url": "/media/2024-01/a.png", "mime_type": "image/png", "filename": "a.png"},
        {"url": "/media/2024-01/b.pdf", "mime_type": "application/pdf", "filename": "b.pdf"},
        {"no": "url"},
    ]
    calls = mapping.outbound_calls("alice", "hi " * 2000, atts, CHAT, reply_to=42)
    methods = [c.method for c in calls]
    assert methods == ["sendMessage", "sendMessage", "sendPhoto", "sendDocument"]
    assert calls[0].params["text"].startswith("[alice] hi")
    assert calls[0].params["reply_to_message_id"] == 42
    assert "reply_to_message_id" not in calls[1].params
    assert calls[2].file_field == "photo" and calls[2].params["caption"] == "[alice] a.png"
    assert calls[3].file_field == "document" and calls[3].attachment is atts[1]
    assert all(c.params["chat_id"] == CHAT for c in calls)
    only = mapping.outbound_calls("bob", "", [], CHAT)
    assert [c.params["text"] for c in only] == ["[bob]"]


def test_reply_target_and_source():
    assert mapping.reply_target({"telegram_reply_to": 5}) == 5
    assert mapping.reply_target({"reply_to_message_id": "6"}) == 6
    assert mapping.reply_target({"reply_to_message_id": True}) is None
    assert mapping.reply_target(None) is None
    assert mapping.is_from_telegram({"source": "telegram"})
    assert not mapping.is_from_telegram({"source": "web"})


def test_state_file_round_trip_and_atomic(tmp_path):
    path = tmp_path / "s.json"
    state = OutboundState(path, "default/#telegram")
    state.load()
    assert state.seq is None
    state.seq = 3
    state.part_done(2)
    state.remember("hub-1", 99)
    state.message_done(4)
    other = OutboundState(path, "other/#x")
    other.load()
    other.seq = 1
    other.save()
    again = OutboundState(path, "default/#telegram")
    again.load()
    assert (again.seq, again.part, dict(again.sent)) == (4, 0, {"hub-1": 99})
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]
    path.write_text("{not json")
    broken = OutboundState(path, "default/#telegram")
    broken.load()
    assert broken.seq is None


def test_backoff_has_jitter_and_a_ceiling():
    rng = random.Random(1)
    delays = [backoff_delay(n, 0.5, 30.0, rng) for n in range(12)]
    assert 0.25 <= delays[0] <= 0.5
    assert all(d <= 30.0 for d in delays) and delays[-1] >= 15.0
    assert len({round(d, 6) for d in delays}) == len(delays)
