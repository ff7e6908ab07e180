"""Tables of bench results: one per workload with the targets side by side, ratios, verdicts."""

from __future__ import annotations

import json
from typing import Any

# (key, label, higher is better) per workload, in display order.
METRICS: dict[str, list[tuple[str, str, bool]]] = {
    "fleet": [
        ("deliveries_per_s", "deliveries/s", True),
        ("messages_per_s", "messages acked/s", True),
        ("ack_p50_ms", "ack p50 (ms)", False),
        ("ack_p99_ms", "ack p99 (ms)", False),
        ("e2e_p50_ms", "end-to-end p50 (ms)", False),
        ("e2e_p99_ms", "end-to-end p99 (ms)", False),
        ("completeness_pct", "completeness (%)", True),
        ("duplicates", "duplicate deliveries", False),
        ("duration_s", "duration (s)", False),
        ("rounds", "rounds (the median one is shown)", True),
    ],
    "fleet_b": [
        ("deliveries_per_s", "deliveries/s", True),
        ("e2e_p50_ms", "end-to-end p50 (ms)", False),
        ("e2e_p99_ms", "end-to-end p99 (ms)", False),
        ("completeness_pct", "completeness (%)", True),
        ("duplicates", "duplicate deliveries", False),
        ("rounds", "rounds (the median one is shown)", True),
    ],
    "latency": [
        ("e2e_p50_ms", "end-to-end p50 (ms)", False),
        ("e2e_p99_ms", "end-to-end p99 (ms)", False),
        ("ack_p50_ms", "ack p50 (ms)", False),
        ("ack_p99_ms", "ack p99 (ms)", False),
        ("completeness_pct", "completeness (%)", True),
    ],
    "connections": [
        ("connections", "idle agents connected", True),
        ("rss_per_conn_kb", "RSS per connection (KB)", False),
        ("rss_base_mb", "RSS at 0 connections (MB)", False),
        ("rss_loaded_mb", "RSS at N connections (MB)", False),
        ("processes", "server processes", False),
        ("connect_s", "time to connect+register all (s)", False),
        ("presence_p50_ms", "presence query p50 (ms)", False),
        ("presence_p99_ms", "presence query p99 (ms)", False),
        ("presence_listed", "agents listed by presence", True),
    ],
    "ingest": [
        ("messages_per_s", "messages/s committed (acked)", True),
        ("acked", "messages acked", True),
        ("completeness_pct", "completeness (%)", True),
        ("duration_s", "duration (s)", False),
    ],
    "history": [
        ("rows", "rows in the channel", True),
        ("queries", "queries answered (deadline-bound)", True),
        ("ws_p50_ms", "query over WebSocket p50 (ms)", False),
        ("ws_p99_ms", "query over WebSocket p99 (ms)", False),
        ("raw_p50_ms", "Store.history p50 (ms)", False),
        ("raw_p99_ms", "Store.history p99 (ms)", False),
        ("returned", "rows returned", True),
        ("fill_s", "bulk fill, with reactions, edits and threads (s)", False),
    ],
    "storm": [
        ("agents", "agents reacting", True),
        ("rounds", "rounds", True),
        ("events_expected", "reaction_update deliveries expected", True),
        ("events_received", "delivered", True),
        ("lost", "lost", False),
        ("out_of_order", "out of seq order", False),
        ("event_p50_ms", "react to delivery p50 (ms)", False),
        ("event_p99_ms", "react to delivery p99 (ms)", False),
        ("elapsed_s", "duration (s)", False),
    ],
    "search": [
        ("rows", "messages in the store", True),
        ("queries", "searches timed (deadline-bound)", True),
        ("p50_ms", "Store.search p50 (ms)", False),
        ("p99_ms", "Store.search p99 (ms)", False),
        ("max_ms", "Store.search max (ms)", False),
        ("common1_p99_ms", "p99, one common word (ms)", False),
        ("rare1_p99_ms", "p99, one rare word (ms)", False),
        ("common2_p99_ms", "p99, two common words (ms)", False),
        ("mixed2_p99_ms", "p99, a common and a rare word (ms)", False),
        ("common3_p99_ms", "p99, three common words (ms)", False),
        ("mixed3_p99_ms", "p99, two common and a rare word (ms)", False),
        ("mean_returned", "rows returned per search (mean)", True),
        ("top_p50_ms", "p50, one stop-word-like word: the, be, to... (ms)", False),
        ("top_p99_ms", "p99, one stop-word-like word (ms)", False),
        ("build_s", "build: bulk fill (s; – = the cached SQLite file)", False),
        ("index_s", "build: migration 5 indexing the rows (s)", False),
        ("db_mib", "database file (MiB)", False),
        ("insert_rows", "ingest rows, without and with the index", True),
        ("insert_plain_rows_per_s", "Store.insert_params rows/s, no index", True),
        ("insert_fts_rows_per_s", "Store.insert_params rows/s, with the index", True),
        ("insert_cost_ratio", "ingest time with / without the index", False),
    ],
    "noisy": [
        ("quiet_p99_ms", "quiet workspace p99, alone (ms)", False),
        ("loaded_p99_ms", "quiet workspace p99, neighbour flooding (ms)", False),
        ("p99_ratio", "p99 ratio (flooded / alone)", False),
        ("quiet_p50_ms", "p50 alone (ms)", False),
        ("loaded_p50_ms", "p50 flooded (ms)", False),
        ("flood_frames_per_s", "flood frames answered/s", True),
        ("completeness_pct", "completeness (%)", True),
    ],
}

TITLES = {
    "fleet": "Fleet: {fleet_agents} agents in one channel, {fleet_senders} senders × "
    "{fleet_per_sender} messages of {msg_bytes} B, ≤ {fleet_window} unacked per sender",
    "latency": "Latency: {latency_agents} agents, 1 sender, one message in flight "
    "({latency_messages} messages after {latency_warmup} warm-up)",
    "connections": "Connections: {idle_agents} idle agents (register + {idle_heartbeat_rounds} "
    "heartbeat rounds), {presence_queries} presence queries",
    "ingest": "Ingest: {ingest_messages} inbound bodies published on the bus "
    "(≤ {ingest_window} unacked), persister commit rate",
    "history": "History: last 50 of a channel with {history_rows:,} stored messages, "
    "a quarter with reactions, a ninth edited, a tenth thread replies ({history_queries} queries)",
    "fleet_b": "Fleet with every other receiver on dialect B (flat frames on /ws/agent/): "
    "{fleet_agents} agents, {fleet_senders} senders × {fleet_per_sender} messages",
    "storm": "Reaction storm: {storm_agents} agents (events capability) react to one message "
    "at once, {storm_rounds} rounds; each must see every other reaction, in seq order",
    "search": "Search: Store.search over {search_rows:,} messages (PostgreSQL "
    "{search_pg_rows:,}), {search_queries} searches of 1-3 common and rare words (a third "
    "with a channel filter, a tenth with a sender, a fifth newest first); ingest of "
    "{search_insert_rows:,} rows without and with the index",
    "noisy": "Noisy neighbour: the latency workload in one workspace, alone, then while 2 "
    "agents of another workspace flood (≤ 500 unacked each, after 1 s of flood)",
}

# (workload, cell, metric, op, bound, description)
GOALS = [
    (
        "fleet",
        "ratio:published",
        "deliveries_per_s",
        ">=",
        3.0,
        "fleet deliveries/s ≥ 3× the published server's",
    ),
    ("latency", "ours", "e2e_p99_ms", "<=", 4.0, "latency end-to-end p99 ≤ 4 ms"),
    ("latency", "ours", "ack_p99_ms", "<=", 5.0, "latency durable-ack p99 ≤ 5 ms"),
    ("connections", "ours", "rss_per_conn_kb", "<=", 30.0, "idle agents ≤ 30 KB each"),
    (
        "ingest",
        "ours/sqlite",
        "messages_per_s",
        ">=",
        20_000.0,
        "persister ≥ 20,000 messages/s into SQLite",
    ),
    ("history", "ours", "ws_p99_ms", "<=", 10.0, "history p99 ≤ 10 ms at 1M rows"),
    ("storm", "ours", "lost", "<=", 0.0, "reaction storm: no reaction_update lost"),
    ("storm", "ours", "out_of_order", "<=", 0.0, "reaction storm: every agent in seq order"),
    ("search", "ours/sqlite", "p99_ms", "<=", 50.0, "search p99 ≤ 50 ms at 1M rows (SQLite)"),
    (
        "noisy",
        "ours",
        "p99_ratio",
        "<=",
        2.0,
        "a flooding workspace raises another's p99 by at most 2×",
    ),
]

RATIO_METRICS = {
    "fleet": ["deliveries_per_s", "e2e_p99_ms", "ack_p99_ms"],
    "latency": ["e2e_p50_ms", "e2e_p99_ms", "ack_p99_ms"],
    "connections": ["rss_per_conn_kb", "presence_p99_ms"],
    "history": ["ws_p50_ms", "ws_p99_ms"],
}


# Shown under every workload table.
COMMON = [
    ("server_cpu_s", "server CPU (s)", False),
    ("loadgen_cpu_s", "load generator CPU (s)", False),
    ("wall_s", "wall time (s)", False),
]


def fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value >= 1000:
            return f"{value:,.0f}"
        if value >= 100:
            return f"{value:.0f}"
        if value >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)


def _value(cells: dict[str, Any], cell: str, key: str) -> Any:
    return (cells.get(cell) or {}).get(key)


def ratio(cells: dict[str, Any], key: str, other: str) -> float | None:
    ours, theirs = _value(cells, "ours", key), _value(cells, other, key)
    if not isinstance(ours, int | float) or not isinstance(theirs, int | float) or not theirs:
        return None
    return ours / theirs


def goal_rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(description, measured, verdict) for each target of the issue."""
    out = []
    for workload, cell, key, op, bound, text in GOALS:
        cells = results["workloads"].get(workload)
        if cells is None:
            continue
        if cell.startswith("ratio:"):
            value = ratio(cells, key, cell.split(":", 1)[1])
            shown = f"{value:.2f}×" if value is not None else "–"
        else:
            value = _value(cells, cell, key)
            shown = fmt(value)
        if not isinstance(value, int | float):
            verdict = "not measured"
        elif (value >= bound) if op == ">=" else (value <= bound):
            verdict = "met"
        else:
            verdict = "**missed**"
        out.append((text, shown, verdict))
    return out


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def workload_table(workload: str, cells: dict[str, Any]) -> list[str]:
    names = list(cells)
    header = ["metric", *names]
    has_ratios = workload in RATIO_METRICS and "ours" in cells
    others = [o for o in ("published", "ceiling") if o in cells] if has_ratios else []
    header += [f"ours/{o}" for o in others]
    rows = []
    for key, label, _higher in METRICS[workload] + COMMON:
        if all(_value(cells, n, key) is None for n in names):
            continue
        row = [label, *(fmt(_value(cells, n, key)) for n in names)]
        for other in others:
            r = ratio(cells, key, other) if key in RATIO_METRICS[workload] else None
            row.append(f"{r:.3g}×" if r is not None else "")
        rows.append(row)
    notes = [
        f"{n}: {c.get('error') or 'skipped: ' + c.get('skipped', '')}"
        for n, c in cells.items()
        if "error" in c or "skipped" in c
    ]
    lines = _table(header, rows) if rows else []
    split = [
        f"{n}: "
        + ", ".join(f"{k} {v:.1f}" for k, v in c["server_cpu_by_process"].items() if v >= 0.05)
        for n, c in cells.items()
        if len(c.get("server_cpu_by_process") or {}) > 1
    ]
    if split:
        lines += ["", "Server CPU seconds by process — " + "; ".join(split)]
    by_round = [
        f"{n}: " + ", ".join(f"{v:,}" for v in c["deliveries_per_s_by_round"])
        for n, c in cells.items()
        if len(c.get("deliveries_per_s_by_round") or []) > 1
    ]
    if by_round:
        lines += [
            "",
            "Deliveries/s of each round (CPU seconds above cover all rounds) — "
            + "; ".join(by_round),
        ]
    if notes:
        lines += ["", *(f"- {note}" for note in notes)]
    return lines


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"Machine: {m['nproc']} cores ({m['cpu']}), {m['ram_gb']} GB RAM, "
        f"Python {m['python']}, Linux {m['kernel']}, {m['date']}"
        f"{' — QUICK mode (tiny sizes)' if results.get('quick') else ''}.",
        "",
    ]
    params = results["params"]
    for workload, cells in results["workloads"].items():
        lines += [
            f"### {TITLES[workload].format(**params)}",
            "",
            *workload_table(workload, cells),
            "",
        ]
    goals = goal_rows(results)
    if goals:
        lines += [
            "### Targets",
            "",
            *_table(["target", "measured", "verdict"], [list(g) for g in goals]),
            "",
        ]
    return "\n".join(lines)


def text(results: dict[str, Any]) -> str:
    """Plain-text rendering for the terminal (the markdown tables read fine as text)."""
    return markdown(results)


def to_json(results: dict[str, Any]) -> str:
    return json.dumps(results, indent=2, sort_keys=False, default=str)
