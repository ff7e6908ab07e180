"""Test helpers: wait for a condition with a deadline instead of sleeping."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]  # the repository: tests/support/util.py

# One unit that CI can scale for slow machines.
TIME_SCALE = float(os.environ.get("OROCHI_TEST_TIME_SCALE", "1"))
POLL_S = 0.01


def wait_for(predicate: Callable[[], T], timeout: float = 5.0, what: str = "condition") -> T:
    """Poll `predicate` until it returns something truthy; fail after `timeout` (scaled)."""
    deadline = time.monotonic() + timeout * TIME_SCALE
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout * TIME_SCALE:.1f}s waiting for {what}")
        time.sleep(POLL_S)


async def eventually(
    predicate: Callable[[], object], timeout: float = 5.0, what: str = "condition"
) -> object:
    """Async `wait_for`: await `predicate()` (sync or async) until truthy, with a deadline."""
    import asyncio
    import inspect

    deadline = time.monotonic() + timeout * TIME_SCALE
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout * TIME_SCALE:.1f}s waiting for {what}")
        await asyncio.sleep(POLL_S)
