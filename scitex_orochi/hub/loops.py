"""Background loops that outlive a bad item.

`every(interval_s, step)` runs `step()` forever; an exception is logged (once
per distinct error, then counted) and the loop carries on: one malformed
record must never stop presence snapshots, reaping or republishing for
everyone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

ERRORS_REMEMBERED = 100


class ErrorOnce:
    """Log each distinct error of a loop once, with its traceback; count repeats."""

    def __init__(self, log: logging.Logger, what: str) -> None:
        self.log = log
        self.what = what
        self.seen: dict[str, int] = {}

    def __call__(self, exc: BaseException) -> None:
        key = f"{type(exc).__name__}: {str(exc)[:200]}"
        count = self.seen.get(key, 0)
        if count == 0:
            if len(self.seen) >= ERRORS_REMEMBERED:
                self.seen.clear()
            self.log.error("%s failed (it carries on): %s", self.what, key, exc_info=exc)
        self.seen[key] = count + 1


async def every(interval_s: float, step: Callable[[], object | Awaitable[object]],
                log: logging.Logger, what: str, *, first_delay_s: float | None = None) -> None:
    """Run `step` every `interval_s` seconds until cancelled; errors never end the loop."""
    report = ErrorOnce(log, what)
    await asyncio.sleep(interval_s if first_delay_s is None else first_delay_s)
    while True:
        try:
            result = step()
            if asyncio.iscoroutine(result):
                await result
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the point of this module
            report(exc)
        await asyncio.sleep(interval_s)
