"""The dashboard's conversation features in headless Debian Chromium (Playwright):
markdown in messages (and HTML from a message staying text).

Screenshots go to test-artifacts/ (dashboard-*-desktop.png at 1280x800,
dashboard-*-phone.png at 390x844).
"""

from __future__ import annotations

import pytest

from support.agent import RawAgent
from support.browser import DESKTOP, chromium, new_tab, screenshot_path
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
