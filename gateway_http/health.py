"""Agent health classification (pure; the clock is an argument).

Seven classes. Five the hub computes from the presence record (last sign of life,
status, the liveness probe); two a reporter (the fleet's healer, with any token of the
workspace) sets through `POST /api/agents/health/`. In order of precedence:

- **remediating** (reported): someone is repairing the agent (restarting it, say).
  Wins over everything, a disconnected agent included: a restart looks dead until
  the agent is back.
- **dead**: disconnected, or silent longer than `dead_after_s` (REAP_AFTER_S, when the
  WebSocket gateway closes it), or a status saying it stopped (DEAD_STATUSES).
- **ghost**: its socket is open but it leaves the hub's liveness probe unanswered for
  `ghost_after_s` (GHOST_AFTER_S) or longer: dialect B's `echo {nonce}` (the sidecar
  answers `echo_pong`), dialect A's protocol ping (a WebSocket ping frame, which
  every WebSocket client library answers from its read loop). The WebSocket gateway
  marks the record (`probe_unanswered_since`) once a probe is that late and clears
  the mark when an answer arrives. After PING_TIMEOUT_S without a pong the gateway
  closes the socket (1011) and the agent is dead.
- **stuck_prompt** (reported): alive but waiting at an interactive prompt nobody
  answers. Dead and ghost win over it.
- **stale**: silent longer than `stale_after_s` (ONLINE_WITHIN_S), or status "error".
- **idle**: seen recently and its status says it waits (IDLE_STATUSES).
- **healthy**: seen recently and working or ready.

A report holds until the agent is healthy again, which is one of: a later report
of another status (a healer's "healthy" clears its "stuck_prompt"), a new session
of the agent (it re-registered after the report: the remediation worked), or the
report's age passing `report_ttl_s` (HEALTH_REPORT_TTL_S). Reported statuses other
than the two reported classes are kept and shown (`reported`), beside the hub's own
class, not instead of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, cast

from scitex_orochi.hub.bus_bodies import AgentRecord
from scitex_orochi.hub.config import ONLINE_WITHIN_S, REAP_AFTER_S, Config
from scitex_orochi.hub.settings import GHOST_AFTER_S, HEALTH_REPORT_TTL_S

STALE_AFTER_S = ONLINE_WITHIN_S  # 60 s: "online" means seen within this
DEAD_AFTER_S = REAP_AFTER_S  # 300 s: the WebSocket gateway reaps silent agents
IDLE_STATUSES = frozenset({"idle", "waiting", "away", "sleeping"})
ERROR_STATUSES = frozenset({"error", "failed", "stuck"})
DEAD_STATUSES = frozenset({"dead", "crashed", "stopped", "offline"})

HEALTHY, IDLE, STALE, STUCK_PROMPT, REMEDIATING, GHOST, DEAD = (
    "healthy",
    "idle",
    "stale",
    "stuck_prompt",
    "remediating",
    "ghost",
    "dead",
)
CLASSES: Final = (HEALTHY, IDLE, STALE, STUCK_PROMPT, REMEDIATING, GHOST, DEAD)
REPORTED_CLASSES: Final = frozenset({STUCK_PROMPT, REMEDIATING})
HUB_SOURCE: Final = "hub"
PROBE_MARK: Final = "probe_unanswered_since"  # set on the record by the WebSocket gateway


@dataclass(frozen=True)
class Thresholds:
    stale_after_s: float = STALE_AFTER_S
    dead_after_s: float = DEAD_AFTER_S
    ghost_after_s: float = GHOST_AFTER_S
    report_ttl_s: float = HEALTH_REPORT_TTL_S

    @classmethod
    def of(cls, cfg: Config) -> Thresholds:
        p = cfg.presence
        return cls(p.online_within_s, p.reap_after_s, p.ghost_after_s, p.health_report_ttl_s)


DEFAULT = Thresholds()


@dataclass(frozen=True)
class Verdict:
    health: str
    reason: str
    source: str = HUB_SOURCE


def _num(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def report_holds(
    report: Mapping[str, Any] | None,
    record: AgentRecord | None,
    now: float,
    ttl_s: float,
) -> bool:
    """Whether a reported class still stands at `now`: unexpired, and the agent has not
    begun a new session since (a `since` after the report's time)."""
    if not report or report.get("status") not in REPORTED_CLASSES:
        return False
    at = _num(report.get("at"))
    if at is None or now - at > ttl_s:
        return False
    since = _num(record.get("since")) if record is not None else None
    return since is None or since <= at


def classify(
    record: AgentRecord,
    now: float,
    *,
    online: bool = True,
    report: Mapping[str, Any] | None = None,
    limits: Thresholds = DEFAULT,
) -> Verdict:
    """The health of one agent at epoch `now`: its presence record (`online` False for
    one the hub no longer holds a session of) and its last report, if any."""
    if report_holds(report, record if online else None, now, limits.report_ttl_s):
        assert report is not None
        status = str(report["status"])
        beaten = not online or _computed(record, now, limits).health in (DEAD, GHOST)
        if status == REMEDIATING or not beaten:
            reason = str(report.get("reason") or f"reported {status}")
            return Verdict(status, reason, str(report.get("source") or "report"))
    if not online:
        return Verdict(DEAD, "disconnected")
    return _computed(record, now, limits)


def _computed(record: AgentRecord, now: float, limits: Thresholds) -> Verdict:
    status = str(record.get("status") or "").lower()
    age = seen_ago(record, now)
    if age > limits.dead_after_s:
        return Verdict(DEAD, f"silent for {age:.0f}s")
    if status in DEAD_STATUSES:
        return Verdict(DEAD, f"status {status}")
    late = _num(_fleet(record).get(PROBE_MARK))
    if late is not None and now - late >= limits.ghost_after_s:
        return Verdict(
            GHOST, f"socket open, the hub's liveness probe unanswered for {now - late:.0f}s"
        )
    if age > limits.stale_after_s:
        return Verdict(STALE, f"silent for {age:.0f}s")
    if status in ERROR_STATUSES:
        return Verdict(STALE, f"status {status}")
    if status in IDLE_STATUSES:
        return Verdict(IDLE, f"status {status}")
    return Verdict(HEALTHY, f"seen {age:.0f}s ago")


def _fleet(record: AgentRecord) -> Mapping[str, Any]:
    return cast(Mapping[str, Any], record)  # a record may carry gateway-added keys


def seen_ago(record: AgentRecord, now: float) -> float:
    try:
        last = float(record.get("last_seen") or record.get("since") or 0.0)
    except (TypeError, ValueError):
        last = 0.0
    return max(0.0, now - last) if last else float("inf")


def empty_counts() -> dict[str, int]:
    return dict.fromkeys(CLASSES, 0)


def health_entry(
    record: AgentRecord,
    now: float,
    *,
    online: bool = True,
    report: Mapping[str, Any] | None = None,
    limits: Thresholds = DEFAULT,
) -> dict[str, Any]:
    verdict = classify(record, now, online=online, report=report, limits=limits)
    age = seen_ago(record, now)
    entry: dict[str, Any] = {
        "name": record.get("name"),
        "agent_id": record.get("agent_id") or record.get("name"),
        "workspace": record.get("ws"),
        "online": online,
        "health": verdict.health,
        "reason": verdict.reason,
        "source": verdict.source,
        "last_seen": record.get("last_seen"),
        "last_seen_s_ago": None if age == float("inf") else round(age, 3),
        "status": record.get("status") or "",
        "current_task": record.get("current_task") or "",
        "subagent_count": record.get("subagent_count") or 0,
        "machine": record.get("machine") or "",
        "role": record.get("role") or "",
        "resources": dict(record.get("resources") or {}),
    }
    late = _num(_fleet(record).get(PROBE_MARK))
    if late is not None:
        entry["probe_unanswered_s"] = round(max(0.0, now - late), 3)
    if report:
        entry["reported"] = dict(report)
    return entry
