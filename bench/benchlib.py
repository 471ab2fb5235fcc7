"""What the benchmark scripts share: peak RSS and timing a pull against a sandbox.

The scripts run as ``python bench/<name>.py``, so this folder is on ``sys.path`` and they import
this module by name.
"""

from __future__ import annotations

import contextlib
import math
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote


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


def measure(name: str, fn: Callable[[Any], int], sandbox: Any, runs: int, page: int) -> None:
    """Time ``fn(sandbox)`` (see :func:`time_pull`) and print one line: users, median seconds,
    users/s, requests against the minimum ceil(users / ``page``), peak RSS."""
    count, seconds, requests = time_pull(fn, sandbox, runs)
    minimum = math.ceil(len(sandbox.store.users) / page)
    print(
        f"{name:<28} users={count:>7}  {seconds:7.3f} s  {count / seconds:>9,.0f} users/s  "
        f"requests={requests} (min {minimum})  peak RSS={peak_rss_mb():.0f} MB"
    )


@contextlib.contextmanager
def scratch_database(db: str | None) -> Iterator[str]:
    """A database URL for one run: a new SQLite file (``db`` empty, None or ``sqlite``), or a new
    schema of the PostgreSQL database ``db`` names (dropped afterwards)."""
    if not db or db == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    import sqlalchemy as sa

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(db)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in db else "?"
    try:
        yield f"{db}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
