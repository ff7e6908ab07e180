"""Typed application state keys shared by the route modules."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from scitex_orochi.hub.config import Config

if TYPE_CHECKING:
    from .edge import ConnectionGuard
    from .service import HttpHub
    from .tickets import TicketStore

CONFIG = web.AppKey("config", Config)
STARTED = web.AppKey("started", float)
HUB: web.AppKey[HttpHub] = web.AppKey("hub")
EDGE: web.AppKey[ConnectionGuard] = web.AppKey("edge")
TICKETS: web.AppKey[TicketStore] = web.AppKey("tickets")
