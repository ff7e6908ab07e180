"""The dashboard's conversations, phase 2, in headless Debian Chromium (Playwright):
threads in the side panel, reactions (chips, picker, live updates), edit and delete
(own, admin, live), the DM list, search with jumps, and permalinks. State is made with
the REST API and raw agents; what a person sees is checked in the page, what it did
through REST.

Screenshots go to test-artifacts/ (dashboard-*-desktop.png at 1280x800,
dashboard-*-phone.png at 390x844).
"""

from __future__ import annotations

import uuid

import pytest

from support.agent import RawAgent
from support.browser import DESKTOP, PHONE, chromium, new_tab, phone_context, screenshot_path
from support.http_util import Api, wait_http_ready

pytestmark = [pytest.mark.browser]

try:
    from playwright.async_api import expect
except ImportError:  # pragma: no cover - skipped by support.browser
    expect = None

ME = "ywatanabe"


@pytest.fixture(scope="module")
def http_hub(shared_hub):
    wait_http_ready(shared_hub)
    return shared_hub


@pytest.fixture
async def browser():
    async with chromium() as b:
        yield b


@pytest.fixture
async def api(http_hub):
    client = Api(http_hub.http_url, http_hub.admin_token)
    yield client
    await client.close()


def tag() -> str:
    return uuid.uuid4().hex[:6]


async def post(api: Api, channel: str, content: str, sender: str = "ops") -> dict:
    status, body = await api.post(
        "/api/messages", {"sender": sender, "payload": {"channel": channel, "content": content}}
    )
    assert status == 201, body
    return body


async def reply(api: Api, parent: int, content: str, sender: str = "ops") -> dict:
    status, body = await api.post(
        "/api/threads/", {"parent_id": parent, "content": content, "sender": sender}
    )
    assert status == 201, body
    return body


async def open_dashboard(page, hub, channel: str | None = None, name: str = ME) -> None:
    await page.goto(f"{hub.http_url}/?token={hub.admin_token}")
    await page.wait_for_selector("#app:not([hidden])")
    await page.locator("#conn.conn-live").wait_for(state="attached")
    if name:
        await page.locator("#sender-name").fill(name)
        await page.locator("#sender-name").dispatch_event("change")
    if channel:
        await open_channel(page, channel)


async def open_channel(page, channel: str) -> None:
    item = page.locator(f'.channel[data-channel="{channel}"]')
    await item.wait_for(state="attached")
    if not await item.is_visible():
        await page.locator("#menu-btn").click()
    await item.click()
    await page.locator(f'.channel[data-channel="{channel}"].active').wait_for(state="attached")


def row_of(page, msg_id: str, within: str = "#message-list"):
    return page.locator(f'{within} .msg[data-id="{msg_id}"]')


async def act(page, row, action: str) -> None:
    await row.hover()
    await row.locator(f'#msg-actions [data-action="{action}"]').click()


async def in_viewport(page, locator) -> bool:
    return await locator.evaluate(
        """(el) => { const r = el.getBoundingClientRect();
                     const box = document.getElementById('messages').getBoundingClientRect();
                     return r.top >= box.top - 1 && r.bottom <= box.bottom + 1; }"""
    )


# ---- threads ----------------------------------------------------------------------


async def test_thread_panel_shows_replies_and_posting_lands_in_the_thread(http_hub, browser, api):
    ch = f"#th-{tag()}"
    root = await post(api, ch, "Should we ship **v2** today?")
    await reply(api, root["num"], "tests are green", sender="ci-bot")
    await reply(api, root["num"], "docs updated", sender="doc-bot")
    bot = await RawAgent.connect(http_hub.agent_url(), f"th-bot-{tag()}", [ch])
    try:
        page = await new_tab(browser, DESKTOP)
        await open_dashboard(page, http_hub, ch)
        root_row = row_of(page, root["id"])
        await expect(root_row.locator(".thread-link")).to_have_text("2 replies")
        await expect(page.locator('#message-list .thread-link[data-thread="reply"]')).to_have_count(
            2
        )
        await act(page, root_row, "reply")
        panel = page.locator("#side-panel")
        await expect(panel).to_be_visible()
        await expect(panel.locator(".thread-root .msg-body")).to_contain_text("Should we ship")
        replies = panel.locator(".thread-reply .msg-body")
        await expect(replies).to_have_text(["tests are green", "docs updated"])

        await panel.locator("#thread-input").fill("shipping at 5pm")
        await page.keyboard.press("Enter")
        await expect(replies).to_have_text(["tests are green", "docs updated", "shipping at 5pm"])
        status, thread = await api.get(f"/api/threads/{root['num']}/")
        assert status == 200, thread
        assert [r["content"] for r in thread["replies"]][-1] == "shipping at 5pm"
        assert thread["replies"][-1]["sender"] == ME
        await expect(root_row.locator(".thread-link")).to_have_text("3 replies")

        # An agent's reply arrives live in the open panel (and its "in thread" in the feed).
        await bot.post(ch, "LGTM from the bot", metadata={"reply_to": root["num"]})
        await expect(replies.last).to_have_text("LGTM from the bot")
        await expect(root_row.locator(".thread-link")).to_have_text("4 replies")
        await expect(panel.locator("#thread-count")).to_have_text("4 replies")
        await page.screenshot(path=screenshot_path("dashboard-thread-panel-desktop.png"))
        await page.keyboard.press("Escape")
        await expect(panel).to_be_hidden()
        # "in thread" under a reply opens its thread too.
        await page.locator('#message-list .thread-link[data-thread="reply"]').first.click()
        await expect(panel.locator(".thread-reply")).to_have_count(4)

        phone = await new_tab(browser, PHONE, **phone_context())
        await open_dashboard(phone, http_hub, ch)
        await row_of(phone, root["id"]).locator(".thread-link").tap()
        ppanel = phone.locator("#side-panel")
        await expect(ppanel.locator(".thread-reply")).to_have_count(4)
        assert (await ppanel.bounding_box())["width"] >= PHONE["width"] - 1
        await phone.screenshot(path=screenshot_path("dashboard-thread-panel-phone.png"))
        await phone.locator("#side-close").tap()
        await expect(ppanel).to_be_hidden()
        assert page.errors == [] and phone.errors == []
    finally:
        await bot.close()
