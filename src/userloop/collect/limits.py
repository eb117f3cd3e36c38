"""Rate limits: token buckets, counted in records for the collector and in requests for the API.

A bucket holds at most ``burst`` tokens and refills at ``rate`` tokens per second; taking ``n`` tokens succeeds
only when ``n`` are there, so over any span of ``t`` seconds at most ``burst + rate·t`` are taken. The buckets
live in a size-capped LRU map, so a flood of distinct keys (addresses, made-up tokens) cannot grow memory.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

#: Most buckets kept; the least recently used one is dropped beyond this.
MAX_BUCKETS = 100_000
#: Largest record the collector spools, as JSON (``Limits.max_record_bytes`` in :mod:`userloop.collect.door`).
MAX_RECORD_BYTES = 1 << 20


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """``rate`` tokens per second per key with bursts up to ``burst``, unless a call names its own.

    :meth:`take` returns 0 when the tokens were taken, else the seconds to wait (for ``Retry-After``), or
    ``math.inf`` when ``n`` exceeds the burst (such a request can never pass; refuse it as too large).
    """

    def __init__(self, rate: float, burst: float, *, max_keys: int = MAX_BUCKETS) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[Hashable, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def burst_for(self, rate: float | None = None, burst: float | None = None) -> float:
        """The burst that applies: the one named, else the default's when the rate is the default, else 2 s of
        the rate (at least one token)."""
        if burst:
            return burst
        if not rate:
            return self.burst
        return max(rate * 2, 1.0)

    def take(self, key: Hashable, n: int = 1, *, rate: float | None = None, burst: float | None = None) -> float:
        rate = rate or self.rate
        if rate <= 0:
            return 0.0
        size = self.burst_for(rate if rate != self.rate else None, burst)
        if n > size:
            return math.inf
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.pop(key, None) or _Bucket(size, now)
            bucket.tokens = min(size, bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            self._buckets[key] = bucket
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            if bucket.tokens >= n:
                bucket.tokens -= n
                return 0.0
            return max(1.0, math.ceil((n - bucket.tokens) / rate))

    def wait(self, key: Hashable) -> float:
        """Seconds until ``key`` holds one token (0: it does now), taking nothing."""
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None or self.rate <= 0:
                return 0.0
            tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def __len__(self) -> int:
        return len(self._buckets)


#: The collector's name for it (one bucket per project, counted in records).
RateLimiter = TokenBuckets
