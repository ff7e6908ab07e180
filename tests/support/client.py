"""The agent client (`OrochiClient`) as tests build it against a real hub: fast backoff,
scaled deadlines."""

from __future__ import annotations

from typing import Any

from scitex_orochi import OrochiClient
from scitex_orochi.client.core import Backoff

from support.util import TIME_SCALE

WAIT_S = 30.0 * TIME_SCALE
FAST = Backoff(initial_s=0.05, factor=2.0, max_s=0.5)


def agent(hub: Any, name: str, channels=("#r",), **kw: Any) -> OrochiClient:
    return OrochiClient(
        name,
        host=hub.host,
        port=hub.port,
        token=kw.pop("token", hub.default_token),
        channels=list(channels),
        backoff=FAST,
        timeout=WAIT_S,
        connect_timeout=WAIT_S,
        **kw,
    )
