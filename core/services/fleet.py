"""The worker fleet's use cases (issue 17): what a beat enqueues, and what a worker does with one
delivery.

A worker runs one connector's sync through :meth:`SyncService.sync`, the call the CLI makes, so a
fleet run and ``seatgate sync`` do exactly the same work. Around it:

- **The schedule is the database.** :meth:`FleetService.dispatch` (a beat's tick) asks
  :meth:`SyncService.due_connectors` which enabled connectors' intervals have passed, leaves out the
  ones with a task already queued or running (so a connector waiting in the broker is not enqueued
  again at every tick), records a ``queued`` task for each and hands it to the broker. Enabling,
  disabling or adding a connector changes the next tick; nothing restarts.
- **At most one run per connector.** :meth:`FleetService.run` takes the connector's lock
  (:class:`~.ports.fleet.ConnectorLocks`: a PostgreSQL session advisory lock, which dies with the
  worker's connection) before it syncs. A delivery that finds it taken is skipped and recorded
  (``fleet_skips``), never run beside the other.
- **Redelivery converges.** Tasks are acknowledged late; a worker killed mid-run leaves nothing of
  the run (the sync's reconcile and its cursor are one transaction) and the broker redelivers the
  task to another worker, which runs it again from the committed cursor. A delivery of a task
  already ``done`` (the worker died between the run's commit and the acknowledgement) does nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable

import attrs

from ..errors import SeatgateError
from .ports import Ports
from .ports.fleet import ConnectorLocks, FleetLedger, FleetStatus, FleetTask
from .sync import SyncService

__all__ = ["DEFAULT_STALE_AFTER", "Dispatched", "FleetService", "RunReport"]

logger = logging.getLogger("seatgate.fleet")

# A task queued or running longer than this is taken as lost (its message or its worker is gone)
# and no longer keeps its connector off the schedule. Longer than the broker's visibility timeout
# (an hour by default), after which a killed worker's task is redelivered.
DEFAULT_STALE_AFTER = dt.timedelta(hours=2)

LOCK_HELD = "another run of this connector holds its lock"

# The lease owner of every run a fleet worker makes (SyncService(owner=...)): each holds the
# connector lock while it runs, which is what lets a task that holds it take over such a lease.
FLEET_OWNER = "fleet:"


@attrs.frozen
class Dispatched:
    """A task a beat's tick enqueued."""

    task: int  # fleet_tasks.id
    account: str
    product: str
    task_id: str  # the broker's message id ("" when the broker refused it)
    error: str = ""  # why the broker refused it


@attrs.frozen
class RunReport:
    """What one delivery did. ``state``: ``done`` (synced; ``outcome`` is the sync's),
    ``skipped`` (another run held the lock), ``already_done`` (a redelivery of a finished task),
    ``unknown`` (no such task in the ledger)."""

    task: int
    state: str
    outcome: str = ""
    run_id: int | None = None
    pulled: int = 0
    message: str = ""


# The broker seam: send (fleet_tasks.id, account, product) under the given message id.
Enqueue = Callable[[int, str, str, str], None]


class FleetService:
    """The fleet's use cases over the ledger, the connector locks and the sync service.

    :param stale_after: how long a queued or running task keeps its connector off the schedule.
    """

    def __init__(
        self,
        ports: Ports,
        ledger: FleetLedger,
        locks: ConnectorLocks,
        sync: SyncService,
        *,
        stale_after: dt.timedelta = DEFAULT_STALE_AFTER,
    ) -> None:
        self.ports = ports
        self.ledger = ledger
        self.locks = locks
        self.sync = sync
        self.stale_after = stale_after

    def due(self) -> list[tuple[str, str]]:
        """(account, product) of every connector due now with no task queued or running."""
        now = self.ports.now()
        waiting = self.ledger.outstanding(now - self.stale_after)
        # Product by product: workers taking the next tasks then sync different accounts, whose
        # users they never share (fewer waits on one account's rows).
        return sorted(
            (
                (inst.account, inst.product)
                for inst in self.sync.due_connectors()
                if (inst.account, inst.product) not in waiting
            ),
            key=lambda c: (c[1], c[0]),
        )

    def dispatch(self, enqueue: Enqueue) -> list[Dispatched]:
        """A beat's tick: enqueue every due connector once (see :meth:`due`). The tasks are
        written in one transaction before any message is sent, so a worker never gets a task the
        ledger lacks; a broker that refuses a message is reported per task (the task is ``done``
        with outcome ``error``) and the others are still sent."""
        return self._enqueue(self.due(), enqueue)

    def enqueue(self, account: str, product: str, enqueue: Enqueue) -> Dispatched:
        """Enqueue one run of a connector now, due or not (``seatgate fleet enqueue``). A second
        enqueue of a connector that is running is skipped by the worker that gets it, and
        recorded."""
        return self._enqueue([(account, product)], enqueue)[0]

    def _enqueue(self, connectors: list[tuple[str, str]], enqueue: Enqueue) -> list[Dispatched]:
        if not connectors:
            return []
        now = self.ports.now()
        # The broker's message ids are chosen here, so the ledger has them before anything is sent.
        messages = [str(uuid.uuid4()) for _ in connectors]
        tasks = self.ledger.enqueue(
            [(a, p, m) for (a, p), m in zip(connectors, messages, strict=True)], now
        )
        out = []
        for task, (account, product), message in zip(tasks, connectors, messages, strict=True):
            try:
                enqueue(task, account, product, message)
            except Exception as exc:  # the broker's own errors: reported, the rest goes on
                reason = f"the broker refused the task ({type(exc).__name__})"
                self.ledger.finish(
                    task, now, outcome="error", run_id=None, pulled=0, message=reason
                )
                out.append(Dispatched(task, account, product, "", reason))
                continue
            out.append(Dispatched(task, account, product, message))
        return out

    def run(self, task: int, worker: str) -> RunReport:
        """One delivery of ``task`` on ``worker`` (host and pid): take the connector's lock, sync,
        record. Never raises for the sync's own failures (they are the run's outcome); a
        database that cannot be reached propagates (the broker then keeps the message)."""
        found = self.ledger.get(task)
        if found is None:
            logger.warning("fleet task %s is not in the ledger; nothing to run", task)
            return RunReport(task, "unknown", message="no such task")
        with self.locks.hold(found.account, found.product) as held:
            if not held:
                self.ledger.skip(task, self.ports.now(), worker, LOCK_HELD)
                logger.info(
                    "fleet task %s skipped: %s %s already running",
                    task,
                    found.account,
                    found.product,
                )
                return RunReport(task, "skipped", message=LOCK_HELD)
            if not self.ledger.start(task, self.ports.now(), worker):
                # Redelivered after its run was recorded (the worker died before the ack).
                current = self.ledger.get(task)
                outcome, run_id = (current.outcome, current.run_id) if current else ("", None)
                return RunReport(task, "already_done", outcome, run_id)
            return self._sync(found, worker)

    def _sync(self, task: FleetTask, worker: str) -> RunReport:
        # Two connectors of one account may run at once: the engine links a user the other
        # created meanwhile (storage's insert_users), so no run here is retried for it.
        try:
            # Holding the connector lock across processes, a live lease of another fleet run
            # is a dead worker's: the redelivered task takes over instead of being skipped.
            take_over = FLEET_OWNER if self.locks.across_processes else None
            result = self.sync.sync(task.account, task.product, take_over_from=take_over)
        except SeatgateError as exc:  # disabled, uninstalled, the account removed...
            report = RunReport(task.id, "done", "error", message=str(exc))
        else:
            s = result.summary
            report = RunReport(task.id, "done", s.outcome, result.run_id, s.pulled, s.message)
        self.ledger.finish(
            task.id,
            self.ports.now(),
            outcome=report.outcome,
            run_id=report.run_id,
            pulled=report.pulled,
            message=report.message,
        )
        logger.info(
            "fleet task %s: %s %s %s on %s",
            task.id,
            task.account,
            task.product,
            report.outcome,
            worker,
        )
        return report

    def status(self, limit: int = 20) -> FleetStatus:
        """Queued, running, recently finished and stale tasks, and the latest skipped deliveries
        (``limit`` of each list)."""
        now = self.ports.now()
        return self.ledger.status(now=now, stale_before=now - self.stale_after, limit=limit)
