"""Snapshot refreshes of a server's checks: one at a time per (account, product), awaited.

A check whose cached snapshot is stale (another process committed a change: a sync's batch, an
unassign) needs it refreshed before it answers. Sent each to a thread of their own, such checks
would queue for the one refresh the entitlement service lets run, holding a thread each while
they wait: during a sync that commits a batch every 50 ms a worker's threads were all waiting,
and later checks queued behind them for a thread (measured: p99 700 ms). Here the event loop
starts one refresh per (account, product) in a thread and every check that needs it awaits it,
holding no thread; when it ends they answer from memory.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool

from ...domain.entitlement import Snapshot
from ...services.entitlement import Entitlements

__all__ = ["SnapshotRefresher"]

#: Refreshes a check awaits before it takes the slower path (a thread of its own): each round
#: waits for a refresh that may have started before the check's version was read.
ROUNDS = 3


class SnapshotRefresher:
    """``await fresh(account, product, version)``: whether the cached snapshot now answers the
    check without a read, after awaiting at most :data:`ROUNDS` refreshes (False: the caller
    checks in a thread, which reads, or raises what the read raised: an unknown account, the
    database away)."""

    def __init__(self, entitlements: Entitlements, now: Callable[[], dt.datetime]) -> None:
        self._entitlements = entitlements
        self._now = now
        self._running: dict[tuple[str, str], asyncio.Future[Snapshot]] = {}

    def _answers(self, account: str, product: str, version: int | None) -> bool:
        if version is None:
            return self._entitlements.is_fresh(account, product)
        return self._entitlements.confirm(account, product, version)

    async def fresh(self, account: str, product: str, version: int | None) -> bool:
        """``version``: the entitlement version a fence read after the check arrived (the
        snapshot must be of it or newer); None: the service's own freshness rule."""
        key = (account, product)
        if version is None and not self._entitlements.max_age:
            # Trusted never (``version``: each check reads the version itself, in a thread).
            return self._entitlements.is_fresh(account, product)
        for _ in range(ROUNDS):
            if self._answers(account, product, version):
                return True
            running = self._running.get(key)
            if running is None or running.done():
                started: asyncio.Future[Snapshot] = asyncio.ensure_future(
                    run_in_threadpool(self._entitlements.snapshot, account, product, self._now())
                )
                started.add_done_callback(_consume)
                self._running[key] = running = started
            try:
                # Shielded: a check that gives up (its timeout) leaves the refresh to the others.
                await asyncio.shield(running)
            except Exception:
                return False
        return self._answers(account, product, version)


def _consume(future: asyncio.Future[Snapshot]) -> None:
    """Retrieve a refresh's error (the checks awaiting it report theirs), so that asyncio does
    not log it as never retrieved."""
    if not future.cancelled():
        future.exception()
