"""The agent client: async `OrochiClient`, `SyncOrochiClient` for scripts, the REST
client and the MCP server. Needs websockets only: no zmq, SQLAlchemy or aiohttp."""

from __future__ import annotations

from .agent import OrochiClient
from .core import Message, Sent
from .sync import SyncOrochiClient

__all__ = ["Message", "OrochiClient", "Sent", "SyncOrochiClient"]
