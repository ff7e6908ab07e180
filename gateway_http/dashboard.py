"""The dashboard page at `/` and its static files: vanilla JS modules and CSS, no CDN, no build.

`/static/*.js` goes out as JavaScript (aiohttp's types come from Python's built-in
table, not the host's mime.types); Chromium refuses a module script of any other type.

The dashboard is a PWA: `/manifest.webmanifest` (name, icons, standalone) and the
service worker `/sw.js` at the root scope (static/sw.js: network-first for the page
and `/static/`, the cache only when offline). `GET /build` answers the build id, a
hash of the static files' names, sizes and modification times and the version: an
open page polls it (pwa.js) and reloads on a change, so a new build is picked up
within 20 s without a hard refresh, whether the files changed on disk or the
gateway restarted with new ones.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from scitex_orochi import __version__
from scitex_orochi.hub.config import Config

from .keys import CONFIG
from .upstream import connect_src

STATIC_DIR = Path(__file__).resolve().parent / "static"
# The page and its modules are tiny; revalidate each load so a new build is picked up at
# once, and never a new main.js with a stale module it imports.
NO_CACHE = {"Cache-Control": "no-cache"}
CONNECT_SRC = "connect-src 'self' ws: wss:"
PAGE_HEADERS = {
    **NO_CACHE,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the URL may carry ?token=
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
        f"script-src 'self'; {CONNECT_SRC}; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
}
SW_HEADERS = {
    **NO_CACHE,
    "Service-Worker-Allowed": "/",
    "X-Content-Type-Options": "nosniff",
}
MANIFEST_TYPE = "application/manifest+json"
BUILD_CACHE_S = 1.0  # /build stats the static files at most this often


def static_dir() -> Path:
    return STATIC_DIR


class BuildId:
    """The build id of the static files, recomputed at most every BUILD_CACHE_S."""

    def __init__(self) -> None:
        self._value = ""
        self._at = float("-inf")

    def current(self) -> str:
        now = time.monotonic()
        if now - self._at >= BUILD_CACHE_S:
            self._value = build_id(static_dir())
            self._at = now
        return self._value


def build_id(directory: Path) -> str:
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(directory.iterdir()):
        if path.is_file():
            st = path.stat()
            digest.update(f"\0{path.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


BUILD = web.AppKey("build", BuildId)


def page_headers(cfg: Config) -> dict[str, str]:
    """PAGE_HEADERS, the CSP letting a following page reach its upstream (upstream.py)."""
    csp = PAGE_HEADERS["Content-Security-Policy"]
    return {**PAGE_HEADERS, "Content-Security-Policy": csp.replace(CONNECT_SRC, connect_src(cfg))}


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(static_dir() / "index.html", headers=page_headers(request.app[CONFIG]))


async def favicon(request: web.Request) -> web.FileResponse:
    return web.FileResponse(static_dir() / "orochi-icon.svg", headers=NO_CACHE)


async def service_worker(request: web.Request) -> web.FileResponse:
    response = web.FileResponse(static_dir() / "sw.js", headers=SW_HEADERS)
    response.content_type = "text/javascript"
    return response


async def manifest(request: web.Request) -> web.FileResponse:
    response = web.FileResponse(static_dir() / "manifest.webmanifest", headers=NO_CACHE)
    response.content_type = MANIFEST_TYPE
    return response


async def build(request: web.Request) -> web.Response:
    """`{build, version}`: no token needed (the page and its files are public)."""
    return web.json_response(
        {"build": request.app[BUILD].current(), "version": __version__}, headers=NO_CACHE
    )


def revalidate(
    static: web.AbstractResource,
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """A response hook: `no-cache` on what the static resource serves, like the page."""

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        if request.match_info.route.resource is static:
            response.headers.update(NO_CACHE)

    return on_prepare


def setup(app: web.Application) -> None:
    app[BUILD] = BuildId()
    app.router.add_get("/", index)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_get("/sw.js", service_worker)
    app.router.add_get("/manifest.webmanifest", manifest)
    app.router.add_get("/build", build)
    static = app.router.add_static("/static/", static_dir(), append_version=False)
    app.on_response_prepare.append(revalidate(static))
