"""What the fleet's REST registrations tell this HTTP gateway, kept in its memory with an
expiry.

The HTTP gateway cannot write them elsewhere: the gateways hold the agents' sessions
(a presence record is its gateway's, and a snapshot from it would overwrite anything
published here), and every process but the persister opens the database read-only
(docs/internals.md). So a **REST registration** (`POST /api/agents/register/`, the
sidecar's every 30 s) is kept here: the profile fields and metrics it sends, per
(workspace, name), and which name registered with which token. The profile decorates
that agent's presence record in `/api/agents` and `/api/agents/registry` (fields the
session left empty, and the metrics under `resources`); the token's name is "the name
registered with that token" for the routes the sidecar calls without naming itself
(acting.py).

Registrations expire (`REGISTRATION_TTL_S`) and are bounded (`MAX_ENTRIES`, the oldest
given up first). They live in this one process: a restart of the HTTP gateway forgets
them until the next registration (the sidecar re-registers every 30 s). Health reports
(`POST /api/agents/health/`) are not kept here but in the lasting registry, through
the persister (api_fleet.post_health).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

REGISTRATION_TTL_S = 300.0  # ten of the sidecar's 30 s registrations
MAX_ENTRIES = 10_000

Key = tuple[str, str]  # (workspace, agent name)


@dataclass
class Registration:
    workspace: str
    name: str
    token: str
    profile: dict[str, Any]
    metrics: dict[str, Any]
    at: float = field(default_factory=time.time)


def _bounded_put(table: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > MAX_ENTRIES:
        table.popitem(last=False)


class FleetState:
    def __init__(self, registration_ttl_s: float = REGISTRATION_TTL_S) -> None:
        self.registration_ttl_s = registration_ttl_s
        self.registrations: OrderedDict[Key, Registration] = OrderedDict()
        self.by_token: OrderedDict[str, Key] = OrderedDict()

    # ---- registrations ----------------------------------------------------------------
    def register(self, reg: Registration) -> None:
        key = (reg.workspace, reg.name)
        _bounded_put(self.registrations, key, reg)
        _bounded_put(self.by_token, reg.token, key)

    def registration(
        self, workspace: str, name: str, now: float | None = None
    ) -> Registration | None:
        reg = self.registrations.get((workspace, name))
        if reg is None:
            return None
        if (now or time.time()) - reg.at > self.registration_ttl_s:
            del self.registrations[(workspace, name)]
            return None
        return reg

    def name_of_token(self, token: str, now: float | None = None) -> str | None:
        """The name that last REST-registered with this token (unexpired), or None."""
        key = self.by_token.get(token)
        if key is None:
            return None
        reg = self.registration(*key, now=now)
        if reg is None or reg.token != token:
            self.by_token.pop(token, None)
            return None
        return reg.name


FLEET_STATE = web.AppKey("fleet_state", FleetState)


def state_of(app: web.Application) -> FleetState | None:
    return app.get(FLEET_STATE)


def overlay(app: web.Application, view: dict[str, Any]) -> dict[str, Any]:
    """An agent view (api_agents.agent_view) with what its REST registration adds: the
    fields the session left empty, the metrics under `resources` (the session's own
    keys win), and `rest_registered_at`."""
    state = state_of(app)
    if state is None:
        return view
    reg = state.registration(str(view.get("workspace")), str(view.get("name")))
    if reg is None:
        return view
    for key, value in reg.profile.items():
        if key == "current_task":
            if not view.get("current_task"):
                view["current_task"] = view["orochi_current_task"] = value
        elif key == "subagent_count":
            if not view.get("subagent_count"):
                view["subagent_count"] = value
        elif not view.get(key):
            view[key] = value
    view["resources"] = {**reg.metrics, **(view.get("resources") or {})}
    view["rest_registered_at"] = reg.at
    return view
