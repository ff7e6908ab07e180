"""scitex-orochi: real-time communication hub for AI agents.

The shared library of every hub process (codec, topics, bus, config, store)
and the agent-side client.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
