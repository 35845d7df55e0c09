"""Per-key token buckets (in-process): ``rate`` tokens a minute, up to ``burst`` saved up."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBucketLimiter:
    def __init__(self, per_minute: int, burst: int | None = None, *,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 10_000) -> None:
        self.rate_per_s = per_minute / 60.0
        self.capacity = float(burst or per_minute)
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, key: str) -> float:
        """Take one token for ``key``. Returns 0 when allowed, else the seconds until one is available."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._evict_full(now)
            bucket = self._buckets[key] = _Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate_per_s)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate_per_s

    @staticmethod
    def retry_after_s(wait_s: float) -> int:
        return max(1, math.ceil(wait_s))

    def _evict_full(self, now: float) -> None:
        """Forget buckets that have refilled completely (they carry no state a new bucket would not)."""
        for key in [k for k, b in self._buckets.items()
                    if b.tokens + (now - b.updated) * self.rate_per_s >= self.capacity]:
            del self._buckets[key]
