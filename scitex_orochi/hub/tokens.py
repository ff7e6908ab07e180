"""A bounded cache of token lookups, shared by the gateways.

Only successful lookups are kept, for `ttl_s`, and at most `max_entries` of
them (the oldest go first): a client trying random tokens costs a database
query each (the connection limits bound that), never memory. Revocation
forgets entries at once (`forget`, `clear`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class TokenCache(Generic[T]):
    def __init__(self, max_entries: int, ttl_s: float) -> None:
        self.max_entries = max(1, max_entries)
        self.ttl_s = ttl_s
        self._entries: OrderedDict[str, tuple[T, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str, now: float) -> T | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        if entry[1] <= now:
            del self._entries[token]
            return None
        return entry[0]

    def put(self, token: str, value: T | None, now: float) -> None:
        """Remember a successful lookup; a failed one (None) is never stored."""
        if value is None or self.ttl_s <= 0:
            self._entries.pop(token, None)
            return
        self._entries[token] = (value, now + self.ttl_s)
        self._entries.move_to_end(token)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(
        self, tokens: set[str] | None = None, where: Callable[[T], bool] | None = None
    ) -> None:
        """Drop the given tokens, and those whose value matches `where`."""
        for token in list(self._entries):
            value = self._entries[token][0]
            if (tokens is not None and token in tokens) or (where is not None and where(value)):
                del self._entries[token]

    def clear(self) -> None:
        self._entries.clear()
