"""Per-token rate limits: a token bucket per key, in the process.

Home-made on purpose: the ``limits`` package's in-memory storage starts a timer thread to expire
its windows (measured: hundreds of threads started per thousand checks, a third of a check's
time), and a bucket is a dozen lines. ``parse_rate`` reads the usual ``N/second`` notation.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable

from ...errors import BadInput

__all__ = ["RateLimiter", "parse_rate"]

_PERIODS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
# A request that waited exactly the wait it was told refills to 1 token less a rounding error.
_EPSILON = 1e-9
_RATE = re.compile(r"^\s*(\d+)\s*(?:/|per)\s*(second|minute|hour|day)s?\s*$")


def parse_rate(text: str) -> tuple[int, float]:
    """``"1000/second"`` -> (1000, 1.0): requests and the period they refill over (seconds)."""
    found = _RATE.match(text)
    if found is None or int(found.group(1)) < 1:
        raise BadInput("rate limit", text, "N/second, N/minute, N/hour or N/day, N >= 1")
    return int(found.group(1)), _PERIODS[found.group(2)]


class RateLimiter:
    """``count`` requests per ``period`` seconds per key, in bursts of up to ``count``.
    Thread-safe; ``clock`` is monotonic seconds."""

    def __init__(self, rate: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.count, self.period = parse_rate(rate)
        self.rate = rate
        self._per_second = self.count / self.period
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def hit(self, key: str) -> float:
        """Take one request for ``key``: 0.0 when allowed, else the seconds until one is."""
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (float(self.count), now))
            tokens = min(float(self.count), tokens + (now - at) * self._per_second)
            if tokens >= 1.0 - _EPSILON:
                self._buckets[key] = (max(0.0, tokens - 1.0), now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self._per_second

    @staticmethod
    def retry_after(wait: float) -> str:
        """The ``Retry-After`` header for a wait (whole seconds, at least 1)."""
        return str(max(1, math.ceil(wait)))
