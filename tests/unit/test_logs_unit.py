"""The repeat filter of scitex_orochi.hub.logs, as a pure unit with an injected clock."""

from __future__ import annotations

import io
import logging

from scitex_orochi.hub.logs import RepeatFilter, setup_logging


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(
    msg: str, *args: object, name: str = "orochi.test", level: int = logging.ERROR, **extra: object
) -> logging.LogRecord:
    rec = logging.LogRecord(name, level, __file__, 1, msg, args, None)
    rec.__dict__.update(extra)
    return rec


def make(burst: int = 3, window_s: float = 10.0, **kw):
    clock, emitted = Clock(), []
    flt = RepeatFilter(emitted.append, burst=burst, window_s=window_s, clock=clock, **kw)
    return flt, clock, emitted


def test_first_burst_passes_then_one_summary_per_window():
    flt, clock, emitted = make()
    passed = [flt.filter(record("refused %s", f"10.0.0.{i}")) for i in range(10)]
    assert passed == [True] * 3 + [False] * 7
    assert emitted == []  # the summary comes when the window ends
    clock.now += 10.0
    assert flt.filter(record("refused %s", "10.0.0.99"))  # a new window lets it through
    [summary] = emitted
    assert summary.getMessage() == "suppressed 7 similar lines in 10s: refused %s"
    assert summary.name == "orochi.test" and summary.levelno == logging.ERROR
    assert flt.filter(summary)  # summaries are never suppressed themselves


def test_kinds_are_logger_level_and_template():
    flt, _clock, _emitted = make(burst=1)
    assert flt.filter(record("a %s", 1))
    assert not flt.filter(record("a %s", 2))
    assert flt.filter(record("b %s", 1))  # another template
    assert flt.filter(record("a %s", 1, name="orochi.other"))  # another logger
    assert flt.filter(record("a %s", 1, level=logging.WARNING))  # another level


def test_rate_key_overrides_or_exempts():
    flt, _clock, _emitted = make(burst=1)
    assert flt.filter(record("GET %s %d", "/x", 401, rate_key="status 401"))
    assert not flt.filter(record("GET %s %d", "/y", 401, rate_key="status 401"))
    assert flt.filter(record("GET %s %d", "/z", 404, rate_key="status 404"))
    assert all(flt.filter(record("GET %s %d", "/", 200, rate_key=None)) for _ in range(50))


def test_other_kinds_close_expired_windows_too():
    flt, clock, emitted = make(burst=1)
    for _ in range(5):
        flt.filter(record("noisy"))
    clock.now += 11.0
    assert flt.filter(record("something else"))
    assert [r.getMessage() for r in emitted] == ["suppressed 4 similar lines in 10s: noisy"]


def test_windows_without_suppression_write_nothing_and_flush_writes_the_rest():
    flt, clock, emitted = make(burst=2)
    flt.filter(record("quiet"))
    clock.now += 30.0
    flt.filter(record("quiet"))
    assert emitted == []
    for _ in range(4):
        flt.filter(record("loud"))
    clock.now += 1.0
    flt.flush()
    assert [r.getMessage() for r in emitted] == ["suppressed 2 similar lines in 1s: loud"]


def test_the_number_of_kinds_tracked_is_bounded():
    flt, _clock, emitted = make(burst=1, max_kinds=10)
    for i in range(100):
        flt.filter(record(f"unique {i}"))
        flt.filter(record(f"unique {i}"))  # suppressed once each
    assert len(flt._windows) <= 10
    assert len(emitted) == 90  # each evicted window said what it dropped


def test_setup_logging_installs_it_on_every_process_handler(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging("INFO", "unit")
        log = logging.getLogger("orochi.unit")
        for i in range(500):
            log.warning("refused a connection from %s", i)
        lines = stream.getvalue().splitlines()
        assert 1 <= len(lines) <= 50
        assert "refused a connection from 0" in lines[0]
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
