"""The dashboard in headless Debian Chromium (Playwright): live agents, messages both ways.

Skipped only when /usr/bin/chromium or the playwright package is missing (CI has both).
Screenshots go to test-artifacts/ in the repo root.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from support.agent import RawAgent
from support.browser import ARTIFACTS, chromium, new_tab
from support.http_util import Api, wait_http_ready
from support.util import REPO, TIME_SCALE, eventually


def gradient_png(width: int = 160, height: int = 90) -> bytes:
    """A small real PNG (a teal-to-violet gradient) for the image preview."""
    rows = b"".join(
        b"\x00"
        + b"".join(
            bytes((int(61 + 78 * x / width), int(214 - 90 * x / width), int(176 + 70 * y / height)))
            for x in range(width)
        )
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


pytestmark = [pytest.mark.browser]


@pytest.fixture(scope="module")
def http_hub(shared_hub):
    wait_http_ready(shared_hub)
    return shared_hub


@pytest.fixture
async def page():
    async with chromium() as browser:
        yield await new_tab(browser, {"width": 1440, "height": 900})


async def test_dashboard_shows_agents_and_messages_both_ways(http_hub, page):
    ARTIFACTS.mkdir(exist_ok=True)
    agent = await RawAgent.connect(
        http_hub.agent_url(),
        "builder-bot",
        ["#general", "#builds"],
        machine="nas",
        role="builder",
        model="opus",
    )
    helper = await RawAgent.connect(
        http_hub.agent_url(), "mamba", ["#general"], machine="spartan", role="dispatcher"
    )
    api = Api(http_hub.http_url, http_hub.admin_token)
    try:
        await agent.request(
            {
                "type": "heartbeat",
                "payload": {
                    "cpu_count": 8,
                    "load_avg_1m": 3.1,
                    "mem_used_percent": 62.5,
                    "disk_used_percent": 81,
                    "orochi_current_task": "running the test suite",
                },
            }
        )
        await agent.request({"type": "status_update", "payload": {"status": "busy"}})
        await helper.request(
            {
                "type": "heartbeat",
                "payload": {
                    "cpu_count": 4,
                    "load_avg_1m": 0.4,
                    "mem_used_percent": 23,
                    "disk_used_percent": 40,
                },
            }
        )
        await helper.request({"type": "status_update", "payload": {"status": "idle"}})
        await helper.post("#general", "Morning! Queue is empty, @builder-bot you have the floor.")
        status, upload = await api.request("POST", "/api/upload", data=_form(gradient_png()))
        assert status == 201

        await page.goto(f"{http_hub.http_url}/?token={http_hub.admin_token}")
        # Signed in: the token moved to localStorage and left the address bar.
        await page.wait_for_selector("#app:not([hidden])")
        assert "token=" not in page.url
        card = page.locator('.agent[data-name="builder-bot"]')
        await card.wait_for()
        assert "running the test suite" in await card.inner_text()
        await page.locator('.agent[data-name="builder-bot"] .pill.healthy').wait_for()
        await page.locator('.agent[data-name="mamba"] .pill.idle').wait_for()

        # A message from the agent shows up live, with its mention highlighted.
        ack = await agent.post(
            "#general",
            "Build #42 passed: 1,204 tests green. @mamba ready to ship.",
            attachments=[{**upload, "filename": "coverage.png"}],
        )
        row = page.locator(f'.msg[data-id="{ack["payload"]["ref"]}"]')
        await row.wait_for()
        assert await row.locator(".mention").inner_text() == "@mamba"
        await row.locator("img.thumb").wait_for()

        # Signed in with the admin token: the composer is enabled and carries no hint.
        assert await page.locator("#message-input").is_enabled()
        assert await page.locator("#attach").is_enabled()
        assert await page.locator("#composer-hint").is_hidden()
        # A message typed into the page reaches the connected agent.
        await page.fill("#sender-name", "ywatanabe")
        await page.fill("#message-input", "Great work @builder-bot, ship it!")
        await page.press("#message-input", "Enter")
        got = await agent.wait(
            lambda f: f.get("type") == "message" and f.get("sender") == "ywatanabe", timeout=10
        )
        assert got["payload"]["content"] == "Great work @builder-bot, ship it!"
        await page.locator(f'.msg[data-id="{got["id"]}"]').wait_for()
        await page.screenshot(path=str(ARTIFACTS / "dashboard.png"))
        assert page.errors == []
    finally:
        await api.close()
        await agent.close()
        await helper.close()


async def test_dashboard_resumes_without_gaps_after_reconnect(http_hub, page):
    api = Api(http_hub.http_url, http_hub.admin_token)
    try:
        status, first = await api.post(
            "/api/messages",
            {"sender": "ops", "payload": {"channel": "#resume", "content": "before the outage"}},
        )
        assert status == 201
        await page.goto(f"{http_hub.http_url}/?token={http_hub.default_token}")
        await page.locator('.channel[data-channel="#resume"]').click()
        await page.locator(f'.msg[data-id="{first["id"]}"]').wait_for()
        await page.locator(".conn-live").wait_for()
        # Cut the live feed, post meanwhile (through an agent), then it must catch up.
        assert http_hub.ctl("stop", "gateway_http").returncode == 0
        await page.locator(".conn-offline").wait_for()
        agent = await RawAgent.connect(http_hub.agent_url(), "night-shift", ["#resume"])
        try:
            missed = await agent.post("#resume", "posted while the page was offline")
            reacted = await agent.request(
                {"type": "react", "payload": {"message": first["num"], "emoji": "🌙"}}
            )
            assert reacted[-1]["payload"]["outcome"] == "added", reacted
        finally:
            await agent.close()
        assert http_hub.ctl("start", "gateway_http").returncode == 0
        wait_http_ready(http_hub)
        row = page.locator(f'.msg[data-id="{missed["payload"]["ref"]}"]')
        await row.wait_for(timeout=int(25_000 * TIME_SCALE))
        assert await row.count() == 1
        # The reaction made while offline came back with the stream (history events=1).
        chip = page.locator(f'.msg[data-id="{first["id"]}"] .reaction[data-emoji="🌙"]')
        await chip.wait_for(timeout=int(10_000 * TIME_SCALE))
        await page.locator(".conn-live").wait_for()
        await page.screenshot(path=str(ARTIFACTS / "dashboard-resumed.png"))
    finally:
        await api.close()


async def test_sign_in_form_refuses_a_wrong_token(http_hub, page):
    await page.goto(http_hub.http_url + "/")
    await page.wait_for_selector("#signin:not([hidden])")
    await page.fill("#signin-token", "definitely-wrong")
    await page.click("#signin-form button[type=submit]")
    await page.locator("#signin-error", has_text="not accepted").wait_for()
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "signin.png"))
    await page.fill("#signin-token", http_hub.default_token)
    await page.click("#signin-form button[type=submit]")
    await page.wait_for_selector("#app:not([hidden])")
    assert await page.evaluate("localStorage.getItem('orochi.token')") == http_hub.default_token
    # A workspace token only reads: the composer and upload button are disabled, with a hint.
    hint = page.locator("#composer-hint")
    await hint.wait_for(state="visible")
    assert await hint.inner_text() == "Read-only: sign in with the admin token to post"
    for control in ("#message-input", "#sender-name", "#send", "#attach"):
        assert await page.locator(control).is_disabled(), control
    assert "Read-only" in await page.locator("#message-input").get_attribute("placeholder")
    await page.screenshot(path=str(ARTIFACTS / "dashboard-read-only.png"))
    # Everything else still works: the live feed shows a message the admin posts.
    api = Api(http_hub.http_url, http_hub.admin_token)
    try:
        status, posted = await api.post(
            "/api/messages",
            {
                "sender": "ops",
                "payload": {"channel": "#general", "content": "seen by a read-only viewer"},
            },
        )
        assert status == 201
    finally:
        await api.close()
    await page.locator('.channel[data-channel="#general"]').click()
    await page.locator(f'.msg[data-id="{posted["id"]}"]').wait_for()
    assert page.errors == []


async def test_offline_agents_are_collapsed_and_never_labelled_online(http_hub, page):
    api = Api(http_hub.http_url, http_hub.admin_token)
    alive = await RawAgent.connect(http_hub.agent_url(), "still-here", ["#general"])
    try:
        # "online" is its last status: once disconnected it must still not read as online
        once = await RawAgent.connect(
            http_hub.agent_url(), "one-shot-cli", ["#general"], transient=True
        )
        await once.close()
        gone = await RawAgent.connect(http_hub.agent_url(), "went-away", ["#general"])
        await gone.close()

        async def listed_gone():
            status, rows = await api.get("/api/agents/registry")
            return (
                status == 200
                and any(r["name"] == "went-away" and not r["online"] for r in rows)
                and rows
            )

        rows = await eventually(listed_gone, 10, "went-away listed as disconnected")
        assert "one-shot-cli" not in {r["name"] for r in rows}  # transient: not kept
        offline = sum(1 for r in rows if not r["online"])

        await page.goto(f"{http_hub.http_url}/?token={http_hub.admin_token}")
        await page.locator('.agent[data-name="still-here"]').wait_for()
        toggle = page.locator(".offline-toggle button")
        await toggle.wait_for()
        assert (await toggle.inner_text()).endswith(f"{offline} offline")
        assert await page.locator('.agent[data-name="went-away"]').count() == 0  # collapsed
        await page.locator('.agent[data-name="still-here"] .status', has_text="online").wait_for()
        await toggle.click()
        card = page.locator('.agent[data-name="went-away"]')
        await card.wait_for()
        assert await card.locator(".pill.dead").count() == 1
        assert await card.locator(".status").inner_text() == "offline"
        assert "online" not in (await card.inner_text()).lower()
        assert await page.locator('.agent[data-name="one-shot-cli"]').count() == 0
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "dashboard-offline-expanded.png"))
        await toggle.click()
        await card.wait_for(state="detached")
        assert page.errors == []
    finally:
        await alive.close()
        await api.close()


def _form(data: bytes):
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("file", data, filename="coverage.png", content_type="image/png")
    return form


async def test_the_page_never_puts_the_token_in_a_url(http_hub, page):
    """Sign-in by /?token= is the only URL with the token: REST and media go with the
    Authorization header (media shown through blob: URLs), the live feed opens with a ticket."""
    token = http_hub.default_token
    requests: list = []
    sockets: list[str] = []
    page.on("request", lambda request: requests.append(request))
    page.on("websocket", lambda ws: sockets.append(ws.url))
    api = Api(http_hub.http_url, http_hub.admin_token)
    try:
        status, image = await api.request("POST", "/api/upload", data=_form(gradient_png()))
        assert status == 201
        status, notes = await api.request(
            "POST", "/api/upload", data=_named_form(b"release notes\n", "notes.txt", "text/plain")
        )
        assert status == 201
        signin_url = f"{http_hub.http_url}/?token={token}"
        await page.goto(signin_url)
        await page.wait_for_selector("#app:not([hidden])")
        assert token not in page.url  # stripped from the address bar at once
        await page.locator('.channel[data-channel="#general"]').click()
        await page.locator(".conn-live").wait_for()

        # The live feed works: a message posted now shows up, with its image and file.
        status, posted = await api.post(
            "/api/messages",
            {
                "sender": "ops",
                "payload": {
                    "channel": "#general",
                    "content": "the build artefacts",
                    "attachments": [{**image, "filename": "chart.png"}, notes],
                },
            },
        )
        assert status == 201
        row = page.locator(f'.msg[data-id="{posted["id"]}"]')
        await row.wait_for()
        thumb = row.locator('img.thumb[src^="blob:"]')
        await thumb.wait_for()
        assert await thumb.evaluate("img => img.complete && img.naturalWidth === 160")
        async with page.expect_download() as download_info:
            await row.locator(".file-chip", has_text="notes.txt").click()
        download = await download_info.value
        assert download.suggested_filename == "notes.txt"
        assert Path(await download.path()).read_bytes() == b"release notes\n"
        assert page.errors == []
    finally:
        await api.close()

    urls = [r.url for r in requests]
    assert urls[0] == signin_url and requests[0].is_navigation_request()
    leaked = [u for u in urls[1:] + sockets if token in u]
    assert leaked == [], leaked
    assert sockets and all("/ws?ticket=wst_" in u for u in sockets), sockets
    media = [r for r in requests if "/media/" in r.url]
    assert len(media) >= 2
    for request in media + [r for r in requests if "/api/" in r.url]:
        headers = await request.all_headers()
        assert headers.get("authorization") == f"Bearer {token}", request.url


def _named_form(data: bytes, filename: str, content_type: str):
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("file", data, filename=filename, content_type=content_type)
    return form


JS_TYPES = ("text/javascript", "application/javascript")


async def test_the_page_loads_its_modules_with_no_console_errors(http_hub, page):
    """Every module is fetched as JavaScript (Chromium refuses a module of any other
    type), revalidated on each load, and the page runs without one console error."""
    console: list[str] = []
    failed: list[str] = []
    static: dict[str, dict] = {}

    def on_response(response):
        if "/static/" in response.url:
            static[response.url.rsplit("/", 1)[1]] = {"status": response.status, **response.headers}

    page.on("console", lambda msg: msg.type == "error" and console.append(msg.text))
    page.on("requestfailed", lambda r: failed.append(f"{r.url}: {r.failure}"))
    page.on("response", on_response)
    await page.goto(f"{http_hub.http_url}/?token={http_hub.default_token}")
    # Module scripts run before "load": a refused or missing module has been reported.
    assert (failed, console, page.errors) == ([], [], [])
    await page.wait_for_selector("#app:not([hidden])")
    # Each panel's module ran: the live feed, the channel list, the messages, the agents.
    await page.locator(".conn-live").wait_for()
    await page.locator('.channel[data-channel="#general"].active').wait_for()
    await page.locator("#message-list > *").first.wait_for()  # history loaded, rendered
    await page.locator("#hub-stats b").first.wait_for()

    # sw.js is the service worker: served at /sw.js (root scope), not loaded as a module.
    modules = {p.name for p in (REPO / "gateway_http" / "static").glob("*.js")} - {"sw.js"}
    assert set(static) >= modules, sorted(modules - set(static))
    for name in modules:
        headers = static[name]
        assert headers["status"] == 200, (name, headers)
        assert headers["content-type"].split(";")[0].strip() in JS_TYPES, (name, headers)
        assert headers.get("cache-control") == "no-cache", (name, headers)
    assert failed == []
    assert console == []
    assert page.errors == []
