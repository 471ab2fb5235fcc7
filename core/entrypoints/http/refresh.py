"""Snapshot refreshes of a server's checks: one at a time per (account, product), awaited.

A check whose cached snapshot is stale (another process committed a change: a sync's batch, an
unassign) needs it refreshed before it answers. Sent each to a thread of their own, such checks
would queue for the one refresh the entitlement service lets run, holding a thread each while
they wait: during a sync that commits a batch every 50 ms a worker's threads were all waiting,
and later checks queued behind them for a thread (measured: p99 700 ms). Here the event loop
starts one refresh per (account, product) in a thread and every check that needs it awaits it,
holding no thread; when it ends they answer from memory.

Only the changes a check must see at once make it wait: those that move the contract's strict
version (a person's seat change, the contract, the installation). While a sync's writes alone are
newer than the snapshot (the entitlement version moved, the strict one did not), checks answer
from the snapshot as long as it was read less than ``sync_lag`` seconds ago, and from half that
age one refresh runs in the background: a sync that commits a batch every 50 ms costs a few
refreshes a second, none of them waited for (issue 15: p99 during a sync). With a fence, the
versions it read tell a sync's writes apart; with notifications alone, their payload does
(``l:``, migration access_0002: :meth:`Entitlements.lagged`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool

from ...domain.entitlement import Snapshot
from ...services.entitlement import Entitlements
from .settings import SYNC_LAG

__all__ = ["SnapshotRefresher"]

#: Refreshes a check awaits before it takes the slower path (a thread of its own): each round
#: waits for a refresh that may have started before the check's version was read.
ROUNDS = 3


class SnapshotRefresher:
    """``await fresh(account, product, versions)``: whether the cached snapshot now answers the
    check without a read, after awaiting at most :data:`ROUNDS` refreshes (False: the caller
    checks in a thread, which reads, or raises what the read raised: an unknown account, the
    database away). ``sync_lag``: seconds (0: never answer behind a sync's writes)."""

    def __init__(
        self,
        entitlements: Entitlements,
        now: Callable[[], dt.datetime],
        *,
        sync_lag: float = SYNC_LAG,
        monotonic: Callable[[], float] = time.monotonic,
        on_refresh: Callable[[str], None] = lambda kind: None,
    ) -> None:
        self._entitlements = entitlements
        self._now = now
        self._lag = sync_lag
        self._monotonic = monotonic
        self._on_refresh = on_refresh  # called with "awaited" or "background" as one starts
        self._running: dict[tuple[str, str], asyncio.Future[Snapshot]] = {}
        self.background = 0  # refreshes started without a check waiting for them

    def _answers(self, account: str, product: str, versions: tuple[int, int] | None) -> bool:
        if versions is None:
            # Told by notifications: trusted, and behind a sync's writes by less than the lag.
            if not self._entitlements.is_fresh(account, product):
                return False
            age = self._entitlements.behind(account, product)
            return age is None or age < self._lag
        version, strict = versions
        return self._entitlements.confirm(account, product, version, strict, self._lag)

    def _start(self, key: tuple[str, str], *, waited: bool) -> asyncio.Future[Snapshot]:
        running = self._running.get(key)
        if running is None or running.done():
            self._on_refresh("awaited" if waited else "background")
            self.background += not waited
            # Always a read: a snapshot behind a sync's writes by more than the lag is still
            # trusted in every other way, and would otherwise be handed back as it is.
            running = asyncio.ensure_future(
                run_in_threadpool(
                    self._entitlements.snapshot, key[0], key[1], self._now(), reread=True
                )
            )
            running.add_done_callback(_consume)
            self._running[key] = running
        return running

    def _catch_up(self, key: tuple[str, str], versions: tuple[int, int] | None) -> None:
        """A refresh in the background once the snapshot, behind a sync's writes, is half its
        allowed lag old: checks keep answering from it meanwhile."""
        age = (
            self._entitlements.behind(*key)
            if versions is None
            else self._entitlements.lagging(key[0], key[1], versions[0])
        )
        if age is not None and age >= self._lag / 2:
            self._start(key, waited=False)  # (none if one runs already)

    async def fresh(self, account: str, product: str, versions: tuple[int, int] | None) -> bool:
        """``versions``: the contract's (entitlement version, strict version) a fence read after
        the check arrived (the snapshot must be of the strict one or newer, and of the other one
        too unless read less than ``sync_lag`` seconds ago); None: the service's own freshness
        rule (notifications), a snapshot behind a sync's writes alone answering while read less
        than ``sync_lag`` seconds ago."""
        key = (account, product)
        if versions is None and not self._entitlements.max_age:
            # Trusted never (``version``: each check reads the version itself, in a thread).
            return self._entitlements.is_fresh(account, product)
        for _ in range(ROUNDS):
            if self._answers(account, product, versions):
                self._catch_up(key, versions)
                return True
            running = self._start(key, waited=True)
            try:
                # Shielded: a check that gives up (its timeout) leaves the refresh to the others.
                await asyncio.shield(running)
            except Exception:
                return False
        return self._answers(account, product, versions)

    async def idle(self) -> None:
        """Return once no refresh is running (those in the background included)."""
        while running := [f for f in self._running.values() if not f.done()]:
            await asyncio.wait(running)


def _consume(future: asyncio.Future[Snapshot]) -> None:
    """Retrieve a refresh's error (the checks awaiting it report theirs), so that asyncio does
    not log it as never retrieved."""
    if not future.cancelled():
        future.exception()
