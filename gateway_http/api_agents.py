"""Agent and channel views from the presence replica: agents, registry, health, channels,
stats, resources and the dashboard config."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, TypeVar, cast

from aiohttp import web

from scitex_orochi import __version__
from scitex_orochi.hub.bus_bodies import AgentRecord, GoneRecord
from scitex_orochi.hub.config import Config

from .acting import Viewer, resolve_viewer
from .api_messages import channel_members
from .auth import Scope, authenticate, host_workspace
from .dashboard import BUILD
from .errors import ApiError
from .fleet_state import overlay
from .health import CLASSES, Thresholds, empty_counts, health_entry
from .keys import BUS, CONFIG, OBSERVERS, PRESENCE, STORE

PUBLIC_FIELDS: Final = (
    "name",
    "agent_id",
    "machine",
    "role",
    "model",
    "project",
    "multiplexer",
    "channels",
    "status",
    "current_task",
    "subagent_count",
    "resources",
    "since",
    "last_seen",
)
# Shown only when the record has them (dialect-B agents, gateway_ws/dialect_b.py).
FLEET_FIELDS: Final = ("subagents", "rtt_ms", "echo_rtt_ms")


def agent_view(
    record: AgentRecord,
    now: float,
    cfg: Config,
    online: bool = True,
    report: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A presence record as the API shows it (no internal connection ids)."""
    out: dict[str, Any] = {key: record.get(key) for key in PUBLIC_FIELDS}
    out["channels"] = list(out["channels"] or [])
    out["resources"] = dict(out["resources"] or {})
    fleet = cast(Mapping[str, Any], record)
    for key in FLEET_FIELDS:
        if key in fleet:
            out[key] = fleet[key]
    out["workspace"] = out["workspace_id"] = record.get("ws")
    # The published server's names for the same times, as ISO-8601 strings.
    out["last_heartbeat"] = _iso(record.get("last_seen"))
    out["registered_at"] = _iso(record.get("since"))
    out["online"] = online
    out["orochi_current_task"] = out["current_task"] or ""
    entry = health_entry(record, now, online=online, report=report, limits=Thresholds.of(cfg))
    out["health"] = entry["health"]
    out["health_reason"] = entry["reason"]
    out["health_source"] = entry["source"]
    out["last_seen_s_ago"] = entry["last_seen_s_ago"]
    return out


async def _diagnoses(
    request: web.Request, workspace: str | None
) -> dict[tuple[str, str], dict[str, Any]]:
    """The agents' last reported diagnoses (the lasting registry's `last_diagnosis`)."""
    return await asyncio.to_thread(request.app[STORE].diagnoses, workspace)


async def _lasting(
    request: web.Request, workspace: str | None
) -> tuple[dict[tuple[str, str], dict[str, Any]], dict[tuple[str, str], dict[str, Any]]]:
    """The lasting registry's rows by (workspace, name), and the last diagnoses among them."""
    rows = await asyncio.to_thread(request.app[STORE].registry, workspace)
    lasting = {(r["workspace_id"], r["name"]): r for r in rows}
    reports = {key: row["last_diagnosis"] for key, row in lasting.items() if row["last_diagnosis"]}
    return lasting, reports


def _iso(epoch: Any) -> str | None:
    if not isinstance(epoch, int | float) or isinstance(epoch, bool):
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat()


async def _online(request: web.Request, workspace: str | None) -> list[AgentRecord]:
    """The presence records of the scope, once every change the broker passed before
    this request is applied (`caught_up`): an agent whose register was acked is listed."""
    await request.app[BUS].caught_up()
    records = request.app[PRESENCE].records(workspace)
    return sorted(records, key=lambda r: (str(r.get("ws")), str(r.get("name"))))


async def _viewer(request: web.Request, scope: Scope) -> Viewer:
    """Who reads presence: a bad `?agent=` reads as nobody in particular (no DMs)."""
    try:
        return await resolve_viewer(request, scope)
    except ApiError:
        return Viewer(False)


R = TypeVar("R", AgentRecord, GoneRecord)


def _hide_dms(records: Sequence[R], viewer: Viewer) -> list[R]:
    """Records whose channels list only the DMs the viewer may read: a DM's name says
    who talks to whom."""
    out = []
    for record in records:
        channels = record.get("channels") or []
        if any(isinstance(c, str) and c.startswith("dm:") for c in channels):
            kept = [c for c in channels if viewer.may_read(c)]
            if len(kept) != len(channels):
                record = record.copy()  # the replica's own stays whole
                record["channels"] = kept
        out.append(record)
    return out


async def _visible(request: web.Request, scope: Scope) -> list[AgentRecord]:
    records = await _online(request, scope.workspace)
    return _hide_dms(records, await _viewer(request, scope))


async def agents(request: web.Request) -> web.Response:
    scope = await authenticate(request)
    cfg, now = request.app[CONFIG], time.time()
    records = await _visible(request, scope)
    reports = await _diagnoses(request, scope.workspace)
    return web.json_response(
        [
            overlay(request.app, agent_view(r, now, cfg, report=reports.get(_key(r))))
            for r in records
        ]
    )


def _key(record: Mapping[str, Any]) -> tuple[str, str]:
    return (str(record.get("ws")), str(record.get("name")))


async def registry(request: web.Request) -> web.Response:
    """Every agent ever registered in the scope: the online ones, the recently
    disconnected ones, then the lasting registry's others (`online: false`), which
    outlive restarts; each with `first_seen` and `last_diagnosis` when the registry
    knows them."""
    scope = await authenticate(request)
    cfg, now = request.app[CONFIG], time.time()
    lasting, reports = await _lasting(request, scope.workspace)
    online = [
        overlay(request.app, agent_view(r, now, cfg, report=reports.get(_key(r))))
        for r in await _visible(request, scope)
    ]
    names = {(a["workspace"], a["name"]) for a in online}
    gone = [
        agent_view(r, now, cfg, online=False, report=reports.get(_key(r)))
        for r in _hide_dms(
            request.app[BUS].gone_records(scope.workspace, now), await _viewer(request, scope)
        )
        if (r.get("ws"), r.get("name")) not in names
    ]
    names.update((a["workspace"], a["name"]) for a in gone)
    offline = [
        agent_view(registry_record(row), now, cfg, online=False, report=reports.get(key))
        for key, row in lasting.items()
        if key not in names
    ]
    out = online + gone + offline
    for view in out:
        row = lasting.get((view["workspace"], view["name"]))
        if row is not None:
            view["first_seen"] = _iso(row["first_seen"])
            view["last_diagnosis"] = row.get("last_diagnosis")
    return web.json_response(out)


def registry_record(row: dict[str, Any]) -> AgentRecord:
    """A lasting registry row as the presence record of an offline agent."""
    profile = row.get("profile") or {}
    record = AgentRecord(
        name=row["name"],
        ws=row["workspace_id"],
        since=row["first_seen"],
        last_seen=row["last_seen"],
        channels=[],
        status="offline",
        current_task=row.get("last_task") or "",
    )
    for key in ("agent_id", "machine", "role", "model", "project", "multiplexer"):
        if isinstance(profile.get(key), str):
            record[key] = profile[key]
    return record


async def agents_health(request: web.Request) -> web.Response:
    """Every agent of the scope with its class, reason and source (health.py): the online
    ones, the recently disconnected, and the lasting registry's others (dead, offline);
    `counts` per class, `classes` in order, `reports` the unexpired diagnoses."""
    scope = await authenticate(request)
    cfg, now = request.app[CONFIG], time.time()
    limits = Thresholds.of(cfg)
    lasting, reports = await _lasting(request, scope.workspace)
    viewer = await _viewer(request, scope)
    entries = [
        health_entry(r, now, report=reports.get(_key(r)), limits=limits)
        for r in await _visible(request, scope)
    ]
    seen = {(e["workspace"], e["name"]) for e in entries}
    offline: list[AgentRecord] = [
        r
        for r in _hide_dms(request.app[BUS].gone_records(scope.workspace, now), viewer)
        if _key(r) not in seen
    ]
    seen.update(_key(r) for r in offline)
    offline += [registry_record(row) for key, row in lasting.items() if key not in seen]
    entries += [
        health_entry(r, now, online=False, report=reports.get(_key(r)), limits=limits)
        for r in offline
    ]
    counts = empty_counts()
    for entry in entries:
        counts[entry["health"]] = counts.get(entry["health"], 0) + 1
    recent = [
        {"workspace": ws, "agent": name, **rep, "age_s": round(max(0.0, now - rep["at"]), 3)}
        for (ws, name), rep in reports.items()
        if isinstance(rep.get("at"), int | float) and now - rep["at"] <= limits.report_ttl_s
    ]
    return web.json_response(
        {
            "agents": entries,
            "counts": counts,
            "classes": list(CLASSES),
            "ts": now,
            "reports": recent,
        }
    )


async def channels(request: web.Request) -> web.Response:
    """`{"#ch": [members]}` of the agents online in the scope."""
    scope = await authenticate(request)
    return web.json_response(channel_members(await _visible(request, scope)))


async def stats(request: web.Request) -> web.Response:
    scope = await authenticate(request)
    records = await _visible(request, scope)
    members = channel_members(records)
    observers = [
        o
        for o in request.app[OBSERVERS]
        if scope.workspace is None or o.workspace in (None, scope.workspace)
    ]
    return web.json_response(
        {
            "agents_online": len(records),
            "channels_active": len(members),
            "observers_connected": len(observers),
            "agents": [r["name"] for r in records],
            "channels": sorted(members),
            "workspace": scope.workspace,
        }
    )


async def resources(request: web.Request) -> web.Response:
    """`{name: {resource keys..., machine, last_seen}}` from the agents' heartbeats."""
    scope = await authenticate(request)
    out: dict[str, dict[str, Any]] = {}
    for record in await _visible(request, scope):
        out[record["name"]] = {
            **(record.get("resources") or {}),
            "machine": record.get("machine") or "",
            "last_seen": record.get("last_seen"),
            "workspace": record.get("ws"),
        }
    return web.json_response(out)


async def config(request: web.Request) -> web.Response:
    """What the dashboard needs to know: who it is signed in as, and limits."""
    scope = await authenticate(request)
    cfg = request.app[CONFIG]
    return web.json_response(
        {
            "version": __version__,
            "build": request.app[BUILD].current(),
            "is_admin": scope.is_admin,
            "workspace": scope.workspace,
            "default_workspace": scope.one_workspace,
            "host_workspace": host_workspace(request),
            "ws_upstream": cfg.http.dashboard_ws_upstream,
            "media_max_size": cfg.http.media_max_bytes,
            "max_frame_bytes": cfg.ws.max_frame_bytes,
            "online_within_s": cfg.presence.online_within_s,
            "reap_after_s": cfg.presence.reap_after_s,
            "agent_port": cfg.ws.port,
            "push": cfg.push.enabled,  # web push offered (gateway_http/api_push.py)
        }
    )


async def whoami(request: web.Request) -> web.Response:
    """`{"admin": bool, "workspace": id|null}`: what the token may do (the dashboard
    disables posting and uploads unless `admin`); on a workspace subdomain, `workspace`
    is the subdomain's."""
    scope = await authenticate(request)
    return web.json_response({"admin": scope.is_admin, "workspace": scope.workspace})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/agents", agents)
    app.router.add_get("/api/agents/registry", registry)
    app.router.add_get("/api/agents/health", agents_health)
    app.router.add_get("/api/agents/health/", agents_health)
    app.router.add_get("/api/channels", channels)
    app.router.add_get("/api/stats", stats)
    app.router.add_get("/api/resources", resources)
    app.router.add_get("/api/config", config)
    app.router.add_get("/api/whoami", whoami)
