"""The Telegram bridge's Bot API client against the fake Bot API (support.fake_telegram, an
aiohttp server in a thread on port 0) and a closed port: retries on 429, 5xx and network
errors, Retry-After, 409 conflicts, no token in any error (the pure mapping is
tests/unit/test_telegram_unit.py)."""

from __future__ import annotations

import logging

import aiohttp
import pytest

from bridges.telegram.api import BotApi, TelegramError

from support.fake_telegram import FakeTelegram
from support.util import eventually


@pytest.fixture
def fake_tg():
    fake = FakeTelegram().start()
    yield fake
    fake.stop()


async def test_api_retries_429_5xx_network_and_reports_409(fake_tg, caplog):
    caplog.set_level(logging.WARNING)
    async with aiohttp.ClientSession() as session:
        api = BotApi(session, fake_tg.url, fake_tg.token, backoff_base_s=0.01, backoff_max_s=0.05)
        fake_tg.fail("sendMessage", 429, retry_after=0)
        fake_tg.fail("sendMessage", 502)
        fake_tg.fail("sendMessage", 500, disconnect=True)
        fake_tg.fail("sendMessage", 409)
        result = await api.call("sendMessage", {"chat_id": fake_tg.chat_id, "text": "x"})
        assert result["text"] == "x"
        assert len(fake_tg.method_calls("sendMessage")) == 5
        assert api.retries == 4 and api.conflicts == 1
        assert fake_tg.sent_texts() == ["x"]
        assert "rate limited" in caplog.text and "409 Conflict" in caplog.text
        assert "Another process is polling this bot" in caplog.text
        with pytest.raises(TelegramError) as exc:
            await api.call("sendMessage", {"chat_id": 1, "text": "x"})
        assert exc.value.error_code == 400 and "chat not found" in exc.value.description
        bad = BotApi(session, fake_tg.url, "999:wrong", backoff_base_s=0.01)
        with pytest.raises(TelegramError) as exc:
            await bad.call("getMe")
        assert exc.value.error_code == 401
    assert fake_tg.token not in caplog.text


async def test_api_waits_retry_after(fake_tg):
    import time

    async with aiohttp.ClientSession() as session:
        api = BotApi(session, fake_tg.url, fake_tg.token, backoff_base_s=0.01)
        fake_tg.fail("getMe", 429, retry_after=1)
        start = time.monotonic()
        me = await api.call("getMe")
        assert me["is_bot"] and time.monotonic() - start >= 0.95


async def test_api_network_errors_never_show_the_token(caplog):
    caplog.set_level(logging.WARNING)
    async with aiohttp.ClientSession() as session:
        api = BotApi(session, "http://127.0.0.1:9", "42:SECRET-TOKEN", backoff_base_s=0.01)
        with pytest.raises(Exception) as exc:
            await api.call_once("getMe")
        assert "SECRET-TOKEN" not in str(exc.value)


async def test_fake_get_updates_conflict_and_offset(fake_tg):
    async with aiohttp.ClientSession() as session:
        api = BotApi(session, fake_tg.url, fake_tg.token)
        import asyncio

        first = asyncio.create_task(api.call_once("getUpdates", {"timeout": 5}))
        # The first poll has reached the server before the second one starts.
        await eventually(lambda: fake_tg.method_calls("getUpdates"), 5, "first getUpdates")
        second = asyncio.create_task(api.call_once("getUpdates", {"timeout": 5}))
        with pytest.raises(TelegramError) as exc:
            await first
        assert exc.value.error_code == 409
        fake_tg.user_message("a")
        updates = await second
        assert [u["message"]["text"] for u in updates] == ["a"]
        again = await api.call_once("getUpdates", {"timeout": 0})
        assert len(again) == 1  # not confirmed yet
        confirmed = await api.call_once(
            "getUpdates", {"timeout": 0, "offset": updates[0]["update_id"] + 1}
        )
        assert confirmed == []
