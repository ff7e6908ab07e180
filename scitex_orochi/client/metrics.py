"""System metrics an agent reports in its heartbeat, read from /proc without psutil.

Keys follow PROTOCOL.md §3 (`heartbeat`). Anything that cannot be read is left out.
"""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path
from typing import Any

PROC = Path("/proc")


def _cpu_model(proc: Path) -> str | None:
    try:
        for line in (proc / "cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "Processor") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def _meminfo(proc: Path) -> dict[str, int]:
    """MemTotal and MemAvailable in kB (MemAvailable is what a new process can use)."""
    out: dict[str, int] = {}
    try:
        for line in (proc / "meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                out[key] = int(parts[0])
    except OSError:
        pass
    return out


def collect(proc: Path = PROC, disk_path: str = "/") -> dict[str, Any]:
    metrics: dict[str, Any] = {"cpu_count": os.cpu_count() or 1}
    model = _cpu_model(proc)
    if model:
        metrics["cpu_model"] = model
    try:
        one, five, fifteen = os.getloadavg()
        metrics.update(
            load_avg_1m=round(one, 2), load_avg_5m=round(five, 2), load_avg_15m=round(fifteen, 2)
        )
    except OSError:
        pass
    mem = _meminfo(proc)
    total = mem.get("MemTotal")
    free = mem.get("MemAvailable", mem.get("MemFree"))
    if total and free is not None:
        metrics.update(
            mem_total_mb=total // 1024,
            mem_free_mb=free // 1024,
            mem_used_percent=round(100.0 * (total - free) / total, 1),
        )
    try:
        usage = shutil.disk_usage(disk_path)
        metrics["disk_used_percent"] = round(100.0 * usage.used / usage.total, 1)
    except OSError:
        pass
    return metrics
