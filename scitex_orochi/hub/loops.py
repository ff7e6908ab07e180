"""Background work that is kept, and loops that outlive a bad item.

`TaskSet` holds every background task of a process (asyncio keeps only weak
references, so a task nobody holds can vanish mid-flight) and cancels them
together at shutdown. `every(interval_s, step)` runs `step()` forever; an
exception is logged (once per distinct error, then counted) and the loop
carries on: one malformed record must never stop presence snapshots, reaping
or republishing for everyone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

ERRORS_REMEMBERED = 100


class TaskSet:
    """Background tasks with kept references, cancelled together."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        return iter(list(self._tasks))

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def wait(self, timeout_s: float) -> None:
        """Let the tasks running now finish, for at most `timeout_s`."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout_s)

    async def cancel_all(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


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


async def every(
    interval_s: float,
    step: Callable[[], object | Awaitable[object]],
    log: logging.Logger,
    what: str,
    *,
    first_delay_s: float | None = None,
) -> None:
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
