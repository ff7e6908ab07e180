"""Agent health classification (pure): healthy, idle, stale or dead.

From the presence record's last-seen time (refreshed by register, heartbeats,
status updates and channel changes) and its status:

- dead:    disconnected, or silent longer than DEAD_AFTER_S (the gateway reaps it),
           or a status saying it stopped (DEAD_STATUSES);
- stale:   silent longer than STALE_AFTER_S, or status "error";
- idle:    seen recently and its status says it waits (IDLE_STATUSES);
- healthy: seen recently and working or ready.
"""

from __future__ import annotations

from typing import Any

from scitex_orochi.hub.bus_bodies import AgentRecord
from scitex_orochi.hub.config import ONLINE_WITHIN_S, REAP_AFTER_S

STALE_AFTER_S = ONLINE_WITHIN_S  # 60 s: "online" means seen within this
DEAD_AFTER_S = REAP_AFTER_S  # 300 s: the WebSocket gateway reaps silent agents
IDLE_STATUSES = frozenset({"idle", "waiting", "away", "sleeping"})
ERROR_STATUSES = frozenset({"error", "failed", "stuck"})
DEAD_STATUSES = frozenset({"dead", "crashed", "stopped", "offline"})

HEALTHY, IDLE, STALE, DEAD = "healthy", "idle", "stale", "dead"


def classify(
    record: AgentRecord,
    now: float,
    *,
    online: bool = True,
    stale_after_s: float = STALE_AFTER_S,
    dead_after_s: float = DEAD_AFTER_S,
) -> tuple[str, str]:
    """(health, reason) of one presence record at epoch `now`."""
    status = str(record.get("status") or "").lower()
    age = seen_ago(record, now)
    if not online:
        return DEAD, "disconnected"
    if age > dead_after_s:
        return DEAD, f"silent for {age:.0f}s"
    if status in DEAD_STATUSES:
        return DEAD, f"status {status}"
    if age > stale_after_s:
        return STALE, f"silent for {age:.0f}s"
    if status in ERROR_STATUSES:
        return STALE, f"status {status}"
    if status in IDLE_STATUSES:
        return IDLE, f"status {status}"
    return HEALTHY, f"seen {age:.0f}s ago"


def seen_ago(record: AgentRecord, now: float) -> float:
    try:
        last = float(record.get("last_seen") or record.get("since") or 0.0)
    except (TypeError, ValueError):
        last = 0.0
    return max(0.0, now - last) if last else float("inf")


def health_entry(
    record: AgentRecord,
    now: float,
    *,
    online: bool = True,
    stale_after_s: float = STALE_AFTER_S,
    dead_after_s: float = DEAD_AFTER_S,
) -> dict[str, Any]:
    health, reason = classify(
        record, now, online=online, stale_after_s=stale_after_s, dead_after_s=dead_after_s
    )
    age = seen_ago(record, now)
    return {
        "name": record.get("name"),
        "agent_id": record.get("agent_id") or record.get("name"),
        "workspace": record.get("ws"),
        "online": online,
        "health": health,
        "reason": reason,
        "last_seen": record.get("last_seen"),
        "last_seen_s_ago": None if age == float("inf") else round(age, 3),
        "status": record.get("status") or "",
        "current_task": record.get("current_task") or "",
        "machine": record.get("machine") or "",
        "role": record.get("role") or "",
        "resources": dict(record.get("resources") or {}),
    }
