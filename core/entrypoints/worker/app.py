"""The Celery app of the fleet (issue 17): the sync task, the beat's scheduler, and the one
seatgate :class:`~seatgate.core.bootstrap.App` each worker process holds.

- ``seatgate.fleet.sync(task, account, product, as_of=None)`` runs one delivery through
  :meth:`FleetService.run <seatgate.core.services.fleet.FleetService.run>`: the connector's lock,
  :meth:`SyncService.sync` (the CLI's call), the ledger. Acknowledged late and rejected back to the
  queue when its worker process is lost, so a run cut short is run again by another worker.
- :class:`DispatchScheduler`, beat's scheduler: every ``SEATGATE_BEAT_INTERVAL`` seconds it runs
  :meth:`FleetService.dispatch` in the beat process — the schedule is read from the database at
  each tick (enabling, disabling or adding a connector needs no restart), and a tick never waits
  in a queue behind the syncs it enqueued.

``as_of``: a dispatch run as of a fixed instant (``seatgate --as-of ... fleet dispatch``) passes it
to its tasks, which run as of that instant too; otherwise each worker's own clock applies (the
wall clock, or its ``--as-of``).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import attrs
from celery import Celery
from celery.beat import ScheduleEntry, Scheduler
from celery.exceptions import Reject

from ...clock import Clock, FixedClock, SystemClock, isoformat, parse_instant
from ...errors import DatabaseUnusable, SeatgateError
from .settings import FleetSettings

if TYPE_CHECKING:
    from ...bootstrap import App
    from ...services.fleet import Dispatched

__all__ = [
    "DISPATCH_ENTRY",
    "SYNC_TASK",
    "DispatchScheduler",
    "TaskClock",
    "WorkerConfig",
    "configure",
    "create_app",
    "dispatch",
    "worker_name",
]

logger = logging.getLogger("seatgate.worker")

SYNC_TASK = "seatgate.fleet.sync"
DISPATCH_ENTRY = "seatgate.fleet.dispatch"


@attrs.define
class WorkerConfig:
    """What a worker process builds its App from: the CLI's global options, else the
    environment (``SEATGATE_DATABASE_URL``, ``SEATGATE_NOW``, ``SEATGATE_POLICY``)."""

    db: str | None = None
    as_of: dt.datetime | None = None
    policy: str | None = None

    @classmethod
    def from_env(cls) -> WorkerConfig:
        now = os.environ.get("SEATGATE_NOW")
        return cls(
            db=os.environ.get("SEATGATE_DATABASE_URL"),
            as_of=parse_instant(now, "SEATGATE_NOW") if now else None,
            policy=os.environ.get("SEATGATE_POLICY"),
        )


class TaskClock:
    """A worker's clock: the instant its current task runs as of (per thread), else ``base``."""

    def __init__(self, base: Clock) -> None:
        self.base = base
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"TaskClock({self.base!r})"

    def now(self) -> dt.datetime:
        fixed: dt.datetime | None = getattr(self._local, "at", None)
        return fixed if fixed is not None else self.base.now()

    @contextmanager
    def fixed(self, at: dt.datetime | None) -> Iterator[None]:
        previous = getattr(self._local, "at", None)
        self._local.at = at
        try:
            yield
        finally:
            self._local.at = previous


_config: WorkerConfig | None = None
_app: App | None = None
_clock: TaskClock | None = None
_app_pid = 0
_lock = threading.Lock()


def configure(config: WorkerConfig) -> None:
    """Set what this process's App is built from (``seatgate worker`` calls it before starting)."""
    global _config, _app
    with _lock:
        _config = config
        _app = None


def seatgate_app() -> tuple[App, TaskClock]:
    """This process's App, built on first use — after a prefork pool forked, so no database
    connection is shared between processes."""
    global _app, _clock, _app_pid
    with _lock:
        if _app is None or _app_pid != os.getpid():
            from ...bootstrap import App

            config = _config or WorkerConfig.from_env()
            base: Clock = FixedClock(config.as_of) if config.as_of else SystemClock()
            _clock = TaskClock(base)
            _app = App(config.db, clock=_clock, policy_file=config.policy)
            _app_pid = os.getpid()
        assert _clock is not None
        return _app, _clock


_DATABASE_DOWN_PAUSE = 5.0  # seconds a worker waits before handing back a task it could not run
_throttle_pid = 0


def use_shared_throttle(settings: FleetSettings) -> None:
    """Once per process: the CRM throttle shared through Redis (``SEATGATE_THROTTLE_URL``, by
    default the broker), so a Retry-After one worker is given pauses the others."""
    global _throttle_pid
    if _throttle_pid == os.getpid() or not settings.throttle_url:
        return
    from ...plugins.throttle import RedisThrottleStore, use_throttle_store

    use_throttle_store(RedisThrottleStore(settings.throttle_url, prefix=settings.prefix))
    _throttle_pid = os.getpid()


def worker_name() -> str:
    """``host:pid`` of this process, as the ledger records who ran a task."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _one_line(exc: BaseException) -> str:
    from ...plugins.config import mask_secrets

    return mask_secrets(f"{type(exc).__name__}: {exc}").replace("\n", " ")[:300]


def create_app(settings: FleetSettings | None = None) -> Celery:
    """The Celery app on ``settings`` (default: :meth:`FleetSettings.from_env`). Builds no
    connection: Celery connects when a worker starts or a task is sent."""
    settings = settings or FleetSettings.from_env()
    celery = Celery("seatgate", broker=settings.broker_url, backend=settings.result_backend)
    transport = {
        "visibility_timeout": settings.visibility_timeout,
        "global_keyprefix": settings.prefix,
        # kombu sweeps for the tasks of dead workers every interval x throttle seconds (100 by
        # default): sweep every few seconds instead, so a killed worker's task is redelivered
        # soon after its visibility timeout.
        "unacked_restore_interval": max(1.0, min(10.0, settings.visibility_timeout / 2)),
        "unacked_restore_throttle": 1,
    }
    celery.conf.update(
        task_default_queue=settings.queue,
        task_acks_late=True,  # a task is acknowledged once it ran: a lost worker's is redelivered
        task_reject_on_worker_lost=True,  # a killed pool process: back to the queue at once
        task_ignore_result=True,  # the ledger (fleet_tasks) is the record
        worker_prefetch_multiplier=1,  # a worker reserves only the task it runs
        broker_transport_options=transport,
        result_backend_transport_options={"global_keyprefix": settings.prefix},
        broker_connection_retry_on_startup=True,
        enable_utc=True,
        timezone="UTC",
        worker_hijack_root_logger=False,
        beat_schedule={},
    )
    celery.conf.seatgate_settings = settings

    def sync_connector(
        self: Any, task: int, account: str, product: str, as_of: str | None = None
    ) -> dict[str, Any]:
        """One delivery of a fleet task (see the module's docstring)."""
        try:
            use_shared_throttle(settings)
            app, clock = seatgate_app()
            at = parse_instant(as_of, "as_of") if as_of else None
            with clock.fixed(at):
                report = app.fleet.run(task, worker_name())
        except DatabaseUnusable as exc:
            # Nothing ran: the database is down or busy. Back to the queue for another try.
            logger.error("fleet task %s (%s %s) not run: %s", task, account, product, exc)
            time.sleep(_DATABASE_DOWN_PAUSE)  # real seconds: no hot loop on a database that is down
            raise Reject(str(exc), requeue=True) from None
        except SeatgateError as exc:
            logger.error("fleet task %s (%s %s) failed: %s", task, account, product, exc)
            return {"task": task, "state": "error", "message": str(exc)}
        except Exception as exc:  # a bug: one line in the log, never a traceback
            message = _one_line(exc)
            logger.error("fleet task %s (%s %s) raised %s", task, account, product, message)
            return {"task": task, "state": "error", "message": message}
        return attrs.asdict(report)

    celery.task(name=SYNC_TASK, bind=True, acks_late=True)(sync_connector)
    return celery


def dispatch(celery: Celery, app: App) -> list[Dispatched]:
    """One tick of the schedule: enqueue every due connector on ``celery`` (see
    :meth:`FleetService.dispatch`). A dispatch run as of a fixed instant passes it to its tasks."""
    settings: FleetSettings = celery.conf.seatgate_settings
    as_of = isoformat(app.now()) if not isinstance(_base_clock(app), SystemClock) else None

    def enqueue(task: int, account: str, product: str, message: str) -> None:
        celery.send_task(
            SYNC_TASK,
            args=[task, account, product],
            kwargs={"as_of": as_of},
            queue=settings.queue,
            task_id=message,
        )

    # Two beats by mistake still enqueue each connector once: one dispatch at a time.
    with app.fleet.locks.hold("", DISPATCH_ENTRY) as held:
        if not held:
            logger.info("another beat is dispatching; this tick does nothing")
            return []
        return app.fleet.dispatch(enqueue)


def enqueue_one(celery: Celery, app: App, account: str, product: str) -> Dispatched:
    """Enqueue one run of a connector now (``seatgate fleet enqueue``)."""
    settings: FleetSettings = celery.conf.seatgate_settings
    as_of = isoformat(app.now()) if not isinstance(_base_clock(app), SystemClock) else None

    def enqueue(task: int, acct: str, prod: str, message: str) -> None:
        celery.send_task(
            SYNC_TASK,
            args=[task, acct, prod],
            kwargs={"as_of": as_of},
            queue=settings.queue,
            task_id=message,
        )

    return app.fleet.enqueue(account, product, enqueue)


def _base_clock(app: App) -> Clock:
    clock = app.clock
    return clock.base if isinstance(clock, TaskClock) else clock


class DispatchScheduler(Scheduler):  # type: ignore[misc]  # celery ships no type hints
    """Beat's scheduler: one entry, :data:`DISPATCH_ENTRY`, run in the beat process every
    ``SEATGATE_BEAT_INTERVAL`` seconds; each run reads the due connectors from the database."""

    def setup_schedule(self) -> None:
        settings: FleetSettings = self.app.conf.seatgate_settings
        self.merge_inplace(
            {DISPATCH_ENTRY: {"task": DISPATCH_ENTRY, "schedule": settings.beat_interval}}
        )

    def apply_entry(self, entry: ScheduleEntry, producer: Any = None) -> None:
        if entry.name != DISPATCH_ENTRY:
            super().apply_entry(entry, producer=producer)
            return
        try:
            app, _clock = seatgate_app()
            sent = dispatch(self.app, app)
        except Exception as exc:  # a tick that failed is retried at the next one
            logger.error("beat: the schedule could not be read or sent: %s", _one_line(exc))
            return
        refused = [d for d in sent if d.error]
        logger.info(
            "beat: %d connector(s) enqueued, %d refused", len(sent) - len(refused), len(refused)
        )
        for d in refused:
            logger.error("beat: %s %s not enqueued: %s", d.account, d.product, d.error)
