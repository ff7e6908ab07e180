"""The dashboard as a PWA: the manifest and its icons, the service worker at the root scope,
the build id; in Chromium the worker controls the page, answers offline from its cache, and
an open page reloads within 20 s when the build changes (static files copied to a temp dir,
so the test can change one)."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway_http import dashboard
from gateway_http.app import create_app

from support.browser import chromium, new_tab
from support.util import TIME_SCALE, eventually

BUILD_PICKED_UP_S = 20.0  # what the issue promises


@pytest.fixture
def static_copy(tmp_path, monkeypatch) -> Path:
    copy = tmp_path / "static"
    shutil.copytree(dashboard.STATIC_DIR, copy)
    monkeypatch.setattr(dashboard, "STATIC_DIR", copy)
    return copy


@pytest.fixture
async def served(bed, static_copy):
    async with TestClient(TestServer(create_app(bed.cfg), host="127.0.0.1")) as client:
        yield client


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_manifest_icons_worker_and_build_id(served, static_copy):
    resp = await served.get("/manifest.webmanifest")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("application/manifest+json")
    manifest = json.loads(await resp.text())
    assert manifest["name"] == "Orochi" and manifest["display"] == "standalone"
    assert manifest["start_url"] == "/" and manifest["theme_color"].startswith("#")
    sizes = {}
    for icon in manifest["icons"]:
        got = await served.get(icon["src"])
        assert got.status == 200, icon
        if icon["type"] == "image/png":
            sizes[icon["sizes"]] = png_size(await got.read())
    assert sizes == {"192x192": (192, 192), "512x512": (512, 512)}

    resp = await served.get("/sw.js")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/javascript")
    assert resp.headers["Service-Worker-Allowed"] == "/"
    assert resp.headers["Cache-Control"] == "no-cache"
    page = await (await served.get("/")).text()
    assert 'rel="manifest"' in page

    first = (await (await served.get("/build")).json())["build"]
    assert first == (await (await served.get("/build")).json())["build"]
    (static_copy / "style.css").write_text((static_copy / "style.css").read_text() + "\n/**/\n")

    async def changed():
        return (await (await served.get("/build")).json())["build"] != first

    await eventually(changed, 5, "a new build id after a static file changed")


@pytest.mark.browser
async def test_worker_controls_the_page_and_a_new_build_reloads_it(served, static_copy):
    url = f"http://127.0.0.1:{served.port}/"
    async with chromium() as browser:
        page = await new_tab(browser, {"width": 1000, "height": 700})
        await page.goto(url)
        await page.wait_for_selector("#signin:not([hidden])")
        # Registered at the root scope, and controlling this page (clients.claim).
        await page.wait_for_function("() => navigator.serviceWorker.controller !== null")
        scope = await page.evaluate("navigator.serviceWorker.ready.then((r) => r.scope)")
        assert scope == url
        await page.wait_for_function("() => document.documentElement.dataset.build")

        # Offline, the page and its modules come from the worker's cache (filled with what
        # the first load fetched once the worker took control).
        await page.wait_for_function(
            """() => caches.open("orochi-static-v1").then(async (c) =>
                 !!(await c.match("/")) && !!(await c.match("/static/signin.js")))"""
        )
        await page.context.set_offline(True)
        await page.reload()
        await page.wait_for_selector("#signin:not([hidden])")
        await page.context.set_offline(False)
        await page.wait_for_function("() => document.documentElement.dataset.build")

        # A new build on disk: the open page reloads itself, no user action.
        loaded = await page.evaluate("document.documentElement.dataset.build")
        await page.evaluate("window.__before_new_build = true")
        marker = "/* a new build */"
        (static_copy / "style.css").write_text((static_copy / "style.css").read_text() + marker)
        await page.wait_for_function(
            "() => !window.__before_new_build && document.documentElement.dataset.build",
            timeout=BUILD_PICKED_UP_S * 1000 * TIME_SCALE,
        )
        assert await page.evaluate("document.documentElement.dataset.build") != loaded
        css = await page.evaluate("fetch('/static/style.css').then((r) => r.text())")
        assert marker in css
        assert page.errors == []
