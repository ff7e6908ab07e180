"""The broker stops on SIGTERM whenever it arrives once it is running Python code.

CI once saw `python -m broker` ignore a SIGTERM sent while it was still starting: a
Python handler raising out of `zmq.proxy` loses a signal that lands between the
interpreter's last check and the blocking C call. The broker now blocks the stop
signals first thing and takes them with `sigwait` in a waiter thread."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile

from support.procs import read_lines
from support.util import wait_for

RUNS = 10


def start_broker(run_dir: str) -> tuple[subprocess.Popen[str], list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCITEX_OROCHI_", "OROCHI_"))}
    # An old variable name makes main() log a notice right after the signals are blocked:
    # the test's "it is running our code" mark.
    env.update(SCITEX_OROCHI_RUN_DIR=run_dir, SCITEX_OROCHI_DATA_DIR=run_dir, OROCHI_PORT="9601")
    proc = subprocess.Popen(
        [sys.executable, "-m", "broker"], env=env, stderr=subprocess.PIPE, text=True
    )
    lines: list[str] = []
    read_lines(proc.stderr, lines.append)
    return proc, lines


def test_a_sigterm_at_any_point_of_startup_stops_the_broker_cleanly():
    results = []
    for i in range(RUNS):
        run_dir = tempfile.mkdtemp(prefix="obs", dir="/tmp")
        proc, lines = start_broker(run_dir)
        try:
            # Half the signals land right after the stop signals are blocked (while the
            # broker reads its configuration and binds), half once the proxy is about to run.
            mark = "is deprecated" if i % 2 == 0 else "broker up"
            wait_for(lambda ls=lines, m=mark: any(m in x for x in ls), 20, mark)
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(10)
            except subprocess.TimeoutExpired:
                rc = None
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        results.append(rc)
        assert rc == 0, (i, results, "".join(lines))
    assert results == [0] * RUNS


def threads_taking(pid: int, sig: int) -> list[str]:
    """What each thread of `pid` that does not block `sig` is doing (its wchan): a thread
    in sigwait shows the awaited signals as unblocked while it waits."""
    taking = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/status") as f:
            mask = int(next(x for x in f if x.startswith("SigBlk:")).split()[1], 16)
        if not mask >> (sig - 1) & 1:
            with open(f"/proc/{pid}/task/{task}/wchan") as f:
                taking.append(f.read())
    return taking


def test_sigint_stops_a_running_broker_and_it_says_so():
    run_dir = tempfile.mkdtemp(prefix="obs", dir="/tmp")
    proc, lines = start_broker(run_dir)
    try:
        wait_for(lambda: any("broker up" in x for x in lines), 20, "broker up")
        # No thread takes the stop signals asynchronously (a Python handler could run too
        # late to leave the proxy's C loop): one waits for them in sigwait, the rest block.
        for sig in (signal.SIGTERM, signal.SIGINT):
            wait_for(
                lambda s=sig: (
                    [w.strip() for w in threads_taking(proc.pid, s)]
                    in (["do_sigtimedwait"], ["do_sigtimedwait.isra.0"])
                ),
                10,
                f"only a sigwait thread takes {sig!r}",
            )
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = "".join(lines)
    assert "received SIGINT, stopping" in text and "broker stopped" in text, text
