"""The dashboard's conversation features in headless Debian Chromium (Playwright):
markdown in messages (and HTML from a message staying text), the phone and tablet
layouts (drawers), the actions of a message and the agent detail.

Screenshots go to test-artifacts/ (dashboard-*-desktop.png at 1280x800,
dashboard-*-phone.png at 390x844).
"""

from __future__ import annotations

import re

import pytest

from support.agent import RawAgent
from support.browser import DESKTOP, PHONE, chromium, new_tab, phone_context, screenshot_path
from support.http_util import Api, wait_http_ready
from support.util import TIME_SCALE

pytestmark = [pytest.mark.browser]

try:
    from playwright.async_api import expect
except ImportError:  # pragma: no cover - skipped by support.browser
    expect = None

MARKDOWN = """Deploy **done** in _3 min_, see [the log](https://example.com/log?id=1) \
or https://example.org/status.
Steps:
- build the wheel
- test with `pytest -q`

1. first
2. second

```python
print("hi")  # <b>not bold</b>
```"""

XSS = (
    '<script>window.__xss = "script"; alert("xss-script")</script> '
    "<img src=x onerror=\"window.__xss = 'img'; alert('xss-img')\"> "
    '[click me](javascript:alert("xss-link")) '
    '<a href="javascript:alert(1)">raw anchor</a> '
    "**<svg onload=alert(2)>** `<iframe src=javascript:alert(3)>` "
    "[data](data:text/html,<script>alert(4)</script>) "
    "<b>not bold</b>"
)


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


async def post(api: Api, channel: str, content: str, sender: str = "ops") -> dict:
    status, body = await api.post(
        "/api/messages", {"sender": sender, "payload": {"channel": channel, "content": content}}
    )
    assert status == 201, body
    return body


async def open_dashboard(page, hub, token: str, channel: str | None = None) -> None:
    await page.goto(f"{hub.http_url}/?token={token}")
    await page.wait_for_selector("#app:not([hidden])")
    await page.locator("#conn.conn-live").wait_for(state="attached")  # in the drawer on phones
    if channel:
        item = page.locator(f'.channel[data-channel="{channel}"]')
        if not await item.is_visible():
            await page.locator("#menu-btn").click()
        await item.click()
        await page.locator(f'.channel[data-channel="{channel}"].active').wait_for(state="attached")
        await expect(page.locator("#channel-title")).to_have_text(channel)


async def settled(page, selector: str) -> None:
    """A drawer or panel has finished sliding in (for the screenshots)."""
    await page.wait_for_function(
        "(sel) => getComputedStyle(document.querySelector(sel)).transform === 'none'", arg=selector
    )


def row_of(page, msg_id: str):
    return page.locator(f'.msg[data-id="{msg_id}"]')


# ---- markdown ---------------------------------------------------------------------


async def test_markdown_renders_bold_code_lists_and_links(http_hub, browser, api):
    agent = await RawAgent.connect(http_hub.agent_url(), "md-bot", ["#md"], role="writer")
    try:
        await post(api, "#md", "warming up the channel")
        page = await new_tab(browser, DESKTOP)
        await open_dashboard(page, http_hub, http_hub.admin_token, "#md")
        ack = await agent.post("#md", MARKDOWN)
        row = row_of(page, ack["payload"]["ref"])
        body = row.locator(".msg-body")
        await body.wait_for()
        await expect(body.locator("strong")).to_have_text("done")
        await expect(body.locator("em")).to_have_text("3 min")
        link = body.locator('a[href="https://example.com/log?id=1"]')
        await expect(link).to_have_text("the log")
        await expect(link).to_have_attribute("target", "_blank")
        await expect(link).to_have_attribute("rel", "noopener noreferrer")
        bare = body.locator('a[href="https://example.org/status"]')
        await expect(bare).to_have_text("https://example.org/status")  # without the full stop
        items = body.locator("ul > li")
        await expect(items).to_have_text(["build the wheel", "test with pytest -q"])
        await expect(body.locator("ul > li code")).to_have_text("pytest -q")
        await expect(body.locator("ol > li")).to_have_text(["first", "second"])
        code = body.locator('pre.md-code[data-lang="python"] > code')
        await expect(code).to_have_text('print("hi")  # <b>not bold</b>')
        assert await body.locator("b").count() == 0
        await agent.post(
            "#md",
            "Review: @md-bot the **parser** is *linear*; `O(n)` per message.\n"
            "> quoted: ship it\n\n- [x] markdown\n- [ ] threads",
        )
        await page.locator(".msg-body blockquote").wait_for()
        await page.screenshot(path=screenshot_path("dashboard-markdown-desktop.png"))
        assert page.errors == []
    finally:
        await agent.close()


async def test_html_and_script_from_a_message_stay_text(http_hub, browser, api):
    agent = await RawAgent.connect(http_hub.agent_url(), "mallory", ["#xss"])
    try:
        await post(api, "#xss", "before the payload")
        page = await new_tab(browser, DESKTOP)
        await open_dashboard(page, http_hub, http_hub.admin_token, "#xss")
        scripts_before = await page.locator("script").count()
        ack = await agent.post("#xss", XSS)
        fenced = await agent.post("#xss", f"```html\n{XSS}\n```")
        body = row_of(page, ack["payload"]["ref"]).locator(".msg-body")
        await body.wait_for()
        await row_of(page, fenced["payload"]["ref"]).locator("pre.md-code").wait_for()
        text = await body.inner_text()
        for literal in (
            '<script>window.__xss = "script"; alert("xss-script")</script>',
            "<img src=x onerror=",
            '[click me](javascript:alert("xss-link"))',
            '<a href="javascript:alert(1)">raw anchor</a>',
            "[data](data:text/html,<script>alert(4)</script>)",
            "<b>not bold</b>",
        ):
            assert literal in text, (literal, text)
        await expect(body.locator("strong")).to_have_text("<svg onload=alert(2)>")
        await expect(body.locator("code")).to_have_text("<iframe src=javascript:alert(3)>")
        feed = page.locator("#message-list")
        for tag in ("script", "img", "iframe", "svg", "b", "a"):
            assert await feed.locator(f".msg-body {tag}").count() == 0, tag
        assert await page.locator("script").count() == scripts_before
        # Whatever ran would have set window.__xss or opened a dialog.
        await body.click()
        assert await page.evaluate("window.__xss") is None
        assert page.dialogs == []
        assert page.errors == []
        await page.screenshot(path=screenshot_path("dashboard-xss-as-text-desktop.png"))
    finally:
        await agent.close()


RENDER = """async ([src, me]) => {
  const { renderMarkdown } = await import("/static/markdown.js");
  const box = document.createElement("div");
  box.append(renderMarkdown(src, me));
  return box.innerHTML;
}"""

CASES = [
    ("plain text, nothing to do", "plain text, nothing to do"),
    ("snake_case_name and 2 * 3 * 4 stay", "snake_case_name and 2 * 3 * 4 stay"),
    ("**a *b* c** and __d__", "<strong>a <em>b</em> c</strong> and <strong>d</strong>"),
    ("``tick ` inside`` and `<b>`", "<code>tick ` inside</code> and <code>&lt;b&gt;</code>"),
    ("unclosed **bold and `code", "unclosed **bold and `code"),
    (
        "see (https://x.org/a_(b)).",
        'see (<a href="https://x.org/a_(b)" target="_blank" rel="noopener noreferrer">'
        "https://x.org/a_(b)</a>).",
    ),
    ("[x](JaVaScRiPt:alert(1))", "[x](JaVaScRiPt:alert(1))"),
    ("[x](vbscript:msgbox)", "[x](vbscript:msgbox)"),
    (
        "[mail **me**](mailto:a@b.org)",
        '<a href="mailto:a@b.org" target="_blank" rel="noopener noreferrer">'
        "mail <strong>me</strong></a>",
    ),
    (
        "[https://a.org](https://b.org)",
        '<a href="https://b.org/" target="_blank" rel="noopener noreferrer">https://a.org</a>',
    ),
    (
        "@me and @other, not a@b.com",
        '<span class="mention me">@me</span> and <span class="mention">@other</span>, not a@b.com',
    ),
    ("3. three\n4. four", '<ol start="3"><li>three</li><li>four</li></ol>'),
    (
        "- a\n  - nested\n- b",
        "<ul><li>a<ul><li>nested</li></ul></li><li>b</li></ul>",
    ),
    ("> quoted **x**", "<blockquote><p>quoted <strong>x</strong></p></blockquote>"),
    (
        "# Title\nbody",
        '<div class="md-h md-h1" role="heading" aria-level="3">Title</div><p>body</p>',
    ),
    ("one\ntwo\n\nthree", "<p>one\ntwo</p><p>three</p>"),
    (
        "```\nunclosed <i>x</i>",
        '<pre class="md-code"><code>unclosed &lt;i&gt;x&lt;/i&gt;</code></pre>',
    ),
    ("~~~js\na\n~~~", '<pre class="md-code" data-lang="js"><code>a</code></pre>'),
    ("#general is a channel", "#general is a channel"),
]


async def test_markdown_module_cases(http_hub, browser):
    page = await new_tab(browser, DESKTOP)
    await page.goto(f"{http_hub.http_url}/")
    for src, html in CASES:
        assert await page.evaluate(RENDER, [src, "me"]) == html, src
    # Pathological input stays fast: no delimiter is searched for twice.
    huge = "*a " * 20000 + "_b " * 20000 + "[c" * 20000 + "` `` " * 2000 + "**x " * 20000
    ms = await page.evaluate(
        """async (src) => {
          const { renderMarkdown } = await import("/static/markdown.js");
          const t = performance.now();
          renderMarkdown(src, "me");
          return performance.now() - t;
        }""",
        huge,
    )
    assert ms < 1500 * TIME_SCALE, ms
    assert page.errors == []


# ---- layout -----------------------------------------------------------------------


async def test_phone_channels_are_a_drawer(http_hub, browser, api):
    await post(api, "#phone-room", "Hello from the **phone** room:\n- one\n- two")
    page = await new_tab(browser, PHONE, **phone_context())
    await open_dashboard(page, http_hub, http_hub.admin_token)
    menu, sidebar = page.locator("#menu-btn"), page.locator("#sidebar")
    await expect(menu).to_be_visible()
    await expect(sidebar).to_be_hidden()
    await expect(page.locator("#agents-panel")).to_be_hidden()
    box = await menu.bounding_box()
    assert box["width"] >= 44 and box["height"] >= 44, box  # touch-sized
    # The feed and the composer use the whole width.
    for part in ("#chat", "#composer"):
        width = (await page.locator(part).bounding_box())["width"]
        assert width >= PHONE["width"] - 1, (part, width)

    await menu.tap()
    await expect(sidebar).to_be_visible()
    await expect(menu).to_have_attribute("aria-expanded", "true")
    await settled(page, "#sidebar")
    await page.screenshot(path=screenshot_path("dashboard-drawer-phone.png"))
    await page.locator('.channel[data-channel="#phone-room"]').tap()
    await expect(sidebar).to_be_hidden()
    await expect(page.locator("#channel-title")).to_have_text("#phone-room")
    await page.locator(".msg-body strong", has_text="phone").wait_for()
    await expect(menu).to_have_attribute("aria-expanded", "false")

    # A tap outside closes it; so does Escape.
    await menu.tap()
    await expect(sidebar).to_be_visible()
    await page.locator("#backdrop").tap(position={"x": 360, "y": 400})
    await expect(sidebar).to_be_hidden()
    await menu.tap()
    await expect(sidebar).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(sidebar).to_be_hidden()

    # The agents panel is a drawer too.
    await page.locator("#agents-btn").tap()
    await expect(page.locator("#agents-panel")).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(page.locator("#agents-panel")).to_be_hidden()
    await page.screenshot(path=screenshot_path("dashboard-phone.png"))
    assert page.errors == []


async def test_tablet_width_keeps_channels_and_reaches_agents(http_hub, browser):
    agent = await RawAgent.connect(http_hub.agent_url(), "tablet-bot", ["#general"])
    try:
        page = await new_tab(browser, {"width": 900, "height": 800})
        await open_dashboard(page, http_hub, http_hub.admin_token)
        await expect(page.locator("#sidebar")).to_be_visible()
        await expect(page.locator('.channel[data-channel="#general"]')).to_be_visible()
        await expect(page.locator("#menu-btn")).to_be_hidden()
        panel = page.locator("#agents-panel")
        await expect(panel).to_be_hidden()
        await page.locator("#agents-btn").click()
        await expect(panel).to_be_visible()
        await expect(panel.locator('.agent[data-name="tablet-bot"]')).to_be_visible()
        await settled(page, "#agents-panel")
        await page.screenshot(path=screenshot_path("dashboard-agents-drawer-900.png"))
        await page.locator("#backdrop").click(position={"x": 100, "y": 400})
        await expect(panel).to_be_hidden()
        # Wide again: the panel is back in the page and the button gone.
        await page.set_viewport_size(DESKTOP)
        await expect(panel).to_be_visible()
        await expect(page.locator("#agents-btn")).to_be_hidden()
        await expect(page.locator("#backdrop")).to_be_hidden()
        assert page.errors == []
    finally:
        await agent.close()


# ---- message actions --------------------------------------------------------------


async def test_message_actions_on_hover_focus_and_tap(http_hub, browser, api):
    posted = await post(api, "#actions", "an action target", sender="ops")
    page = await new_tab(browser, DESKTOP)
    await page.context.grant_permissions(
        ["clipboard-read", "clipboard-write"], origin=http_hub.http_url
    )
    await open_dashboard(page, http_hub, http_hub.admin_token, "#actions")
    row = row_of(page, posted["id"])
    bar = page.locator("#msg-actions")
    await row.hover()
    await expect(row.locator("#msg-actions")).to_be_visible()
    # The admin token may change any message: all five actions.
    for name in ("reply", "react", "link", "edit", "delete"):
        await expect(bar.locator(f'[data-action="{name}"]')).to_be_visible()
    await page.screenshot(path=screenshot_path("dashboard-message-actions-desktop.png"))

    await bar.locator('[data-action="link"]').click()
    await expect(page.locator("#toast")).to_have_text("Link copied")
    num = await row.get_attribute("data-num")
    wanted = f"{http_hub.http_url}/m/{num}" if num else f"{http_hub.http_url}/?m={posted['id']}"
    assert await page.evaluate("navigator.clipboard.readText()") == wanted

    # Reply opens the thread panel (tests/e2e/test_dashboard_phase2.py has the rest).
    await bar.locator('[data-action="reply"]').click()
    await expect(page.locator("#side-panel .thread-root .msg-body")).to_have_text(
        "an action target"
    )
    await page.keyboard.press("Escape")
    await expect(page.locator("#side-panel")).to_be_hidden()

    # The pointer leaves the feed: the toolbar goes; keyboard focus brings it back.
    await page.mouse.move(5, 5)
    await expect(bar).to_have_count(0)
    await row.focus()
    await expect(row.locator("#msg-actions")).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(bar).to_have_count(0)
    assert page.errors == []


async def test_read_only_viewer_gets_copy_link_only(http_hub, browser, api):
    posted = await post(api, "#actions", "seen read-only", sender="ops")
    page = await new_tab(browser, DESKTOP)
    await open_dashboard(page, http_hub, http_hub.default_token, "#actions")
    row = row_of(page, posted["id"])
    await row.hover()
    bar = row.locator("#msg-actions")
    await expect(bar.locator('[data-action="link"]')).to_be_visible()
    for name in ("reply", "react", "edit", "delete"):
        await expect(bar.locator(f'[data-action="{name}"]')).to_be_hidden()
    assert page.errors == []


async def test_phone_tap_shows_and_hides_message_actions(http_hub, browser, api):
    posted = await post(api, "#actions", "tap me on a phone", sender="ops")
    page = await new_tab(browser, PHONE, **phone_context())
    await open_dashboard(page, http_hub, http_hub.admin_token, "#actions")
    row = row_of(page, posted["id"])
    await row.locator(".msg-body").tap()
    bar = row.locator("#msg-actions")
    await expect(bar).to_be_visible()
    box = await bar.locator('[data-action="reply"]').bounding_box()
    assert box["width"] >= 44 and box["height"] >= 40, box
    await page.screenshot(path=screenshot_path("dashboard-message-actions-phone.png"))
    await row.locator(".msg-body").tap()
    await expect(page.locator("#msg-actions")).to_have_count(0)
    await row.locator(".msg-body").tap()
    await expect(bar).to_be_visible()
    await page.locator("#channel-title").tap()  # a tap outside the feed
    await expect(page.locator("#msg-actions")).to_have_count(0)
    assert page.errors == []


# ---- agent detail -----------------------------------------------------------------


async def test_agent_detail_shows_the_presence_record(http_hub, browser):
    agent = await RawAgent.connect(
        http_hub.agent_url(),
        "detail-bot",
        ["#general", "#reviews"],
        machine="lab-7",
        role="reviewer",
        model="sonnet",
        project="orochi",
        multiplexer="tmux",
    )
    try:
        await agent.request(
            {
                "type": "heartbeat",
                "payload": {
                    "cpu_count": 8,
                    "load_avg_1m": 2.0,
                    "mem_used_percent": 41.5,
                    "disk_used_percent": 73,
                    "orochi_current_task": "reviewing pull request 11",
                    "orochi_subagent_count": 3,
                },
            }
        )
        await agent.request({"type": "status_update", "payload": {"status": "busy"}})
        page = await new_tab(browser, DESKTOP)
        await open_dashboard(page, http_hub, http_hub.admin_token)
        card = page.locator('.agent[data-name="detail-bot"]')
        await card.locator(".status", has_text="busy").wait_for()
        await card.click()
        detail = page.locator("#agent-detail")
        await expect(detail).to_be_visible()
        await expect(page.locator("#agent-detail-title")).to_have_text("detail-bot")
        wanted = {
            "role": "reviewer",
            "machine": "lab-7",
            "model": "sonnet",
            "project": "orochi",
            "multiplexer": "tmux",
            "status": "busy",
            "current_task": "reviewing pull request 11",
            "subagent_count": "3",
            "agent_id": "detail-bot@lab-7",
            "resources.mem_used_percent": "41.5",
            "resources.cpu_count": "8",
        }
        for field, text in wanted.items():
            await expect(detail.locator(f'dd[data-field="{field}"]')).to_have_text(text)
        await expect(detail.locator('dd[data-field="channels"] .chip')).to_have_text(
            ["#general", "#reviews"]
        )
        # "just now" within a second of the heartbeat, "N s ago" after it.
        await expect(detail.locator('dd[data-field="last_seen"]')).to_have_text(
            re.compile(r"^(just now|\d+\s*\w+ ago) \(")
        )
        await expect(detail.locator(".gauges")).to_be_visible()
        await page.screenshot(path=screenshot_path("dashboard-agent-detail-desktop.png"))
        await page.keyboard.press("Escape")
        await expect(detail).to_be_hidden()
        await expect(card).to_be_focused()

        # On a phone: agents drawer, tap the card, full-width detail, close button.
        phone = await new_tab(browser, PHONE, **phone_context())
        await open_dashboard(phone, http_hub, http_hub.admin_token)
        await phone.locator("#agents-btn").tap()
        await phone.locator('.agent[data-name="detail-bot"]').tap()
        detail = phone.locator("#agent-detail")
        await expect(detail).to_be_visible()
        await expect(detail.locator('dd[data-field="machine"]')).to_have_text("lab-7")
        assert (await detail.bounding_box())["width"] >= PHONE["width"] - 1
        await phone.screenshot(path=screenshot_path("dashboard-agent-detail-phone.png"))
        await phone.locator("#agent-detail-close").tap()
        await expect(detail).to_be_hidden()
        await expect(phone.locator("#agents-panel")).to_be_visible()  # back to the drawer
        assert page.errors == [] and phone.errors == []
    finally:
        await agent.close()


async def test_agent_detail_shows_a_fleet_agents_subagents(http_hub, browser):
    """A dialect-B agent's `subagents_update` (FLEET.md §2) reaches its detail view; its
    ping/echo round trips show there too once measured (the `rtt_ms` rows)."""
    from support.agent_b import AgentB

    agent = await AgentB.connect(http_hub.ws_url, http_hub.default_token, "fleet-head")
    try:
        assert (await agent.register())["type"] == "registered"
        await agent.send(
            "subagents_update",
            {"subagents": [{"name": "scout", "task": "read the logs", "status": "running"}]},
        )
        page = await new_tab(browser, DESKTOP)
        await open_dashboard(page, http_hub, http_hub.admin_token)
        card = page.locator('.agent[data-name="fleet-head"]')
        await card.wait_for()
        await card.click()
        detail = page.locator("#agent-detail")
        await expect(detail.locator('dd[data-field="subagents"]')).to_have_text(
            "scout (running): read the logs", timeout=int(15_000 * TIME_SCALE)
        )
        await expect(detail.locator('dd[data-field="rtt_ms"]')).to_be_attached()
    finally:
        await agent.close()
