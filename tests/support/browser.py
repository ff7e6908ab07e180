"""Headless Debian Chromium driven by Playwright, for the dashboard tests.

Never `playwright install`: the browser is /usr/bin/chromium. Tests are skipped only when
it or the playwright package is missing (CI has both). Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from support.util import REPO, TIME_SCALE

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
UI_TIMEOUT_MS = int(10_000 * TIME_SCALE)
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

try:
    from playwright.async_api import async_playwright
except ImportError:  # pragma: no cover - CI installs it
    async_playwright = None


def require_browser() -> None:
    if async_playwright is None:
        pytest.skip("the playwright package is not installed (pip install playwright)")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """The browser (skips the test when it cannot run), closed on exit."""
    require_browser()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def new_tab(browser: Any, viewport: dict[str, int], **context: Any) -> Any:
    """A page in a fresh context; `page.errors` collects uncaught page errors and
    `page.dialogs` every alert/confirm/prompt shown (each is dismissed)."""
    ctx = await browser.new_context(viewport=viewport, **context)
    tab = await ctx.new_page()
    tab.set_default_timeout(UI_TIMEOUT_MS)
    errors: list[str] = []
    dialogs: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))

    async def on_dialog(dialog: Any) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        await dialog.dismiss()

    tab.on("dialog", on_dialog)
    tab.errors = errors
    tab.dialogs = dialogs
    return tab


def phone_context() -> dict[str, Any]:
    """A touch phone: 390x844, touch events, mobile viewport."""
    return {"has_touch": True, "is_mobile": True, "device_scale_factor": 2}


def screenshot_path(name: str) -> str:
    ARTIFACTS.mkdir(exist_ok=True)
    return str(ARTIFACTS / name)
