"""What the benchmark scripts share: peak RSS and timing a pull against a sandbox.

The scripts run as ``python bench/<name>.py``, so this folder is on ``sys.path`` and they import
this module by name.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is KiB on Linux, bytes on macOS.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def time_pull(fn: Callable[[Any], int], sandbox: Any, runs: int) -> tuple[int, float, int]:
    """Run ``fn(sandbox)`` ``runs`` times: (users pulled, median seconds, median requests the
    sandbox served)."""
    times, requests, users = [], [], 0
    for _ in range(runs):
        before = sandbox.requests
        start = time.perf_counter()
        users = fn(sandbox)
        times.append(time.perf_counter() - start)
        requests.append(sandbox.requests - before)
    return users, statistics.median(times), int(statistics.median(requests))
