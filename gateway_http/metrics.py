"""`GET /metrics` in the Prometheus text format (version 0.0.4), and `GET /healthz`.

The counters are this process's own (messages in and out, bus frames, ingest
state, observers, connections at the edge); agent counts come from the
presence replica, so any HTTP gateway reports the whole hub's agents.
`/metrics` needs no token, but only the admin token (`?token=` or
`Authorization: Bearer`) sees series labelled by workspace: workspace names
are the tenants' business. Without it the same metrics are the totals.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from aiohttp import web

from scitex_orochi import __version__

from .auth import request_token, scope_of_token
from .edge import EDGE
from .health import Thresholds, classify, empty_counts
from .keys import BUS, CONFIG, COUNTERS, OBSERVERS, PRESENCE, STARTED

PREFIX = "orochi_http_"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def metric(
    name: str, kind: str, help_text: str, samples: Iterable[tuple[dict[str, str], float]]
) -> list[str]:
    lines = [f"# HELP {PREFIX}{name} {help_text}", f"# TYPE {PREFIX}{name} {kind}"]
    for labels, value in samples:
        label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
        suffix = f"{{{label_text}}}" if label_text else ""
        lines.append(f"{PREFIX}{name}{suffix} {float(value):g}")
    return lines


def render(request: web.Request, by_workspace: bool = False) -> str:
    """The metrics text; `by_workspace` adds the per-workspace series (admin only)."""
    app = request.app
    side, cfg, edge, c = app[BUS], app[CONFIG], app[EDGE], app[COUNTERS]
    now = time.time()
    records = app[PRESENCE].records()
    health = empty_counts()  # computed classes only: reports live in the database
    limits = Thresholds.of(cfg)
    for record in records:
        health[classify(record, now, limits=limits).health] += 1
    workspaces: dict[str, int] = {}
    for record in records:
        workspaces[record["ws"]] = workspaces.get(record["ws"], 0) + 1
    lines: list[str] = []
    add = lines.extend
    add(
        metric(
            "info",
            "gauge",
            "Build and process identity.",
            [({"version": __version__, "origin": side.origin}, 1)],
        )
    )
    add(
        metric(
            "uptime_seconds",
            "gauge",
            "Seconds since this process started.",
            [({}, now - app[STARTED])],
        )
    )
    add(
        metric(
            "observers_connected",
            "gauge",
            "Observer WebSocket connections.",
            [({}, len(app[OBSERVERS]))],
        )
    )
    if by_workspace:
        add(
            metric(
                "agents_online",
                "gauge",
                "Agents online (presence replica), by workspace.",
                [({"workspace": workspace}, n) for workspace, n in sorted(workspaces.items())]
                or [({}, 0)],
            )
        )
    else:
        add(
            metric(
                "agents_online", "gauge", "Agents online (presence replica).", [({}, len(records))]
            )
        )
    add(
        metric(
            "agents_health",
            "gauge",
            "Agents online by health class.",
            [({"health": k}, v) for k, v in health.items()],
        )
    )
    add(
        metric(
            "messages_in_total",
            "counter",
            "Messages posted through this process (REST and observers) and stored.",
            [({}, c.messages_in)],
        )
    )
    add(
        metric(
            "messages_rejected_total",
            "counter",
            "Posted messages the persister refused.",
            [({}, c.messages_rejected)],
        )
    )
    add(
        metric(
            "messages_timed_out_total",
            "counter",
            "Posts answered 503 because the persister did not confirm in time.",
            [({}, c.messages_timed_out)],
        )
    )
    add(
        metric(
            "deliveries_total",
            "counter",
            "Stored messages delivered on the bus.",
            [({}, c.deliveries)],
        )
    )
    add(
        metric(
            "observer_frames_out_total",
            "counter",
            "Frames written to observers.",
            [({}, c.observer_frames_out)],
        )
    )
    add(
        metric(
            "observer_slow_closes_total",
            "counter",
            "Observers closed with 4008 because their send queue overflowed.",
            [({}, c.observer_slow_closes)],
        )
    )
    add(
        metric(
            "bus_published_total",
            "counter",
            "Frames published on the bus.",
            [({}, side.bus.published)],
        )
    )
    add(
        metric(
            "bus_received_total",
            "counter",
            "Frames received from the bus.",
            [({}, side.bus.received)],
        )
    )
    add(
        metric(
            "bus_drops_total",
            "counter",
            "Delivered seqs never seen by this process (frames dropped on the bus).",
            [({}, c.seq_gaps)],
        )
    )
    add(
        metric(
            "bus_duplicates_total",
            "counter",
            "Deliveries received again (republished).",
            [({}, c.duplicates)],
        )
    )
    add(
        metric(
            "ingest_pending",
            "gauge",
            "Posted messages waiting for the persister's ack.",
            [({}, len(side.ingest.pending))],
        )
    )
    add(
        metric(
            "ingest_republished_total",
            "counter",
            "Republications of messages still unacked.",
            [({}, side.ingest.republished)],
        )
    )
    add(
        metric(
            "persist_lag_seconds",
            "gauge",
            "Age of the oldest message posted here and not yet confirmed durable.",
            [({}, side.persist_lag_s())],
        )
    )
    add(
        metric(
            "persist_ack_seconds_sum",
            "counter",
            "Total seconds from post to durable ack.",
            [({}, c.ack_seconds_sum)],
        )
    )
    add(metric("persist_ack_seconds_count", "counter", "Durable acks timed.", [({}, c.ack_count)]))
    add(
        metric(
            "connections_open",
            "gauge",
            "Open connections on the dashboard port.",
            [({}, edge.open)],
        )
    )
    add(
        metric(
            "connections_refused_total",
            "counter",
            "Connections answered 503 at once: over the per-address or the total limit.",
            [({"reason": k}, v) for k, v in sorted(edge.refused.items())],
        )
    )
    add(
        metric(
            "header_timeouts_total",
            "counter",
            "Connections closed for not sending a request head in time.",
            [({}, edge.header_timeouts)],
        )
    )
    return "\n".join(lines) + "\n"


async def metrics(request: web.Request) -> web.Response:
    scope = await scope_of_token(request.app, request_token(request), None)
    response = web.Response(text=render(request, by_workspace=bool(scope and scope.is_admin)))
    response.headers["Content-Type"] = CONTENT_TYPE
    return response


async def healthz(request: web.Request) -> web.Response:
    app = request.app
    side = app[BUS]
    return web.json_response(
        {
            "status": "ok",
            "version": __version__,
            "origin": side.origin,
            "uptime_s": round(time.time() - app[STARTED], 3),
            "agents_online": len(app[PRESENCE].agents),
            "observers": len(app[OBSERVERS]),
            "ingest_pending": len(side.ingest.pending),
        }
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
