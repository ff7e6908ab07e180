"""The one rule for what a slow reader may hold: a FIFO bounded in frames and in bytes.

Agent connections and dashboard observers both queue their outgoing frames here
when the socket cannot take them at once; `push` refuses a frame that would pass
either bound, and the caller closes the connection as a slow consumer (4008).
"""

from __future__ import annotations

import collections
from typing import Generic, TypeVar

T = TypeVar("T", str, bytes)


class Outbox(Generic[T]):
    __slots__ = ("max_frames", "max_bytes", "bytes", "_frames")

    def __init__(self, max_frames: int, max_bytes: int) -> None:
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self.bytes = 0
        self._frames: collections.deque[T] = collections.deque()

    def __len__(self) -> int:
        return len(self._frames)

    def push(self, frame: T) -> bool:
        """Queue `frame`; False (nothing queued) if that would pass a bound."""
        size = len(frame)
        if len(self._frames) >= self.max_frames or self.bytes + size > self.max_bytes:
            return False
        self._frames.append(frame)
        self.bytes += size
        return True

    def pop(self) -> T:
        frame = self._frames.popleft()
        self.bytes -= len(frame)
        return frame

    def clear(self) -> None:
        self._frames.clear()
        self.bytes = 0
