"""The agent client: async `OrochiClient`, `SyncOrochiClient` for scripts, the REST
client and the MCP server. Needs websockets only: no zmq, SQLAlchemy or aiohttp."""

from __future__ import annotations

from .agent import OrochiClient
from .core import Changed, Event, Message, Sent, Thread
from .sync import SyncOrochiClient

__all__ = ["Changed", "Event", "Message", "OrochiClient", "Sent", "SyncOrochiClient", "Thread"]
