"""Route registration shared by the route modules."""

from __future__ import annotations

from typing import Any

from aiohttp import web


def add_both(app: web.Application, method: str, path: str, handler: Any) -> None:
    """`path` with and without its trailing slash (the fleet's clients send the slash,
    dialect A's do not)."""
    app.router.add_route(method, path, handler)
    app.router.add_route(method, path + "/", handler)
