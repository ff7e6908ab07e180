"""Stable and dev dashboards with two real hubs in headless Debian Chromium (Playwright):
hub S (stable) lets hub D's (dev) origin in through SCITEX_OROCHI_CORS_ORIGINS, D's
dashboard follows S through SCITEX_OROCHI_DASHBOARD_WS_UPSTREAM (gateway_http/upstream.py,
static/upstream.js). D's page, signed in with a token of S, shows S's history, agents
and live traffic (not D's own), names S in its banner and only reads. A stable hub that
does not list D's origin is refused with an error that names the setting, not an empty
feed.

Screenshots: test-artifacts/dashboard-upstream-desktop.png, -refused-desktop.png.
"""

from __future__ import annotations

import uuid

import pytest

from scitex_orochi.hub.testing import free_port

from support.agent import RawAgent
from support.browser import DESKTOP, chromium, new_tab, screenshot_path
from support.http_util import Api, wait_http_ready

pytestmark = [pytest.mark.browser]

CORS = "SCITEX_OROCHI_CORS_ORIGINS"
UPSTREAM = "SCITEX_OROCHI_DASHBOARD_WS_UPSTREAM"


def tag() -> str:
    return uuid.uuid4().hex[:6]


def stable_and_dev(hub_factory, *, let_dev_in: bool):
    """Hub S, then hub D following it (as `scitex-orochi init` writes them: ws:// form)."""
    dev_port = free_port()
    dev_origin = f"http://127.0.0.1:{dev_port}"
    stable = hub_factory(extra_env={CORS: dev_origin} if let_dev_in else {})
    upstream = stable.http_url.replace("http://", "ws://", 1)
    dev = hub_factory(dashboard_port=dev_port, extra_env={UPSTREAM: upstream})
    wait_http_ready(stable)
    wait_http_ready(dev)
    return stable, dev


async def post(hub, channel: str, content: str, sender: str = "ops") -> dict:
    api = Api(hub.http_url, hub.admin_token)
    try:
        status, body = await api.post(
            "/api/messages", {"sender": sender, "payload": {"channel": channel, "content": content}}
        )
    finally:
        await api.close()
    assert status == 201, body
    return body


async def history_of(hub) -> list[str]:
    api = Api(hub.http_url, hub.admin_token)
    try:
        status, rows = await api.get("/api/history/general")
    finally:
        await api.close()
    assert status == 200, rows
    return [r["content"] for r in rows]


async def test_dev_dashboard_shows_the_stable_hubs_live_traffic(hub_factory):
    stable, dev = stable_and_dev(hub_factory, let_dev_in=True)
    stable_host = stable.http_url.removeprefix("http://")
    before = await post(stable, "#general", f"stable history {tag()}")
    dev_text = f"dev's own {tag()}"
    dev_only = await post(dev, "#general", dev_text)
    bot = await RawAgent.connect(stable.agent_url(), f"stable-bot-{tag()}", ["#general"])
    async with chromium() as browser:
        page = await new_tab(browser, DESKTOP)
        # A workspace token of S: the dev dashboard only reads, so no admin token is needed.
        await page.goto(f"{dev.http_url}/?token={stable.default_token}")
        await page.wait_for_selector("#app:not([hidden])")
        await page.locator("#conn.conn-live").wait_for(state="attached")
        banner = page.locator("#upstream-banner")
        await banner.wait_for()
        assert await banner.text_content() == f"Showing live traffic of {stable_host}"
        # History and agents come from S's REST, not D's.
        await page.locator(f'.msg[data-id="{before["id"]}"]').wait_for()
        await page.locator(f'.agent[data-name="{bot.name}"]').wait_for(state="attached")
        # Live: an agent posts to S, and the message appears on D's dashboard.
        content = f"live from stable {tag()}"
        ack = await bot.post("#general", content)
        row = page.locator(f'.msg[data-id="{ack["payload"]["ref"]}"]')
        await row.wait_for()
        assert content in await row.text_content()
        assert await page.locator(f'.msg[data-id="{dev_only["id"]}"]').count() == 0
        # Nothing of S was written to D.
        assert await history_of(dev) == [dev_text]
        # It only reads: the composer is off, and says why.
        assert await page.locator("#send").is_disabled()
        hint = await page.locator("#composer-hint").text_content()
        assert stable_host in hint and "Read-only" in hint
        await page.screenshot(path=screenshot_path("dashboard-upstream-desktop.png"))
        # S's HTTP gateway goes away: the banner says the feed is gone, not an empty feed;
        # once it is back, the page follows S live again.
        assert stable.ctl("stop", "gateway_http").returncode == 0
        await page.locator("#upstream-banner.upstream-error", has_text=CORS).wait_for()
        assert stable.ctl("start", "gateway_http").returncode == 0
        await page.locator("#upstream-banner:not(.upstream-error)").wait_for()
        await page.locator("#conn.conn-live").wait_for(state="attached")
        again = await bot.post("#general", f"after the outage {tag()}")
        await page.locator(f'.msg[data-id="{again["payload"]["ref"]}"]').wait_for()
        assert page.errors == [], page.errors
    await bot.close()


async def test_a_stable_hub_without_the_dev_origin_is_refused_with_a_clear_error(hub_factory):
    stable, dev = stable_and_dev(hub_factory, let_dev_in=False)
    stable_host = stable.http_url.removeprefix("http://")
    async with chromium() as browser:
        page = await new_tab(browser, DESKTOP)
        await page.goto(f"{dev.http_url}/?token={stable.default_token}")
        error = page.locator("#signin-error", has_text=CORS)
        await error.wait_for()
        text = await error.text_content()
        assert stable_host in text and dev.http_url in text
        assert await page.locator("#app").is_hidden()
        note = page.locator("#signin-upstream")
        assert await note.text_content() == (
            f"This dashboard shows the live traffic of {stable_host}: "
            "sign in with a token of that hub."
        )
        await page.screenshot(path=screenshot_path("dashboard-upstream-refused-desktop.png"))
    # The socket is refused too, before the upgrade, for a page of D's origin.
    api = Api(stable.http_url, stable.default_token)
    try:
        async with api.session.get(
            stable.http_url + "/ws",
            headers={
                "Origin": dev.http_url,
                "Connection": "Upgrade",
                "Upgrade": "websocket",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            },
        ) as resp:
            assert resp.status == 403 and CORS in (await resp.json())["error"]
    finally:
        await api.close()
