"""`scitex-orochi bench`: our hub, the published 0.17.0 server and a bare ceiling, side by side.

A thin wrapper over the `bench` package of the repository checkout.
"""

from __future__ import annotations

from pathlib import Path

import click

from scitex_orochi.cli.group import main

WORKLOADS = ("fleet", "latency", "connections", "ingest", "history", "search")
TARGETS = ("ours", "published", "ceiling")


def _split(value: str, allowed: tuple[str, ...], what: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if items == ["all"]:
        return list(allowed)
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise click.BadParameter(
            f"unknown {what}: {', '.join(bad) or value!r} (choose from {', '.join(allowed)} or all)"
        )
    return items


def _import_bench():
    import bench.__main__ as entry  # shipped with the package (pyproject: packages)

    return entry


@main.command(
    epilog="""\b
Examples:
  scitex-orochi bench                                   # everything (about 10 minutes)
  scitex-orochi bench --quick --targets ours,ceiling    # smoke run, no published server
  scitex-orochi bench --workloads fleet,latency --markdown /tmp/bench.md
  scitex-orochi bench --workloads ingest --profile /tmp/prof   # with py-spy profiles
""",
)
@click.option(
    "--workloads", default="all", show_default=True, help=f"Comma list of {', '.join(WORKLOADS)}."
)
@click.option(
    "--targets",
    default="all",
    show_default=True,
    help=f"Comma list of {', '.join(TARGETS)}. 'published' installs "
    "scitex-orochi==0.17.0 into ~/.cache/scitex-orochi-bench on first use.",
)
@click.option("--quick", is_flag=True, help="Tiny sizes: a smoke run in well under a minute.")
@click.option(
    "--markdown",
    "markdown_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write the markdown tables to this file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option(
    "--profile",
    "profile_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Record py-spy profiles (raw stacks) of our hub's processes into this dir.",
)
def bench(
    workloads: str,
    targets: str,
    quick: bool,
    markdown_path: Path | None,
    as_json: bool,
    profile_dir: Path | None,
) -> None:
    """Benchmark our hub against the published server and a bare relay (the ceiling).

    Every server runs on free ports on 127.0.0.1 in a temporary directory; the
    load generator runs in this process, so both share the machine's cores.
    """
    entry = _import_bench()
    code = entry.execute(
        _split(workloads, WORKLOADS, "workload"),
        _split(targets, TARGETS, "target"),
        quick,
        markdown_path,
        as_json,
        profile_dir,
    )
    raise SystemExit(code)
