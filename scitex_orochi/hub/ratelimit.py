"""Token buckets for fairness (pure: callers pass the clock).

A bucket holds up to `burst` tokens and refills at `rate_per_s`. `take` answers
0.0 when the action may go ahead (and spends a token), else how many seconds
until one is available: the `retry_after` a client is told.
"""

from __future__ import annotations


class TokenBucket:
    __slots__ = ("rate_per_s", "burst", "tokens", "stamp")

    def __init__(self, rate_per_s: float, burst: int, now: float) -> None:
        self.rate_per_s = rate_per_s
        self.burst = float(max(1, burst))
        self.tokens = self.burst
        self.stamp = now

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate_per_s)
            self.stamp = now

    def take(self, now: float, cost: float = 1.0) -> float:
        self._refill(now)
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / self.rate_per_s

    def wait_s(self, now: float, cost: float = 1.0) -> float:
        """Seconds until `cost` tokens are there, without spending any."""
        self._refill(now)
        return 0.0 if self.tokens >= cost else (cost - self.tokens) / self.rate_per_s


class BucketMap:
    """One bucket per key (e.g. per workspace), at most `max_keys` (idle ones go first)."""

    def __init__(self, rate_per_s: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, TokenBucket] = {}

    def get(self, key: str, now: float) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._evict_full(now)
            bucket = self._buckets[key] = TokenBucket(self.rate_per_s, self.burst, now)
        return bucket

    def _evict_full(self, now: float) -> None:
        """Forget buckets that have refilled: they hold nothing worth keeping."""
        for key, bucket in list(self._buckets.items()):
            bucket._refill(now)
            if bucket.tokens >= bucket.burst:
                del self._buckets[key]
        if len(self._buckets) >= self.max_keys:
            self._buckets.clear()
