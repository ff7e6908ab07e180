"""Run the chosen workloads against the chosen targets, one fresh server per (workload, target).

Failures are recorded per cell (`{"error": ...}`) and never stop the run;
`--profile DIR` records py-spy profiles of our hub's processes per workload.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import platform
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from . import TARGETS, WORKLOADS
from .targets import OursTarget, PublishedTarget, Target, TargetError, make_target
from .workloads import (
    QUICK,
    WORKLOAD_FUNCS,
    Params,
    WorkloadSkipped,
    fill_ours,
    fill_published,
)

Log = Callable[[str], None]


def machine_info() -> dict[str, Any]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "loadavg_at_start": os.getloadavg()[0],
    }


@contextlib.contextmanager
def profiled(target: Target, out_dir: Path | None, workload: str, log: Log) -> Iterator[None]:
    """py-spy record (raw collapsed stacks) of each of our programs while the block runs."""
    if out_dir is None or not isinstance(target, OursTarget) or not shutil.which("py-spy"):
        yield
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    procs = []
    for program, pid in target.program_pids().items():
        db = target.cfg.db.url.split(":")[0]
        path = out_dir / f"{workload}-{db}-{program.split(':')[-1]}.txt"
        procs.append(
            subprocess.Popen(
                [
                    "py-spy",
                    "record",
                    "--pid",
                    str(pid),
                    "--format",
                    "raw",
                    "--rate",
                    "200",
                    "--output",
                    str(path),
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    time.sleep(0.5)
    try:
        yield
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        log(f"    py-spy profiles in {out_dir}")


@contextlib.contextmanager
def cpu_meter(target: Target) -> Iterator[dict[str, Any]]:
    """CPU seconds used during the block by the target's processes and by this load generator."""
    out: dict[str, Any] = {}
    before = target.cpu_by_process()
    self_before = os.times()
    wall = time.monotonic()
    try:
        yield out
    finally:
        after = target.cpu_by_process()
        self_after = os.times()
        tick = os.sysconf("SC_CLK_TCK")
        by_name: dict[str, float] = {}
        for pid, (name, ticks) in after.items():
            used = (ticks - before.get(pid, (name, 0))[1]) / tick
            by_name[name] = by_name.get(name, 0.0) + used
        out["server_cpu_s"] = sum(by_name.values())
        out["server_cpu_by_process"] = {k: round(v, 2) for k, v in sorted(by_name.items())}
        out["loadgen_cpu_s"] = (self_after.user - self_before.user) + (
            self_after.system - self_before.system
        )
        out["wall_s"] = time.monotonic() - wall


def _call(func: Callable[[Target, Params], Any], target: Target, params: Params) -> dict[str, Any]:
    if inspect.iscoroutinefunction(func):
        result: dict[str, Any] = asyncio.run(func(target, params))
    else:
        result = func(target, params)
    return result


def _pg_cluster(log: Log):
    """A throwaway PostgreSQL cluster (`scitex_orochi.hub.testing.pg`, Debian's
    binaries), or None."""
    from scitex_orochi.hub.testing.pg import PgCluster, PgUnavailable

    try:
        cluster = PgCluster()
        cluster.init()
        cluster.start()
        return cluster
    except PgUnavailable as exc:
        log(f"    postgresql skipped: {exc}")
        return None


def _cells(workload: str, targets: list[str]) -> list[tuple[str, str, dict[str, Any]]]:
    """(cell name, target name, target kwargs) for one workload."""
    if workload in ("ingest", "search"):
        if "ours" not in targets:
            return []
        return [("ours/sqlite", "ours", {}), ("ours/postgresql", "ours", {"db": "postgresql"})]
    return [(t, t, {}) for t in targets]


def run_cell(
    workload: str,
    tname: str,
    kwargs: dict[str, Any],
    params: Params,
    log: Log,
    profile_dir: Path | None,
) -> dict[str, Any]:
    if workload == "search":
        return search_cell(kwargs, params, log)
    cluster = None
    target_kwargs: dict[str, Any] = {}
    if kwargs.get("db") == "postgresql":
        cluster = _pg_cluster(log)
        if cluster is None:
            return {"skipped": "PostgreSQL binaries not available"}
        target_kwargs["db_url"] = cluster.create_database("orochi_bench")
    try:
        target = make_target(tname, log=log, **target_kwargs)
        try:
            if workload == "history" and isinstance(target, OursTarget):
                log(f"    filling {params.history_rows:,} rows")
                fill_s = fill_ours(target, params.history_rows)
            target.start()
            if workload == "history" and isinstance(target, PublishedTarget):
                log(f"    filling {params.history_rows:,} rows")
                fill_s = fill_published(target, params.history_rows)
            with profiled(target, profile_dir, workload, log), cpu_meter(target) as cpu:
                result = _call(WORKLOAD_FUNCS[workload], target, params)
            result.update(cpu)
            if workload == "history":
                result["fill_s"] = fill_s
            return result
        except WorkloadSkipped as exc:
            return {"skipped": str(exc)}
        finally:
            target.stop()
            target.cleanup()
    except (TargetError, OSError, RuntimeError, ConnectionError, TimeoutError) as exc:
        return {"error": f"{type(exc).__name__}: {str(exc)[:500]}"}
    finally:
        if cluster is not None:
            cluster.destroy()


def search_cell(kwargs: dict[str, Any], params: Params, log: Log) -> dict[str, Any]:
    """`Store.search` measured on the store itself: no hub runs (`bench.search`)."""
    from . import search

    cluster = None
    try:
        if kwargs.get("db") != "postgresql":
            return search.sqlite_cell(params, log)
        cluster = _pg_cluster(log)
        if cluster is None:
            return {"skipped": "PostgreSQL binaries not available"}
        return search.postgresql_cell(cluster, params, log)
    except (OSError, RuntimeError, SQLAlchemyError) as exc:
        return {"error": f"{type(exc).__name__}: {str(exc)[:500]}"}
    finally:
        if cluster is not None:
            cluster.destroy()


def run(
    workloads: list[str],
    targets: list[str],
    quick: bool = False,
    log: Log = print,
    profile_dir: Path | None = None,
    params: Params | None = None,
) -> dict[str, Any]:
    for name in workloads:
        if name not in WORKLOADS:
            raise ValueError(f"unknown workload {name!r} (one of {', '.join(WORKLOADS)})")
    for name in targets:
        if name not in TARGETS:
            raise ValueError(f"unknown target {name!r} (one of {', '.join(TARGETS)})")
    params = params or (QUICK if quick else Params())
    if "published" in targets:
        from .targets import published_venv

        published_venv(log=log)
    results: dict[str, Any] = {
        "machine": machine_info(),
        "quick": quick,
        "params": asdict(params),
        "targets": targets,
        "workloads": {},
    }
    for workload in workloads:
        cells: dict[str, Any] = {}
        for cell, tname, kwargs in _cells(workload, targets):
            log(f"[{workload}] {cell}")
            t0 = time.monotonic()
            cells[cell] = run_cell(workload, tname, kwargs, params, log, profile_dir)
            log(f"    done in {time.monotonic() - t0:.1f}s: {_brief(cells[cell])}")
        results["workloads"][workload] = cells
    return results


def _brief(result: dict[str, Any]) -> str:
    if "error" in result or "skipped" in result:
        return str(result.get("error") or "skipped: " + result["skipped"])
    keys = (
        "deliveries_per_s",
        "messages_per_s",
        "e2e_p99_ms",
        "ack_p99_ms",
        "rss_per_conn_kb",
        "presence_p99_ms",
        "ws_p99_ms",
        "completeness_pct",
    )
    return ", ".join(f"{k}={result[k]:.4g}" for k in keys if isinstance(result.get(k), int | float))
