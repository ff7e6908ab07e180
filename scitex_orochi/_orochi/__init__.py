"""`orochi`: the import name of the published scitex-orochi 0.1.0, kept for its agents.

    from orochi.client import OrochiClient      # = scitex_orochi.OrochiClient

A thin alias of `scitex_orochi`; new code imports `scitex_orochi`. Installed as the
top-level package `orochi` from `scitex_orochi/_orochi/` (pyproject.toml, hatch
force-include), so the repository keeps one source tree.
"""

from __future__ import annotations

from scitex_orochi import Message, OrochiClient, SyncOrochiClient, __version__

__all__ = ["Message", "OrochiClient", "SyncOrochiClient", "__version__"]
