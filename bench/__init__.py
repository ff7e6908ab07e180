"""Side-by-side benchmark of the Orochi hub, the published 0.17.0 server and a bare ceiling.

`python -m bench` or `scitex-orochi bench` runs the workloads of `bench.workloads`
against the targets of `bench.targets` and prints the tables of `bench.report`;
`search` (`bench.search`) measures the store itself, with no hub running.
"""

from __future__ import annotations

WORKLOADS = (
    "fleet",
    "latency",
    "connections",
    "ingest",
    "history",
    "noisy",
    "storm",
    "search",
    "fleet_b",
)
TARGETS = ("ours", "published", "ceiling")
