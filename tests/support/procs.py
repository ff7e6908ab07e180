"""A child process's output, read as it comes, for tests that watch a process run."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from support.util import wait_for

# What `serve` prints last, once the hub is up.
SERVE_BANNER_END = "stop with Ctrl-C"


def read_lines(stream: IO[str], sink: Callable[[str], object]) -> threading.Thread:
    """Hand each line of a child's pipe to `sink` (`list.append`, `Queue.put`) from a daemon
    thread. The pipe is closed once it ends, not left open for the garbage collector."""

    def pump() -> None:
        with stream:
            for line in stream:
                sink(line)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return thread


@contextmanager
def serving(
    cmd: list[str], *, cwd: str | Path, env: dict[str, str], timeout_s: float, what: str
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Run a command that starts the hub (in its own session), wait until it printed its
    banner or exited, and yield the process with its output so far; its whole process
    group is killed on the way out if it is still running."""
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    read_lines(proc.stdout, lines.append)
    try:
        wait_for(
            lambda: any(SERVE_BANNER_END in x for x in lines) or proc.poll() is not None,
            timeout_s,
            what,
        )
        yield proc, "".join(lines)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
