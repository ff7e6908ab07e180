"""The Telegram bridge in a real hub, against the fake Bot API: every message kind both
ways, rate limits and faults, restarts mid-stream without loss or duplicates, webhook mode."""

from __future__ import annotations

import hashlib
import json
import signal
import uuid
from pathlib import Path

import aiohttp
import pytest

from scitex_orochi.hub.media_meta import read_sidecar
from scitex_orochi.hub.testing import Hub, free_port

from support.agent import RawAgent
from support.fake_telegram import FakeTelegram
from support.util import wait_for

CHANNEL = "#telegram"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
PDF = b"%PDF-1.4\n" + b"0123456789" * 300
OGG = b"OggS" + b"\x00\x01" * 500


def bridge_env(fake: FakeTelegram, **extra: str) -> dict[str, str]:
    env = {
        "SCITEX_OROCHI_TELEGRAM_BRIDGE_ENABLED": "true",
        "SCITEX_OROCHI_TELEGRAM_BOT_TOKEN": fake.token,
        "SCITEX_OROCHI_TELEGRAM_CHAT_ID": str(fake.chat_id),
        "SCITEX_OROCHI_TELEGRAM_API_BASE": fake.url,
        "SCITEX_OROCHI_TELEGRAM_POLL_TIMEOUT_S": "1",
    }
    env.update({f"SCITEX_OROCHI_{k}": v for k, v in extra.items()})
    return env


def state_of(hub: Hub) -> dict:
    path = Path(hub.cfg.data_dir) / "telegram-bridge.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def bridge_ready_count(fake: FakeTelegram) -> int:
    """Bridge starts seen by Telegram: each start calls getMe after its bus round trip.

    (Counting log lines was fragile: supervisord's merged output is not a reliable
    record of every line a child wrote.)"""
    return len(fake.method_calls("getMe"))


def wait_bridge_ready(hub: Hub, fake: FakeTelegram, before: int = 0) -> None:
    """Ready: past its bus round trip and getMe; outbound state initialised."""
    try:
        wait_for(lambda: bridge_ready_count(fake) > before, 30, "the telegram bridge ready")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nhub log:\n{hub.log()[-6000:]}") from None
    wait_for(lambda: state_of(hub).get("channels"), 10, "the outbound state file")


@pytest.fixture(scope="module")
def tg_hub():
    fake = FakeTelegram().start()
    hub = Hub(extra_env=bridge_env(fake)).start()
    wait_bridge_ready(hub, fake)
    yield hub, fake
    hub.stop()
    hub.cleanup()
    fake.stop()


def telegram_messages(agent: RawAgent) -> list[dict]:
    return agent.messages(CHANNEL)


async def test_inbound_every_kind(tg_hub):
    hub, fake = tg_hub
    agent = await RawAgent.connect(hub.agent_url(), "watcher-in", channels=[CHANNEL])
    sent_before = len(fake.sent)
    text = fake.user_message("hello from telegram")
    photo = fake.user_message(caption="a photo", photo=PNG)
    doc = fake.user_message(document=("report.pdf", PDF, "application/pdf"))
    voice = fake.user_message(voice=OGG)
    fake.user_message("not for us", chat_id=999)
    reply = fake.user_message("answering", reply_to=text["message_id"])

    got = await agent.wait_count(lambda f: f in telegram_messages(agent), 5, timeout=20)
    by_tg_id = {f["payload"]["metadata"]["telegram_message_id"]: f for f in got}
    assert list(by_tg_id) == [
        text["message_id"],
        photo["message_id"],
        doc["message_id"],
        voice["message_id"],
        reply["message_id"],
    ]
    first = by_tg_id[text["message_id"]]
    assert first["sender"] == "Ada(@ada)" and first["payload"]["content"] == "hello from telegram"
    assert first["payload"]["metadata"] == {
        "source": "telegram",
        "telegram_user": "Ada Lovelace",
        "telegram_user_id": 4242,
        "telegram_chat_id": fake.chat_id,
        "telegram_message_id": text["message_id"],
        "telegram_username": "ada",
    }
    assert (
        by_tg_id[reply["message_id"]]["payload"]["metadata"]["telegram_reply_to"]
        == text["message_id"]
    )

    media_root = Path(hub.cfg.http.media_root)
    for tg_id, data, mime, content in (
        (photo["message_id"], PNG, "image/jpeg", "a photo"),
        (doc["message_id"], PDF, "application/pdf", ""),
        (voice["message_id"], OGG, "audio/ogg", ""),
    ):
        payload = by_tg_id[tg_id]["payload"]
        assert payload["content"] == content
        [att] = payload["attachments"]
        assert att["mime_type"] == mime and att["size"] == len(data)
        assert att["url"].startswith("/media/")
        stored = media_root / att["url"][len("/media/") :]
        assert stored.read_bytes() == data
        # The sidecar says whose it is: /media serves it to the bridge's workspace only.
        meta = read_sidecar(stored)
        assert meta is not None and meta["workspace"] == "default", meta
        assert meta["source"] == "telegram" and meta["size"] == len(data)
        assert meta["sha256"] == hashlib.sha256(data).hexdigest()
    assert by_tg_id[doc["message_id"]]["payload"]["attachments"][0]["filename"] == "report.pdf"
    assert not [f for f in agent.frames if f.get("payload", {}).get("content") == "not for us"]

    # Every update was confirmed (the offset moved past it), and nothing was echoed back.
    wait_for(lambda: not fake.updates, 10, "all updates confirmed")
    await agent.post(CHANNEL, "ping")
    wait_for(lambda: len(fake.sent) > sent_before, 10, "the ping sent")
    assert fake.sent_texts()[sent_before:] == ["[watcher-in] ping"]
    await agent.close()


async def test_outbound_every_kind(tg_hub):
    hub, fake = tg_hub
    agent = await RawAgent.connect(hub.agent_url(), "alice", channels=[CHANNEL])
    start = len(fake.sent)
    media = Path(hub.cfg.http.media_root) / "2024-01"
    media.mkdir(parents=True, exist_ok=True)
    (media / "pic.png").write_bytes(PNG)
    (media / "paper.pdf").write_bytes(PDF)
    asked = fake.user_message("question?")
    question = await agent.wait(
        lambda f: f.get("payload", {}).get("content") == "question?", timeout=15
    )

    long_text = ("lorem ipsum " * 700).strip()  # 8399 characters: three pieces
    await agent.post(CHANNEL, "short text")
    await agent.post(CHANNEL, long_text)
    await agent.post(
        CHANNEL,
        "see pic",
        attachments=[
            {"url": "/media/2024-01/pic.png", "mime_type": "image/png", "filename": "pic.png"}
        ],
    )
    await agent.post(
        CHANNEL,
        "",
        attachments=[
            {
                "url": "/media/2024-01/paper.pdf",
                "mime_type": "application/pdf",
                "filename": "paper.pdf",
            }
        ],
    )
    await agent.post(CHANNEL, "answer by hub id", metadata={"reply_to": question["id"]})
    await agent.post(
        CHANNEL, "answer by telegram id", metadata={"telegram_reply_to": asked["message_id"]}
    )
    await agent.post("#general", "not bridged")
    await agent.post(CHANNEL, "last")

    wait_for(lambda: "[alice] last" in fake.sent_texts(), 20, "all sent")
    sent = fake.sent[start:]
    methods = [s["method"] for s in sent]
    assert methods == ["sendMessage"] * 5 + ["sendPhoto", "sendDocument"] + ["sendMessage"] * 3
    texts = [s["params"].get("text") or s["params"].get("caption") for s in sent]
    assert texts[0] == "[alice] short text"
    assert "".join(texts[1:4]) == f"[alice] {long_text}"
    assert all(len(t) <= 4096 for t in texts)
    assert texts[4:7] == ["[alice] see pic", "[alice] pic.png", "[alice] paper.pdf"]
    assert sent[5]["file"][1] == PNG and sent[5]["file"][0] == "pic.png"
    assert sent[6]["file"][1] == PDF and sent[6]["file"][2] == "application/pdf"
    assert texts[7:] == [
        "[alice] answer by hub id",
        "[alice] answer by telegram id",
        "[alice] last",
    ]
    for item in sent[7:9]:
        assert item["message"]["reply_to_message"]["message_id"] == asked["message_id"]
    assert "reply_to_message" not in sent[9]["message"]
    assert all(str(s["params"]["chat_id"]) == str(fake.chat_id) for s in sent)
    assert "[alice] not bridged" not in fake.sent_texts()
    await agent.close()


async def test_rate_limits_faults_and_conflicts(tg_hub):
    hub, fake = tg_hub
    agent = await RawAgent.connect(hub.agent_url(), "bob", channels=[CHANNEL])
    start = len(fake.sent)
    fake.fail("sendMessage", 429, retry_after=1)
    fake.fail("sendMessage", 502)
    fake.fail("sendMessage", 500, disconnect=True)
    await agent.post(CHANNEL, "survives faults")
    wait_for(lambda: "[bob] survives faults" in fake.sent_texts(), 20, "sent through faults")
    fake.fail("sendMessage", 400, "Bad Request: can't parse entities")
    await agent.post(CHANNEL, "refused for good")
    await agent.post(CHANNEL, "after the refusal")
    wait_for(lambda: "[bob] after the refusal" in fake.sent_texts(), 20, "sent after faults")
    assert fake.sent_texts()[start:] == ["[bob] survives faults", "[bob] after the refusal"]

    fake.fail("getUpdates", 409, times=2)
    fake.fail("getUpdates", 429, retry_after=1)
    wait_for(lambda: not fake.faults.get("getUpdates"), 20, "the polls through the faults")
    fake.user_message("through the conflict")
    await agent.wait(
        lambda f: f.get("payload", {}).get("content") == "through the conflict", timeout=20
    )
    log = hub.log_path.read_text(errors="replace")
    assert "409 Conflict" in log and "Another process is polling this bot" in log
    assert "rate limited: waiting 1.0s" in log
    assert fake.token not in log
    await agent.close()


async def test_restart_mid_stream_loses_and_repeats_nothing(tg_hub):
    hub, fake = tg_hub
    agent = await RawAgent.connect(hub.agent_url(), "carol", channels=[CHANNEL])
    start = len(fake.sent)
    for n in range(3):
        await agent.post(CHANNEL, f"A{n}")
    wait_for(lambda: "[carol] A2" in fake.sent_texts(), 10, "A sent")
    # B2's sendMessage is in flight when the bridge dies: it never took effect.
    fake.hold("sendMessage", lambda params: params.get("text") == "[carol] B2")
    for n in range(5):
        await agent.post(CHANNEL, f"B{n}")
    wait_for(lambda: fake.held >= 1, 10, "B2 in flight")
    ready = bridge_ready_count(fake)
    old = hub.kill("telegram", signal.SIGKILL)
    fake.release()
    # Both directions keep moving while the bridge is down.
    for n in range(3):
        await agent.post(CHANNEL, f"C{n}")
    fake.user_message("while down 1")
    fake.user_message("while down 2")
    hub.wait_restarted("telegram", old)
    wait_bridge_ready(hub, fake, ready)

    wait_for(lambda: "[carol] C2" in fake.sent_texts(), 20, "everything sent after restart")
    expected = [
        f"[carol] {x}" for x in ("A0", "A1", "A2", "B0", "B1", "B2", "B3", "B4", "C0", "C1", "C2")
    ]
    assert fake.sent_texts()[start:] == expected
    inbound = await agent.wait_count(
        lambda f: f.get("payload", {}).get("content", "").startswith("while down"), 2, 20
    )
    assert [f["payload"]["content"] for f in inbound] == ["while down 1", "while down 2"]
    await agent.close()


async def test_restart_before_the_offset_is_confirmed_stores_once(tg_hub):
    hub, fake = tg_hub
    agent = await RawAgent.connect(hub.agent_url(), "dave", channels=[CHANNEL])
    tag = uuid.uuid4().hex[:6]
    msgs = [fake.user_message(f"{tag} once {n}") for n in range(3)]
    last_update = max(u["update_id"] for u in fake.updates)
    # The getUpdates that would confirm them hangs; the bridge dies before it returns.
    fake.hold("getUpdates", lambda params: int(params.get("offset") or 0) > last_update)
    await agent.wait_count(lambda f: f.get("payload", {}).get("content", "").startswith(tag), 3, 20)
    wait_for(lambda: fake.held >= 2, 10, "the confirming getUpdates in flight")
    ready = bridge_ready_count(fake)
    old = hub.kill("telegram", signal.SIGKILL)
    fake.release()
    hub.wait_restarted("telegram", old)
    wait_bridge_ready(hub, fake, ready)
    # The new bridge gets the same updates again, re-posts them, and confirms them.
    wait_for(
        lambda: not [u for u in fake.updates if u["update_id"] <= last_update],
        20,
        "updates confirmed by the new bridge",
    )
    fake.user_message(f"{tag} marker")
    await agent.wait(lambda f: f.get("payload", {}).get("content") == f"{tag} marker", timeout=20)
    seen = [
        f["payload"]["content"]
        for f in telegram_messages(agent)
        if f["payload"]["content"].startswith(tag)
    ]
    assert seen == [f"{tag} once 0", f"{tag} once 1", f"{tag} once 2", f"{tag} marker"]
    store = hub.store()
    try:
        rows = store.history("default", CHANNEL, limit=1000)
    finally:
        store.close()
    stored = sorted(r["content"] for r in rows if r["content"].startswith(tag))
    assert stored == sorted(seen)
    assert [m["message_id"] for m in msgs] == sorted(m["message_id"] for m in msgs)
    await agent.close()


async def test_webhook_mode_through_gateway_http(hub_factory):
    fake = FakeTelegram().start()
    try:
        port = free_port()
        secret = "s3cret-" + uuid.uuid4().hex
        hub = hub_factory(
            dashboard_port=port,
            extra_env=bridge_env(
                fake,
                TELEGRAM_WEBHOOK_SECRET=secret,
                TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{port}",
            ),
        )
        wait_bridge_ready(hub, fake)
        wait_for(lambda: fake.webhook is not None, 10, "setWebhook called")
        assert fake.webhook["url"] == f"http://127.0.0.1:{port}/webhook/telegram"
        assert fake.webhook["secret_token"] == secret

        agent = await RawAgent.connect(hub.agent_url(), "erin", channels=[CHANNEL])
        fake.user_message("via webhook")
        fake.user_message(
            caption="doc via webhook", document=("notes.txt", b"hello notes", "text/plain")
        )
        got = await agent.wait_count(lambda f: f in telegram_messages(agent), 2, timeout=20)
        assert [f["payload"]["content"] for f in got] == ["via webhook", "doc via webhook"]
        att = got[1]["payload"]["attachments"][0]
        assert (
            Path(hub.cfg.http.media_root) / att["url"][len("/media/") :]
        ).read_bytes() == b"hello notes"
        async with aiohttp.ClientSession() as http:  # the bridge's workspace token reads it
            async with http.get(
                hub.http_url + att["url"], headers={"Authorization": f"Bearer {hub.default_token}"}
            ) as resp:
                assert resp.status == 200 and await resp.read() == b"hello notes"
        wait_for(lambda: not fake.updates, 10, "updates delivered")
        assert fake.webhook_posts and set(fake.webhook_posts) == {200}
        assert not fake.method_calls("getUpdates")

        await agent.post(CHANNEL, "out in webhook mode")
        wait_for(lambda: "[erin] out in webhook mode" in fake.sent_texts(), 10, "outbound")

        url = f"{hub.http_url}/webhook/telegram"
        update = {"update_id": 1, "message": {"message_id": 1, "chat": {"id": 1}}}
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
                async with http.post(url, json=update, headers=headers) as resp:
                    assert resp.status == 401
            ok = {"X-Telegram-Bot-Api-Secret-Token": secret}
            async with http.post(url, data="{", headers=ok) as resp:
                assert resp.status == 400
            # Another chat: accepted (so Telegram stops retrying) but not posted.
            async with http.post(url, json=update, headers=ok) as resp:
                assert resp.status == 200
        assert len(telegram_messages(agent)) == 2
        await agent.close()
    finally:
        fake.stop()
