"""The dashboard page at `/` and its static files: vanilla JS modules and CSS, no CDN, no build.

`/static/*.js` goes out as JavaScript (aiohttp's types come from Python's built-in
table, not the host's mime.types); Chromium refuses a module script of any other type.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).resolve().parent / "static"
# The page and its modules are tiny; revalidate each load so a new build is picked up at
# once, and never a new main.js with a stale module it imports.
NO_CACHE = {"Cache-Control": "no-cache"}
PAGE_HEADERS = {
    **NO_CACHE,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the URL may carry ?token=
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
        "script-src 'self'; connect-src 'self' ws: wss:; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
}


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers=PAGE_HEADERS)


async def favicon(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "orochi-icon.svg", headers=NO_CACHE)


def revalidate(
    static: web.AbstractResource,
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """A response hook: `no-cache` on what the static resource serves, like the page."""

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        if request.match_info.route.resource is static:
            response.headers.update(NO_CACHE)

    return on_prepare


def setup(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/favicon.ico", favicon)
    static = app.router.add_static("/static/", STATIC_DIR, append_version=False)
    app.on_response_prepare.append(revalidate(static))
