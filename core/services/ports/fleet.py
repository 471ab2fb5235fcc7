"""The fleet's ports (issue 17): the ledger of runs enqueued for workers, and the connector lock.

A worker fleet runs the same :meth:`SyncService.sync <seatgate.core.services.sync.SyncService.sync>`
the CLI runs; what it adds is bookkeeping (:class:`FleetLedger`: what was enqueued, who ran it,
which deliveries were skipped) and the guarantee of at most one run per connector across every
worker and machine (:class:`ConnectorLocks`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Protocol

import attrs

__all__ = [
    "FLEET_STATES",
    "ConnectorLocks",
    "FleetLedger",
    "FleetSkip",
    "FleetStatus",
    "FleetTask",
]

# queued: sent to the broker; running: a worker holds the connector's lock and syncs; done: the
# sync ended (its outcome says how); skipped: the delivery found another run holding the lock.
FLEET_STATES: tuple[str, ...] = ("queued", "running", "done", "skipped")


@attrs.frozen
class FleetTask:
    """One enqueued run of a connector (``fleet_tasks``)."""

    id: int
    account: str
    product: str
    state: str  # one of FLEET_STATES
    outcome: str  # the sync's outcome once done: succeeded | failed | halted | error
    task_id: str  # the broker's message id
    enqueued_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    worker: str  # host and pid of the worker that ran it last
    deliveries: int  # how many times a worker took it (> 1: redelivered after a crash)
    run_id: int | None  # the sync_runs row the run wrote
    pulled: int
    message: str


@attrs.frozen
class FleetSkip:
    """A delivery skipped because another run of the connector held its lock."""

    id: int
    task: int  # fleet_tasks.id of the skipped delivery
    account: str
    product: str
    at: dt.datetime
    worker: str
    reason: str


@attrs.frozen
class FleetStatus:
    """What ``seatgate fleet status`` shows. ``stale`` are queued or running tasks older than the
    ledger's stale age (their worker or message was lost; they no longer hold the schedule)."""

    queued: Sequence[FleetTask]
    running: Sequence[FleetTask]
    finished: Sequence[FleetTask]
    skipped: Sequence[FleetSkip]
    stale: Sequence[FleetTask]
    counts: dict[str, int]  # tasks per state, over the whole ledger


class FleetLedger(Protocol):
    """The ``fleet_tasks`` and ``fleet_skips`` tables."""

    def outstanding(self, since: dt.datetime) -> set[tuple[str, str]]:
        """(account, product) of every task queued or running and enqueued at or after
        ``since``: the connectors a beat must not enqueue again."""
        ...

    def enqueue(self, connectors: Sequence[tuple[str, str, str]], at: dt.datetime) -> list[int]:
        """New ``queued`` tasks, one per (account, product, broker message id), written in one
        transaction; their ids, in order."""
        ...

    def get(self, task: int) -> FleetTask | None: ...

    def start(self, task: int, at: dt.datetime, worker: str) -> bool:
        """Mark ``task`` running on ``worker`` (one more delivery), unless it is already ``done``
        or ``skipped`` (a redelivery of a recorded run): False then, and nothing changes."""
        ...

    def finish(
        self,
        task: int,
        at: dt.datetime,
        *,
        outcome: str,
        run_id: int | None,
        pulled: int,
        message: str,
    ) -> None: ...

    def skip(self, task: int, at: dt.datetime, worker: str, reason: str) -> None:
        """Record a skipped delivery; a task still ``queued`` becomes ``skipped``."""
        ...

    def status(self, *, now: dt.datetime, stale_before: dt.datetime, limit: int) -> FleetStatus: ...


class ConnectorLocks(Protocol):
    """At most one run per connector: ``with locks.hold(account, product) as held:`` — ``held`` is
    False when another run (in any process, on any machine sharing the database) holds it. The
    lock dies with its holder's process, so a killed worker never blocks the next run."""

    @property
    def across_processes(self) -> bool:
        """True when a held lock excludes every other process and machine (PostgreSQL's
        advisory locks); False for a lock of this process only (SQLite)."""
        ...

    def hold(self, account: str, product: str) -> AbstractContextManager[bool]: ...
