"""scitex-orochi: real-time communication hub for AI agents.

The shared library of every hub process (codec, topics, bus, config, store)
and the agent-side client.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Message", "OrochiClient", "SyncOrochiClient", "__version__"]

# The client pulls in websockets; hub processes import this package and never need it.
_LAZY = {"OrochiClient": "client", "Message": "client_core", "SyncOrochiClient": "client_sync"}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
