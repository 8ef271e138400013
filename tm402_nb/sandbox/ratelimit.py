"""Token-bucket rate limit per caller (payer wallet, API key or client IP).

Each key gets ``burst`` tokens that refill at ``rate`` per second; a request
takes one. When the bucket is empty the answer is 429 with ``Retry-After``
set to the whole seconds until a token is back (at least 1).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

MAX_KEYS = 10_000


class RateLimiter:
    def __init__(self, rate: float = 20.0, burst: int = 40, clock: Callable[[], float] = time.monotonic) -> None:
        if rate < 0 or burst < 0:
            raise ValueError("rate and burst must be >= 0")
        self.rate = float(rate)
        self.burst = int(burst)
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rate > 0 and self.burst > 0

    def check(self, key: str) -> int:
        """Take a token for ``key``: 0 if allowed, else the seconds to wait."""
        if not self.enabled:
            return 0
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                wait = 0
            else:
                self._buckets[key] = (tokens, now)
                wait = max(1, math.ceil((1.0 - tokens) / self.rate))
            while len(self._buckets) > MAX_KEYS:
                self._buckets.popitem(last=False)
            return wait
