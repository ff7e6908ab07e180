"""The seven health classes as pure rules with an injected clock (gateway_http/health.py):
computed ones from the presence record, reported ones from a diagnosis, in precedence
order, with the thresholds as parameters."""

from __future__ import annotations

import pytest

from gateway_http.health import (
    CLASSES,
    DEFAULT,
    PROBE_MARK,
    Thresholds,
    classify,
    empty_counts,
    health_entry,
    report_holds,
)

NOW = 10_000.0
LIMITS = Thresholds(stale_after_s=60, dead_after_s=300, ghost_after_s=45, report_ttl_s=1800)


def rec(age: float = 1.0, status: str = "busy", **more) -> dict:
    return {
        "name": "a",
        "ws": "w",
        "since": NOW - 3600,
        "last_seen": NOW - age,
        "status": status,
        **more,
    }


def report(status: str, age: float = 10.0, **more) -> dict:
    return {
        "status": status,
        "reason": f"{status} seen",
        "source": "healer",
        "at": NOW - age,
        **more,
    }


def health(record: dict, **kw) -> str:
    return classify(record, NOW, limits=LIMITS, **kw).health


@pytest.mark.parametrize(
    ("record", "online", "expected"),
    [
        (rec(5), True, "healthy"),
        (rec(5, "idle"), True, "idle"),
        (rec(5, "waiting"), True, "idle"),
        (rec(5, "error"), True, "stale"),
        (rec(61), True, "stale"),
        (rec(59), True, "healthy"),
        (rec(301), True, "dead"),
        (rec(5, "crashed"), True, "dead"),
        (rec(1), False, "dead"),
        (rec(5, **{PROBE_MARK: NOW - 45}), True, "ghost"),
        (rec(5, **{PROBE_MARK: NOW - 44}), True, "healthy"),  # late, not yet a ghost
        (rec(61, **{PROBE_MARK: NOW - 50}), True, "ghost"),  # ghost before stale
        (rec(301, **{PROBE_MARK: NOW - 50}), True, "dead"),  # dead before ghost
    ],
)
def test_computed_classes_follow_silence_status_and_the_probe(record, online, expected):
    assert health(record, online=online) == expected


def test_the_thresholds_are_parameters():
    assert health(rec(30)) == "healthy"
    tight = Thresholds(stale_after_s=20, dead_after_s=40, ghost_after_s=5, report_ttl_s=10)
    assert classify(rec(30), NOW, limits=tight).health == "stale"
    assert classify(rec(41), NOW, limits=tight).health == "dead"
    assert classify(rec(1, **{PROBE_MARK: NOW - 6}), NOW, limits=tight).health == "ghost"


def test_reasons_and_sources_say_why():
    v = classify(rec(5, **{PROBE_MARK: NOW - 50}), NOW, limits=LIMITS)
    assert v.source == "hub" and "unanswered for 50s" in v.reason
    v = classify(rec(61), NOW, limits=LIMITS)
    assert v.reason == "silent for 61s"
    v = classify(rec(), NOW, limits=LIMITS, report=report("stuck_prompt"))
    assert (v.health, v.reason, v.source) == ("stuck_prompt", "stuck_prompt seen", "healer")
    v = classify(rec(), NOW, limits=LIMITS, report={"status": "remediating", "at": NOW})
    assert (v.reason, v.source) == ("reported remediating", "report")


def test_stuck_prompt_beats_the_live_classes_but_not_dead_or_ghost():
    stuck = report("stuck_prompt")
    for record in (rec(5), rec(5, "idle"), rec(61)):
        assert health(record, report=stuck) == "stuck_prompt"
    assert health(rec(301), report=stuck) == "dead"
    assert health(rec(5, **{PROBE_MARK: NOW - 50}), report=stuck) == "ghost"
    assert health(rec(5), online=False, report=stuck) == "dead"


def test_remediating_beats_everything_a_restart_looks_like():
    fixing = report("remediating")
    assert health(rec(5), online=False, report=fixing) == "remediating"
    assert health(rec(400), report=fixing) == "remediating"
    assert health(rec(5, **{PROBE_MARK: NOW - 50}), report=fixing) == "remediating"


def test_a_report_holds_until_it_expires_or_the_agent_starts_a_new_session():
    stuck = report("stuck_prompt", age=1799)
    assert health(rec(), report=stuck) == "stuck_prompt"
    assert health(rec(), report=report("stuck_prompt", age=1801)) == "healthy"  # expired
    # A session that began after the report: the remediation worked.
    fresh = rec(since=NOW - 5)
    assert health(fresh, report=report("remediating", age=10)) == "healthy"
    assert report_holds(report("remediating", age=10), rec(since=NOW - 11), NOW, 1800)
    assert not report_holds(report("remediating", age=10), fresh, NOW, 1800)


def test_other_reported_statuses_do_not_change_the_class():
    for status in ("healthy", "dead", "ghost", "bogus"):
        assert health(rec(), report=report(status)) == "healthy"
    assert health(rec(), report={"status": "stuck_prompt"}) == "healthy"  # no time: ignored
    assert health(rec(), report={"status": "stuck_prompt", "at": True}) == "healthy"


def test_the_clock_is_injected_not_read():
    record = rec(0)
    assert classify(record, NOW + 59, limits=LIMITS).health == "healthy"
    assert classify(record, NOW + 61, limits=LIMITS).health == "stale"
    assert classify(record, NOW + 301, limits=LIMITS).health == "dead"


def test_entries_carry_class_reason_source_and_counts_cover_every_class():
    entry = health_entry(
        rec(5, current_task="t", subagent_count=2),
        NOW,
        report=report("stuck_prompt"),
        limits=LIMITS,
    )
    assert entry["health"] == "stuck_prompt" and entry["source"] == "healer"
    assert entry["reported"]["reason"] == "stuck_prompt seen"
    assert entry["current_task"] == "t" and entry["subagent_count"] == 2
    ghost = health_entry(rec(5, **{PROBE_MARK: NOW - 50}), NOW, limits=LIMITS)
    assert ghost["probe_unanswered_s"] == 50.0
    assert list(empty_counts()) == list(CLASSES) and len(CLASSES) == 7
    assert DEFAULT.ghost_after_s == 45.0 and DEFAULT.report_ttl_s == 1800.0
