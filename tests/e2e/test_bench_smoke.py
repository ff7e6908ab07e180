"""The benchmark runs end to end in --quick mode against our hub and the ceiling."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import report, runner
from bench.workloads import QUICK

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_quick_bench_produces_sane_numbers(tmp_path: Path) -> None:
    lines: list[str] = []
    results = runner.run(
        ["fleet", "latency", "connections", "ingest", "history", "noisy", "storm", "fleet_b"],
        ["ours", "ceiling"],
        quick=True,
        log=lines.append,
    )
    w = results["workloads"]
    for target in ("ours", "ceiling"):
        fleet = w["fleet"][target]
        assert fleet.get("completeness_pct") == 100.0, (target, fleet, lines)
        assert fleet["deliveries_per_s"] > 0 and fleet["duplicates"] == 0
        assert (
            fleet["deliveries"]
            == fleet["expected_deliveries"]
            == QUICK.fleet_senders * QUICK.fleet_per_sender * (QUICK.fleet_agents - 1)
        )
        assert 0 < fleet["e2e_p50_ms"] <= fleet["e2e_p99_ms"]
        lat = w["latency"][target]
        assert lat["completeness_pct"] == 100.0, (target, lat)
        assert 0 < lat["e2e_p50_ms"] <= lat["e2e_p99_ms"] and lat["ack_p99_ms"] > 0
        conns = w["connections"][target]
        assert conns["connections"] == QUICK.idle_agents, (target, conns)
        assert conns["presence_listed"] >= QUICK.idle_agents and conns["presence_p99_ms"] > 0
    assert w["connections"]["ours"]["processes"] >= 4  # supervisord, broker, persister, gateways
    sqlite = w["ingest"]["ours/sqlite"]
    assert sqlite["completeness_pct"] == 100.0 and sqlite["messages_per_s"] > 0, sqlite
    hist = w["history"]["ours"]
    assert hist["returned"] == 50 and hist["queries"] == QUICK.history_queries, hist
    assert hist["ws_p99_ms"] > 0 and hist["raw_p99_ms"] > 0
    assert "skipped" in w["history"]["ceiling"]
    storm = w["storm"]["ours"]
    assert storm["rounds"] == QUICK.storm_rounds and storm["lost"] == 0, storm
    assert storm["events_received"] == storm["events_expected"] > 0
    assert storm["out_of_order"] == 0
    half_b = w["fleet_b"]["ours"]
    assert half_b["completeness_pct"] == 100.0 and half_b["duplicates"] == 0, half_b
    assert "skipped" in w["fleet_b"]["ceiling"] and "skipped" in w["storm"]["ceiling"]
    md = report.markdown(results)
    assert "### Fleet" in md and "ours/ceiling" in md and "### Targets" in md
    (tmp_path / "bench.md").write_text(md)


def test_quick_search_bench_measures_both_databases() -> None:
    lines: list[str] = []
    results = runner.run(["search"], ["ours"], quick=True, log=lines.append)
    cells = results["workloads"]["search"]
    sqlite, pg = cells["ours/sqlite"], cells.get("ours/postgresql", {})
    assert sqlite.get("queries") == QUICK.search_queries, (sqlite, lines)
    assert 0 < sqlite["p50_ms"] <= sqlite["p99_ms"] and sqlite["top_p99_ms"] > 0
    assert sqlite["mean_returned"] > 1 and sqlite["insert_cost_ratio"] > 0
    if "skipped" not in pg:
        assert pg.get("queries") == QUICK.search_queries, (pg, lines)
        # The same seeded rows and searches: both databases find as many rows.
        assert pg["mean_returned"] == pytest.approx(sqlite["mean_returned"], rel=0.1)
    assert "### Search" in report.markdown(results)
