"""The application's resources, one typed `web.AppKey` each, and the shapes of the bus side.

Route modules take what they use from `request.app[...]`: the config, the stores,
the presence replica, the token cache, the observers, the counters, and, for
what only the bus can do (posting, revocations, observer deliveries, requests to
the Gitea worker and the Telegram bridge), `BUS`. Keys of resources defined in
this package sit beside their classes: `media.MEDIA`, `tickets.TICKETS`,
`edge.EDGE`. `app.create_app` fills them all from `service.HttpHub`, the one place
that knows its attributes.

This module imports nothing of `gateway_http`: the bus side is described by
protocols, so no route module depends on `service.py`, and no import circle
runs through here.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import Any, Protocol

from aiohttp import web

from scitex_orochi.hub.bus import AsyncBus
from scitex_orochi.hub.bus_bodies import AckItem, GoneRecord, RpcReply
from scitex_orochi.hub.config import Config
from scitex_orochi.hub.ingest import Ingest
from scitex_orochi.hub.presence import PresenceReplica
from scitex_orochi.hub.store import Store
from scitex_orochi.hub.tokens import TokenCache


class CounterSet(Protocol):
    """The process counters /metrics exports (`service.Counters`)."""

    messages_in: int
    messages_rejected: int
    messages_timed_out: int
    deliveries: int
    observer_frames_out: int
    observer_slow_closes: int
    seq_gaps: int
    duplicates: int
    ack_seconds_sum: float
    ack_count: int


class ObserverView(Protocol):
    """What the agent and metrics routes read of a connected observer."""

    workspace: str | None


class Poster(Protocol):
    async def post(
        self,
        workspace: str,
        envelope: dict[str, Any],
        timeout_s: float,
        *,
        sender_type: str = "human",
        admin: bool = False,
    ) -> AckItem:
        """Publish one validated envelope (a message, or a react/edit/delete change); the
        persister's ack body once it is durable. `admin`: asked with the admin token."""
        ...


class ObserverHub(Poster, Protocol):
    """What one observer connection needs: limits, counters, and posting."""

    @property
    def cfg(self) -> Config: ...

    @property
    def counters(self) -> CounterSet: ...


class BusSide(ObserverHub, Protocol):
    """The process's bus side (`service.HttpHub`), for what only the bus can do."""

    @property
    def origin(self) -> str: ...

    @property
    def bus(self) -> AsyncBus: ...

    @property
    def ingest(self) -> Ingest: ...

    def gone_records(self, workspace: str | None, now: float) -> list[GoneRecord]: ...

    def persist_lag_s(self) -> float: ...

    async def caught_up(self) -> None:
        """Return once everything the broker passed before the call was dispatched."""
        ...

    def publish_revocation(self, tokens: set[str], workspaces: set[str]) -> None: ...

    async def publish_policy_change(self, workspace: str) -> None: ...

    async def publish_kick(self, workspace: str, names: list[str]) -> None: ...

    def forget_gone(self, workspace: str, names: set[str]) -> None: ...

    async def add_observer(self, observer: Any) -> None: ...

    async def request(self, service: str, body: Mapping[str, object], timeout_s: float) -> RpcReply:
        """Ask a bus service (`gitea`, `telegram`) and wait for its reply body."""
        ...

    def remove_observer(self, observer: Any) -> None: ...


CONFIG = web.AppKey("config", Config)
STARTED = web.AppKey("started", float)
STORE = web.AppKey("store", Store)  # read-only: authentication, history
ADMIN_STORE = web.AppKey("admin_store", Store)  # writable: workspaces, tokens, invites
PRESENCE = web.AppKey("presence", PresenceReplica)
AUTH_CACHE: web.AppKey[TokenCache[Any]] = web.AppKey("auth_cache")
OBSERVERS: web.AppKey[Set[ObserverView]] = web.AppKey("observers")  # read here, kept by BUS
COUNTERS: web.AppKey[CounterSet] = web.AppKey("counters")
BUS: web.AppKey[BusSide] = web.AppKey("bus")
