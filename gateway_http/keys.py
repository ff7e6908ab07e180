"""Typed application state keys shared by the route modules."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from scitex_orochi.config import Config

if TYPE_CHECKING:
    from .service import HttpHub

CONFIG = web.AppKey("config", Config)
STARTED = web.AppKey("started", float)
HUB: web.AppKey[HttpHub] = web.AppKey("hub")
