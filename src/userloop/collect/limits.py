"""Per-key rate limits: a token bucket per write key, counted in records."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``rate`` records per second per key, with bursts up to ``burst`` records.

    :meth:`take` returns 0 when the request may go on, else the seconds to wait (for ``Retry-After``).
    A request larger than the burst is let through when the bucket is full, so no batch is refused forever.
    """

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[object, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: object, n: int, *, rate: float | None = None) -> float:
        rate = rate or self.rate
        if rate <= 0:
            return 0.0
        burst = max(self.burst, rate)
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.get(key) or _Bucket(burst, now)
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            self._buckets[key] = bucket
            if bucket.tokens >= min(n, burst):
                bucket.tokens -= n
                return 0.0
            return max(1.0, math.ceil((min(n, burst) - bucket.tokens) / rate))
