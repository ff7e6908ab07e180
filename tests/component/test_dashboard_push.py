"""Web push in the dashboard, in headless Chromium: the footer offers "Enable notifications"
where PushManager exists and the hub has push on, and shows nothing where the browser
lacks PushManager or push is off; the service worker turns a push message (delivered by
the DevTools protocol, `ServiceWorker.deliverPushMessage`, since headless Chromium reaches
no real push service to subscribe with) into a notification titled by sender and channel
with the message's permalink; the routes the button calls answer from the page."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway_http.app import create_app

from support.browser import chromium, new_tab
from support.fake_push import FakePushService
from support.util import eventually

pytestmark = pytest.mark.browser


@pytest.fixture
def bed(make_bed):
    return make_bed(SCITEX_OROCHI_PUSH_ENABLED="true")


async def signed_in(browser, url: str, token: str, init_script: str | None = None):
    page = await new_tab(browser, {"width": 1000, "height": 700})
    if init_script:
        await page.add_init_script(init_script)
    await page.goto(f"{url}/?token={token}")
    await page.wait_for_selector("#app:not([hidden])")
    await page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    return page


async def test_the_offer_the_worker_notification_and_the_routes(http, bed, persister):
    url = f"http://127.0.0.1:{http.port}"
    async with chromium() as browser:
        page = await signed_in(browser, url, bed.admin_token)
        button = page.locator("#push-toggle")
        await button.wait_for(state="visible")
        assert await button.text_content() == "Enable notifications"
        assert await button.get_attribute("data-state") == "off"

        # Unsupported (no PushManager): nothing is offered.
        bare = await signed_in(browser, url, bed.admin_token, "delete window.PushManager;")
        await bare.wait_for_function("() => document.documentElement.dataset.push")
        assert await bare.evaluate("document.documentElement.dataset.push") == "unsupported"
        assert await bare.locator("#push-toggle").is_hidden()

        # The worker shows a push as the push worker sends it.
        await page.context.grant_permissions(["notifications"], origin=url)
        cdp = await page.context.new_cdp_session(page)
        registrations: asyncio.Queue = asyncio.Queue()
        cdp.on(
            "ServiceWorker.workerRegistrationUpdated",
            lambda event: [registrations.put_nowait(r) for r in event["registrations"]],
        )
        await cdp.send("ServiceWorker.enable")
        while True:
            reg = await asyncio.wait_for(registrations.get(), 10)
            if reg["scopeURL"] == url + "/" and not reg.get("isDeleted"):
                break
        data = {"channel": "#ops", "sender": "bob", "text": "@alice deploy?", "url": "/m/7"}
        await cdp.send(
            "ServiceWorker.deliverPushMessage",
            {"origin": url, "registrationId": reg["registrationId"], "data": json.dumps(data)},
        )
        notifications = """() => navigator.serviceWorker.ready
            .then((r) => r.getNotifications())
            .then((list) => list.map((n) => ({title: n.title, body: n.body, url: n.data.url})))"""
        shown = await eventually(lambda: page.evaluate(notifications), 10, "the notification")
        assert shown == [{"title": "bob in #ops", "body": "@alice deploy?", "url": "/m/7"}]

        # The routes the button calls, from the page with its token (a subscription the
        # local push service issued: the browser cannot reach a real one).
        async with FakePushService() as service:
            sub = {**service.subscription("alice-browser"), "person": "alice"}
            answer = await page.evaluate(
                """async ([token, sub]) => {
                     const h = {Authorization: `Bearer ${token}`,
                                "Content-Type": "application/json"};
                     const r = await fetch("/api/push/vapid-public-key", {headers: h});
                     const key = await r.json();
                     const path = "/api/push/subscriptions";
                     const add = await fetch(path,
                       {method: "POST", headers: h, body: JSON.stringify(sub)});
                     const del = await fetch(path, {method: "DELETE", headers: h,
                       body: JSON.stringify({endpoint: sub.endpoint})});
                     return [key.public_key.length, add.status, (await add.json()).outcome,
                             (await del.json()).removed];
                   }""",
                [bed.admin_token, sub],
            )
        assert answer == [87, 201, "added", True]  # base64url of a 65-byte point
        assert page.errors == [] and bare.errors == []


async def test_nothing_is_offered_while_push_is_off(make_bed):
    off = make_bed()
    async with TestClient(TestServer(create_app(off.cfg), host="127.0.0.1")) as client:
        async with chromium() as browser:
            page = await signed_in(browser, f"http://127.0.0.1:{client.port}", off.admin_token)
            await page.wait_for_function("() => document.documentElement.dataset.push")
            assert await page.evaluate("document.documentElement.dataset.push") == "off"
            assert await page.locator("#push-toggle").is_hidden()
