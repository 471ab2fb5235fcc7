"""What one snapshot refresh costs a server's worker while a sync writes (issue 15: the p99 of
checks during a sync): the CPU a refresh holds the worker's interpreter for, while its checks
wait for it.

    .venv/bin/python bench/snapshot_refresh.py [--db URL] [--users 100000] [--changed 7000]
        [--rounds 10] [--runs 3]

Setup (not timed): an account of ``--users`` users, half of them seated (bench/http_check.py's),
and a snapshot read once. Then, ``--rounds`` times: ``--changed`` new users are written as a
sync writes them (their entitlement version moves, the strict version does not) and the
snapshot is refreshed from the previous one (``Entitlements.snapshot(..., reread=True)``, what a
server's background refresh runs). Printed: the median CPU (thread time) and wall time of a
refresh, the statements it ran, and the longest the refresh kept the interpreter from another
thread (a thread standing for the worker's event loop, which gives the interpreter up at every
step as the loop does at every socket call, records the longest gap between its steps; the
interpreter's switch interval is the worker's, ``SWITCH_INTERVAL``): each the median over the
runs. On a busy machine the gaps include the operating system's own scheduling. ``--db`` defaults to
``SEATGATE_TEST_POSTGRES_URL`` (a schema of its own, dropped afterwards), else a SQLite file.

7,000 is what a worker refreshing every 0.25 s (half the default sync lag) finds changed during
a 100,000-user sync of this machine (bench/http_check.py --sync-users 100000).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))

import http_check as hc  # the account and users of the HTTP bench

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock, parse_instant
from seatgate.core.entrypoints.http.settings import SWITCH_INTERVAL
from seatgate.core.storage.repositories.accounts import SqlAccountStore


class LoopStandIn:
    """A thread that gives up the interpreter at every step, as an event loop does at every
    socket call; ``longest``: the longest gap between two of its steps (seconds)."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last = time.perf_counter()
        while not self._stop.is_set():
            time.sleep(0)
            now = time.perf_counter()
            self.longest = max(self.longest, now - last)
            last = now

    def __enter__(self) -> LoopStandIn:
        self._thread.start()
        time.sleep(0.005)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def one_run(url: str, users: int, changed: int, rounds: int) -> tuple[float, ...]:
    """(median CPU ms, median wall ms, median statements, median and worst longest hold ms) of
    ``rounds`` refreshes."""
    hc.setup(url, users)
    at = parse_instant(hc.CHECK_AT)
    app = App(url, clock=FixedClock(at), entitlement_max_age=3600)
    statements = 0

    def count(*_: object) -> None:
        nonlocal statements
        statements += 1

    sa.event.listen(app.db.engine, "before_cursor_execute", count)
    try:
        app.check(hc.ACCOUNT, hc.PRODUCT, hc.emails(1)[0], "cti")
        with app.db.read() as conn:
            acct_id = SqlAccountStore(conn).get(hc.ACCOUNT).id
        gc.collect()
        gc.freeze()  # as a server's worker does once started
        cpu, wall, counts, holds = [], [], [], []
        for r in range(rounds):
            with app.db.write() as conn:  # as a sync's batch writes them
                store = SqlAccountStore(conn)
                new = [f"sync{r}-{i:06d}@example.com" for i in range(changed)]
                store.add_users(acct_id, new, name="", roles=[], at=at)
                store.bump_versions(acct_id, strict=False)
            statements = 0
            with LoopStandIn() as loop:
                c0, w0 = time.thread_time(), time.perf_counter()
                snap = app.entitlements.snapshot(hc.ACCOUNT, hc.PRODUCT, at, reread=True)
                cpu.append((time.thread_time() - c0) * 1000)
                wall.append((time.perf_counter() - w0) * 1000)
            counts.append(statements)
            holds.append(loop.longest * 1000)
        assert len(snap.users) == users + rounds * changed, "the refresh missed users"
        return (*(statistics.median(f) for f in (cpu, wall, counts, holds)), max(holds))
    finally:
        gc.unfreeze()
        app.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default=os.environ.get("SEATGATE_TEST_POSTGRES_URL"))
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--changed", type=int, default=7_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sys.setswitchinterval(SWITCH_INTERVAL)  # as a server's worker sets it
    figures = []
    for _ in range(args.runs):
        scratch = hc.Scratch(args.db)
        try:
            figures.append(one_run(scratch.url, args.users, args.changed, args.rounds))
        finally:
            scratch.drop()
    kind = "PostgreSQL" if args.db and args.db.startswith("postgres") else "SQLite"
    cpu, wall, count, hold, worst = (statistics.median(f[i] for f in figures) for i in range(5))
    print(
        f"refresh of {args.changed:,} users written by a sync into {args.users:,}, {kind}: "
        f"CPU {cpu:.1f} ms, wall {wall:.1f} ms, {count:.0f} statements, longest hold of the "
        f"interpreter {hold:.1f} ms (worst {worst:.1f} ms) "
        f"(medians of {args.runs} runs x {args.rounds} refreshes; load "
        f"{'/'.join(f'{x:.1f}' for x in os.getloadavg())})"
    )


if __name__ == "__main__":
    main()
