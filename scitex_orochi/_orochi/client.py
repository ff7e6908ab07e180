"""`orochi.client` (0.1.0): the agent client, now `scitex_orochi.client.agent`."""

from __future__ import annotations

from scitex_orochi.client.agent import Message, OrochiClient, Sent, default_agent_name, ws_url
from scitex_orochi.client.sync import SyncOrochiClient

__all__ = ["Message", "OrochiClient", "Sent", "SyncOrochiClient", "default_agent_name", "ws_url"]
