"""`orochi.client` (0.1.0): the agent client, now `scitex_orochi.client`."""

from __future__ import annotations

from scitex_orochi.client import Message, OrochiClient, Sent, default_agent_name, ws_url
from scitex_orochi.client_sync import SyncOrochiClient

__all__ = ["Message", "OrochiClient", "Sent", "SyncOrochiClient", "default_agent_name", "ws_url"]
