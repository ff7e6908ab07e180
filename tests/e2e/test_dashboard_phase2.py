"""The dashboard's conversations, phase 2, in headless Debian Chromium (Playwright):
threads in the side panel, reactions (chips, picker, live updates), edit and delete
(own, admin, live), the DM list, search with jumps, and permalinks. State is made with
the REST API and raw agents; what a person sees is checked in the page, what it did
through REST.

Screenshots go to test-artifacts/ (dashboard-*-desktop.png at 1280x800,
dashboard-*-phone.png at 390x844).
"""

from __future__ import annotations

import re
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


# ---- reactions --------------------------------------------------------------------


async def reactions_of(api: Api, num: int) -> dict:
    status, body = await api.get("/api/reactions/", params={"message_ids": str(num)})
    assert status == 200, body
    return {e: sorted(r["reactor"] for r in who) for e, who in body.get(str(num), {}).items()}


async def test_reaction_chips_toggle_and_an_agents_reaction_arrives_live(http_hub, browser, api):
    ch = f"#re-{tag()}"
    bot_name = f"re-bot-{tag()}"
    bot = await RawAgent.connect(http_hub.agent_url(), bot_name, [ch])
    try:
        msg = await post(api, ch, "release notes are up")
        page = await new_tab(browser, DESKTOP)
        await open_dashboard(page, http_hub, ch)
        row = row_of(page, msg["id"])
        await act(page, row, "react")
        picker = page.locator("#emoji-picker")
        await expect(picker.locator(".emoji")).to_have_count(16)
        await page.screenshot(path=screenshot_path("dashboard-emoji-picker-desktop.png"))
        await picker.locator('.emoji[data-emoji="👍"]').click()
        await expect(picker).to_have_count(0)
        chip = row.locator('.reaction[data-emoji="👍"]')
        await expect(chip.locator(".reaction-count")).to_have_text("1")
        await expect(chip).to_have_class(re.compile(r"\bmine\b"))
        assert await reactions_of(api, msg["num"]) == {"👍": [ME]}

        # The agent's reaction arrives live: the count goes up, its name in the title.
        await bot.request(
            {"type": "react", "payload": {"message": msg["num"], "emoji": "👍", "action": "add"}}
        )
        await expect(chip.locator(".reaction-count")).to_have_text("2")
        await expect(chip).to_have_attribute("title", re.compile(bot_name))
        await bot.request(
            {"type": "react", "payload": {"message": msg["num"], "emoji": "🚀", "action": "add"}}
        )
        await expect(row.locator('.reaction[data-emoji="🚀"] .reaction-count')).to_have_text("1")

        # Clicking my chip takes my reaction back.
        await chip.click()
        await expect(chip.locator(".reaction-count")).to_have_text("1")
        await expect(chip).not_to_have_class(re.compile(r"\bmine\b"))
        assert await reactions_of(api, msg["num"]) == {"👍": [bot_name], "🚀": [bot_name]}

        # Any emoji from the text field; a bad one is refused in the picker.
        await row.locator(".add-reaction").click()
        await picker.locator("#emoji-input").fill("a b")
        await page.keyboard.press("Enter")
        await expect(picker.locator(".emoji-error")).to_contain_text("1 to 32 characters")
        await picker.locator("#emoji-input").fill("🦀")
        await page.keyboard.press("Enter")
        await expect(row.locator('.reaction[data-emoji="🦀"].mine')).to_be_visible()
        assert (await reactions_of(api, msg["num"]))["🦀"] == [ME]
        await page.mouse.move(5, 5)
        await page.screenshot(path=screenshot_path("dashboard-reactions-desktop.png"))

        # An agent taking its reaction back: live too.
        await bot.request(
            {"type": "react", "payload": {"message": msg["num"], "emoji": "🚀", "action": "remove"}}
        )
        await expect(row.locator('.reaction[data-emoji="🚀"]')).to_have_count(0)

        phone = await new_tab(browser, PHONE, **phone_context())
        await open_dashboard(phone, http_hub, ch)
        prow = row_of(phone, msg["id"])
        await expect(prow.locator('.reaction[data-emoji="🦀"] .reaction-count')).to_have_text("1")
        await prow.locator(".add-reaction").tap()
        sheet = phone.locator("#emoji-picker")
        await expect(sheet).to_be_visible()
        box = await sheet.bounding_box()
        assert box["width"] >= PHONE["width"] - 1, box  # a bottom sheet
        await phone.screenshot(path=screenshot_path("dashboard-reactions-picker-phone.png"))
        await sheet.locator('.emoji[data-emoji="🎉"]').tap()
        await expect(prow.locator('.reaction[data-emoji="🎉"] .reaction-count')).to_have_text("1")
        # The desktop page got the phone's reaction live.
        await expect(row.locator('.reaction[data-emoji="🎉"] .reaction-count')).to_have_text("1")
        assert page.errors == [] and phone.errors == []
    finally:
        await bot.close()


# ---- edit and delete --------------------------------------------------------------


async def test_edit_and_delete_own_messages_and_live_changes_of_an_agents(http_hub, browser, api):
    ch = f"#ed-{tag()}"
    bot = await RawAgent.connect(http_hub.agent_url(), f"ed-bot-{tag()}", [ch])
    try:
        mine = await post(api, ch, "deploy at 5pm", sender=ME)
        other = await post(api, ch, "a message of someone else", sender="ops")
        page = await new_tab(browser, DESKTOP)
        await open_dashboard(page, http_hub, ch)
        row = row_of(page, mine["id"])
        await row.hover()
        for name in ("edit", "delete"):
            await expect(row.locator(f'#msg-actions [data-action="{name}"]')).to_be_visible()

        # Escape cancels an edit.
        await act(page, row, "edit")
        box = row.locator(".edit-input")
        await box.fill("not this")
        await box.press("Escape")
        await expect(row.locator(".edit-box")).to_have_count(0)
        await expect(row.locator(".msg-body")).to_have_text("deploy at 5pm")
        # Enter saves it.
        await act(page, row, "edit")
        await box.fill("deploy at 6pm")
        await box.press("Enter")
        await expect(row.locator(".msg-body")).to_have_text("deploy at 6pm (edited)")
        await expect(row.locator(".edited")).to_have_attribute("title", re.compile(r"edited \d"))
        status, one = await api.get(f"/api/messages/{mine['num']}/")
        assert one["content"] == "deploy at 6pm" and one["edited_at"], one

        # The admin token edits anyone's message: Save.
        orow = row_of(page, other["id"])
        await act(page, orow, "edit")
        await orow.locator(".edit-input").fill("fixed by the admin")
        await orow.locator(".edit-box button", has_text="Save").click()
        await expect(orow.locator(".msg-body")).to_contain_text("fixed by the admin")

        # Delete asks first; cancel keeps it, Delete leaves a tombstone.
        await act(page, row, "delete")
        await row.locator(".confirm-delete button", has_text="Cancel").click()
        await expect(row.locator(".confirm-delete")).to_have_count(0)
        await act(page, row, "delete")
        await row.locator(".confirm-delete button", has_text="Delete").click()
        await expect(row.locator(".msg-body.tombstone")).to_have_text("message deleted")
        status, one = await api.get(f"/api/messages/{mine['num']}/")
        assert one["deleted"] is True, one
        await row.hover()
        await expect(row.locator('#msg-actions [data-action="edit"]')).to_be_hidden()
        await expect(row.locator('#msg-actions [data-action="reply"]')).to_be_hidden()

        # An agent edits, then deletes, its own message: both live.
        ack = await bot.post(ch, "first draft")
        brow = row_of(page, ack["payload"]["ref"])
        await expect(brow.locator(".msg-body")).to_have_text("first draft")
        num = ack["payload"]["ref"]  # an id names the message as well as a num
        await bot.request({"type": "edit", "payload": {"message": num, "content": "final text"}})
        await expect(brow.locator(".msg-body")).to_have_text("final text (edited)")
        await page.mouse.move(5, 5)
        await page.screenshot(path=screenshot_path("dashboard-edited-deleted-desktop.png"))
        await bot.request({"type": "delete", "payload": {"message": num}})
        await expect(brow.locator(".msg-body.tombstone")).to_have_text("message deleted")

        # A refusal is a notice, not a dialog; the message stays as it was.
        await page.route(
            re.compile(r".*/api/messages/\d+/.*"),
            lambda route: route.fulfill(
                status=409,
                content_type="application/json",
                body='{"error": "message was deleted", "code": "MESSAGE_DELETED"}',
            ),
        )
        await act(page, orow, "edit")
        await orow.locator(".edit-input").fill("too late")
        await orow.locator(".edit-input").press("Enter")
        await expect(page.locator("#toast.toast-error")).to_contain_text("no longer possible")
        await expect(orow.locator(".msg-body")).to_contain_text("fixed by the admin")
        assert page.dialogs == [] and page.errors == []
    finally:
        await bot.close()


# ---- DMs --------------------------------------------------------------------------


async def test_dm_list_shows_a_dm_between_two_agents(http_hub, browser):
    t = tag()
    alice, bob = f"dm-alice-{t}", f"dm-bob-{t}"
    dm = f"dm:agent:{alice}|agent:{bob}"
    a = await RawAgent.connect(http_hub.agent_url(), alice, ["#general"])
    b = await RawAgent.connect(http_hub.agent_url(), bob, ["#general"])
    try:
        first = await a.post(dm, f"hi {bob}, the key rotated")
        assert first["payload"]["status"] == "ok", first
        page = await new_tab(browser, DESKTOP)
        await open_dashboard(page, http_hub)
        item = page.locator(f'#dms .channel[data-channel="{dm}"]')
        await expect(item).to_have_text(f"{alice} ↔ {bob}")
        assert await page.locator(f'#channels .channel[data-channel="{dm}"]').count() == 0
        await item.click()
        await expect(page.locator("#channel-title")).to_have_text(f"{alice} ↔ {bob}")
        await expect(row_of(page, first["payload"]["ref"]).locator(".msg-body")).to_have_text(
            f"hi {bob}, the key rotated"
        )
        answer = await b.post(dm, "thanks, updating now")
        await expect(row_of(page, answer["payload"]["ref"]).locator(".msg-body")).to_have_text(
            "thanks, updating now"
        )
        assert page.errors == []
    finally:
        await a.close()
        await b.close()


# ---- search and permalinks ---------------------------------------------------------


async def busy_channel(api: Api, ch: str, word: str, after: int = 70) -> dict:
    """A channel whose message with `word` is older than the first page (50) of history."""
    target = await post(api, ch, f"the {word} migration finished without errors", sender="db-bot")
    for i in range(after):
        await post(api, ch, f"routine status line {i}", sender="cron")
    return target


async def test_search_finds_a_message_and_jumping_highlights_it(http_hub, browser, api):
    t = tag()
    ch, word = f"#se-{t}", f"zebra{t}"
    target = await busy_channel(api, ch, word)
    page = await new_tab(browser, DESKTOP)
    await open_dashboard(page, http_hub, "#general")
    await page.locator("#search-input").fill(word)
    await page.locator("#search-input").press("Enter")
    results = page.locator("#side-panel .search-result")
    await expect(results).to_have_count(1)
    hit = results.first
    await expect(hit.locator(".sender")).to_have_text("db-bot")
    await expect(hit.locator(".result-channel")).to_have_text(ch)
    await expect(hit.locator(".result-snippet mark")).to_have_text(word)
    await expect(hit.locator(".time")).not_to_be_empty()
    await page.screenshot(path=screenshot_path("dashboard-search-results-desktop.png"))
    await hit.click()
    await expect(page.locator("#channel-title")).to_have_text(ch)
    row = row_of(page, target["id"])
    await expect(row).to_have_class(re.compile(r"\bhighlight\b"))
    assert await in_viewport(page, row)
    await expect(page.locator("#message-list .msg")).to_have_count(71)  # pages loaded down to it
    await expect(row).not_to_have_class(re.compile(r"\bhighlight\b"))  # only a moment

    status, body = await api.get("/api/search", params={"q": "nothing-matches-this-" + t})
    assert status == 200 and body["results"] == []
    await page.locator("#search-input").fill("nothing-matches-this-" + t)
    await page.locator("#search-input").press("Enter")
    await expect(page.locator("#side-panel .search-status")).to_have_text("No messages found")

    phone = await new_tab(browser, PHONE, **phone_context())
    await open_dashboard(phone, http_hub)
    await phone.locator("#menu-btn").tap()
    await phone.locator("#search-input").fill(word)
    await phone.locator("#search-input").press("Enter")
    presults = phone.locator("#side-panel .search-result")
    await expect(presults).to_have_count(1)
    await phone.screenshot(path=screenshot_path("dashboard-search-results-phone.png"))
    await presults.first.tap()
    await expect(phone.locator("#side-panel")).to_be_hidden()  # the feed is the whole screen
    await expect(phone.locator("#channel-title")).to_have_text(ch)
    assert await in_viewport(phone, row_of(phone, target["id"]))
    assert page.errors == [] and phone.errors == []


async def test_a_permalink_opens_the_dashboard_at_the_message(http_hub, browser, api):
    t = tag()
    ch = f"#pl-{t}"
    target = await busy_channel(api, ch, f"perma{t}")
    for viewport, extra, name in (
        (DESKTOP, {}, "desktop"),
        (PHONE, phone_context(), "phone"),
    ):
        page = await new_tab(browser, viewport, **extra)
        await page.context.grant_permissions(
            ["clipboard-read", "clipboard-write"], origin=http_hub.http_url
        )
        await open_dashboard(page, http_hub)  # signed in: the token is kept
        await expect(page.locator("#channel-title")).to_have_text("#general")
        await page.goto(f"{http_hub.http_url}/m/{target['num']}")
        await page.wait_for_url(re.compile(r"/$"))  # ?m= taken out of the address bar
        await expect(page.locator("#channel-title")).to_have_text(ch)
        row = row_of(page, target["id"])
        await expect(row).to_have_class(re.compile(r"\bhighlight\b"))
        assert await in_viewport(page, row)
        await page.screenshot(path=screenshot_path(f"dashboard-permalink-{name}.png"))
        if name == "desktop":
            # "Copy link" gives that permalink.
            await act(page, row, "link")
            await expect(page.locator("#toast")).to_have_text("Link copied")
            link = await page.evaluate("navigator.clipboard.readText()")
            assert link == f"{http_hub.http_url}/m/{target['num']}"
            # A number that names no message: a notice, the page stays usable.
            await page.goto(f"{http_hub.http_url}/?m=999999999")
            await expect(page.locator("#toast.toast-error")).to_contain_text("not found")
            await expect(page.locator("#app")).to_be_visible()
        assert page.errors == []
