"""scitex-orochi: real-time communication hub for AI agents.

Packages: `protocol` (the wire protocol, pure), `client` (what agents import),
`hub` (the hub processes' shared internals) and `cli` (`scitex-orochi`).
"""

from __future__ import annotations

from .client import Message, OrochiClient, SyncOrochiClient

__version__ = "0.1.0"

__all__ = ["Message", "OrochiClient", "SyncOrochiClient", "__version__"]
