"""A child process's output, read as it comes, for tests that watch a process run."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import IO


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
