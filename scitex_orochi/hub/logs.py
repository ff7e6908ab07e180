"""Logging set-up shared by every process: one line per record on stderr, repeats rate-limited.

`RepeatFilter` lets the first `burst` records of one kind (same logger, level
and message template) through per window, drops the rest, and writes one
"suppressed N similar lines" record when that window ends, so a flood of
identical errors (a scan, a misbehaving client) costs a bounded number of
lines. A record may choose its own kind with `extra={"rate_key": ...}`, or
opt out with `extra={"rate_key": None}`.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from scitex_orochi.protocol.env import deprecation_notice

LOG_REPEAT_BURST = 20  # records of one kind let through per window
LOG_REPEAT_WINDOW_S = 60.0
LOG_REPEAT_KINDS_MAX = 1024  # kinds tracked at once; the oldest window is closed beyond it
SUMMARY_TEMPLATE_CHARS = 200
_SUMMARY = "_orochi_repeat_summary"
_NO_KEY = object()


class _Window:
    __slots__ = ("start", "count", "suppressed", "name", "levelno", "template")

    def __init__(self, start: float, record: logging.LogRecord) -> None:
        self.start = start
        self.count = 0
        self.suppressed = 0
        self.name = record.name
        self.levelno = record.levelno
        self.template = str(record.msg)


class RepeatFilter(logging.Filter):
    """Drop repeats beyond `burst` per `window_s`; `emit` writes the summary records."""

    def __init__(
        self,
        emit: Callable[[logging.LogRecord], Any],
        *,
        burst: int = LOG_REPEAT_BURST,
        window_s: float = LOG_REPEAT_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
        max_kinds: int = LOG_REPEAT_KINDS_MAX,
    ) -> None:
        super().__init__()
        self.emit = emit
        self.burst = burst
        self.window_s = window_s
        self.clock = clock
        self.max_kinds = max_kinds
        self._windows: OrderedDict[Any, _Window] = OrderedDict()  # oldest window first
        self._lock = threading.Lock()

    @staticmethod
    def kind(record: logging.LogRecord) -> Any:
        """What makes two records "similar"; None: never rate-limited."""
        key = getattr(record, "rate_key", _NO_KEY)
        if key is _NO_KEY:
            return (record.name, record.levelno, str(record.msg))
        return None if key is None else (record.name, record.levelno, key)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _SUMMARY, False):
            return True
        kind = self.kind(record)
        if kind is None:
            return True
        with self._lock:
            now = self.clock()
            closed = self._close_expired(now)
            window = self._windows.get(kind)
            if window is None:
                if len(self._windows) >= self.max_kinds:
                    closed.append(self._windows.popitem(last=False)[1])
                window = self._windows[kind] = _Window(now, record)
            window.count += 1
            passed = window.count <= self.burst
            if not passed:
                window.suppressed += 1
        for old in closed:
            self._summarize(old, now)
        return passed

    def flush(self) -> None:
        """Write the summaries of every open window (at exit, or in tests)."""
        with self._lock:
            now = self.clock()
            closed = list(self._windows.values())
            self._windows.clear()
        for old in closed:
            self._summarize(old, now)

    def _close_expired(self, now: float) -> list[_Window]:
        closed = []
        while self._windows:
            first = next(iter(self._windows.values()))
            if now - first.start < self.window_s:
                break
            closed.append(self._windows.popitem(last=False)[1])
        return closed

    def _summarize(self, window: _Window, now: float) -> None:
        if not window.suppressed:
            return
        summary = logging.LogRecord(
            window.name,
            window.levelno,
            __file__,
            0,
            "suppressed %d similar lines in %.0fs: %s",
            (
                window.suppressed,
                min(now - window.start, self.window_s),
                window.template[:SUMMARY_TEMPLATE_CHARS],
            ),
            None,
        )
        setattr(summary, _SUMMARY, True)
        self.emit(summary)


def setup_logging(
    level: str = "INFO", process: str = "orochi", legacy_env: Iterable[str] = ()
) -> None:
    """One handler on stderr; then one deprecation notice per 0.1.0 variable the
    configuration was read from (`Config.legacy_env`)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s {process} %(levelname)s %(name)s: %(message)s")
    )
    repeats = RepeatFilter(handler.handle)
    handler.addFilter(repeats)
    atexit.register(repeats.flush)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    log = logging.getLogger(f"orochi.{process}")
    for old in dict.fromkeys(legacy_env):
        log.warning("%s", deprecation_notice(old))
