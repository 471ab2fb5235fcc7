"""The fleet's storage (issue 17): the task ledger (``fleet_tasks``, ``fleet_skips``) and the
connector locks.

:class:`SqlFleetLedger` implements :class:`~seatgate.core.services.ports.fleet.FleetLedger`;
:class:`ConnectorLocks` implements the port of the same name:

- on PostgreSQL, ``pg_try_advisory_lock`` on a dedicated connection, held for the run. The lock is
  session-level, so it ends with the session: a worker killed with SIGKILL closes its socket, the
  server ends the session and the lock is free for the redelivered task. The key is 64 bits of a
  BLAKE2b digest of ``database/schema/account/product``, so two seatgate databases (or schemas) on
  one server never share a lock;
- on SQLite, a lock per connector in this process: SQLite is a one-machine store, where the CLI's
  ``sync --due`` and one worker are the expected users. A fleet runs on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from ..services.ports.fleet import FLEET_STATES, FleetSkip, FleetStatus, FleetTask
from .bulk import chunks
from .db import Database
from .tables import accounts, fleet_skips, fleet_tasks

__all__ = ["ConnectorLocks", "SqlFleetLedger", "lock_key"]


def lock_key(scope: str, account: str, product: str) -> int:
    """The advisory lock key of a connector: a signed 64-bit integer (PostgreSQL's ``bigint``)
    from ``scope`` (database and schema), the account's name and the product."""
    digest = hashlib.blake2b(f"{scope}\x1f{account}\x1f{product}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


class ConnectorLocks:
    """At most one run per connector (see the module's docstring)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._scope: str | None = None
        self._local: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def __repr__(self) -> str:
        return f"ConnectorLocks({self.database!r})"

    @property
    def across_processes(self) -> bool:
        return not self.database.is_sqlite

    @contextlib.contextmanager
    def hold(self, account: str, product: str) -> Iterator[bool]:
        if self.database.is_sqlite:
            with self._guard:
                lock = self._local.setdefault((account, product), threading.Lock())
            got = lock.acquire(blocking=False)
            try:
                yield got
            finally:
                if got:
                    lock.release()
            return
        # Autocommit: a session lock outlives any transaction, so none is opened (no BEGIN and
        # COMMIT round trips around the lock and the unlock of every run).
        conn = self.database.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            key = lock_key(self._scope_of(conn), account, product)
            got = bool(conn.execute(sa.select(sa.func.pg_try_advisory_lock(key))).scalar())
            try:
                yield got
            finally:
                if got:
                    self._release(conn, key)
        finally:
            conn.close()

    @staticmethod
    def _release(conn: sa.Connection, key: int) -> None:
        try:
            conn.execute(sa.select(sa.func.pg_advisory_unlock(key)))
        except Exception:  # the session is gone (server restart, terminated): so is its lock
            conn.invalidate()

    def _scope_of(self, conn: sa.Connection) -> str:
        if self._scope is None:
            row = conn.execute(sa.select(sa.func.current_database(), sa.func.current_schema()))
            database, schema = row.one()
            self._scope = f"{database}/{schema}"
        return self._scope


def _task(row: Any) -> FleetTask:
    return FleetTask(
        id=row.id,
        account=row.account,
        product=row.product,
        state=row.state,
        outcome=row.outcome,
        task_id=row.task_id,
        enqueued_at=row.enqueued_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        worker=row.worker,
        deliveries=row.deliveries,
        run_id=row.run_id,
        pulled=row.pulled,
        message=row.message,
    )


_TASK_COLUMNS = (*fleet_tasks.c, accounts.c.name.label("account"))
_FROM_TASKS = fleet_tasks.join(accounts, accounts.c.id == fleet_tasks.c.account_id)


class SqlFleetLedger:
    """The fleet's ledger on SQL (see :class:`~seatgate.core.services.ports.fleet.FleetLedger`)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def __repr__(self) -> str:
        return f"SqlFleetLedger({self.database!r})"

    def outstanding(self, since: dt.datetime) -> set[tuple[str, str]]:
        with self.database.read() as conn:
            rows = conn.execute(
                sa.select(accounts.c.name, fleet_tasks.c.product)
                .select_from(_FROM_TASKS)
                .where(
                    fleet_tasks.c.state.in_(("queued", "running")),
                    fleet_tasks.c.enqueued_at >= since,
                )
                .distinct()
            )
            return {(r[0], r[1]) for r in rows}

    def enqueue(self, connectors: Sequence[tuple[str, str, str]], at: dt.datetime) -> list[int]:
        names = sorted({account for account, _, _ in connectors})
        with self.database.write() as conn:
            ids: dict[str, int] = {}
            for chunk in chunks(names):
                found = conn.execute(
                    sa.select(accounts.c.name, accounts.c.id).where(accounts.c.name.in_(chunk))
                )
                ids.update((name, account_id) for name, account_id in found)
            rows = [
                {
                    "account_id": ids[account],
                    "product": product,
                    "state": "queued",
                    "outcome": "",
                    "task_id": message[:64],
                    "enqueued_at": at,
                    "worker": "",
                    "deliveries": 0,
                    "pulled": 0,
                    "message": "",
                }
                for account, product, message in connectors
            ]
            inserted = conn.execute(
                fleet_tasks.insert().returning(fleet_tasks.c.id, sort_by_parameter_order=True),
                rows,
            )
            return [int(i) for i in inserted.scalars()]

    def get(self, task: int) -> FleetTask | None:
        with self.database.read() as conn:
            row = conn.execute(
                sa.select(*_TASK_COLUMNS).select_from(_FROM_TASKS).where(fleet_tasks.c.id == task)
            ).first()
        return None if row is None else _task(row)

    def start(self, task: int, at: dt.datetime, worker: str) -> bool:
        # One statement decides and marks: no read of the state before (a round trip per run).
        with self.database.write() as conn:
            started = conn.execute(
                fleet_tasks.update()
                .where(fleet_tasks.c.id == task, fleet_tasks.c.state.in_(("queued", "running")))
                .values(
                    state="running",
                    started_at=at,
                    worker=worker[:200],
                    deliveries=fleet_tasks.c.deliveries + 1,
                )
            )
            return bool(started.rowcount)

    def finish(
        self,
        task: int,
        at: dt.datetime,
        *,
        outcome: str,
        run_id: int | None,
        pulled: int,
        message: str,
    ) -> None:
        with self.database.write() as conn:
            conn.execute(
                fleet_tasks.update()
                .where(fleet_tasks.c.id == task)
                .values(
                    state="done",
                    outcome=outcome[:12],
                    finished_at=at,
                    run_id=run_id,
                    pulled=pulled,
                    message=message[:500],
                )
            )

    def skip(self, task: int, at: dt.datetime, worker: str, reason: str) -> None:
        with self.database.write() as conn:
            row = conn.execute(
                sa.select(fleet_tasks.c.account_id, fleet_tasks.c.product).where(
                    fleet_tasks.c.id == task
                )
            ).one()
            conn.execute(
                fleet_skips.insert().values(
                    task=task,
                    account_id=row.account_id,
                    product=row.product,
                    at=at,
                    worker=worker[:200],
                    reason=reason[:200],
                )
            )
            conn.execute(
                fleet_tasks.update()
                .where(fleet_tasks.c.id == task, fleet_tasks.c.state == "queued")
                .values(state="skipped", finished_at=at, worker=worker[:200], message=reason)
            )

    def status(self, *, now: dt.datetime, stale_before: dt.datetime, limit: int) -> FleetStatus:
        t = fleet_tasks
        base = sa.select(*_TASK_COLUMNS).select_from(_FROM_TASKS)
        with self.database.read() as conn:

            def tasks(*where: Any, newest_first: bool = True) -> list[FleetTask]:
                order = t.c.id.desc() if newest_first else t.c.id
                rows = conn.execute(base.where(*where).order_by(order).limit(limit))
                return [_task(r) for r in rows]

            fresh = t.c.enqueued_at >= stale_before
            queued = tasks(t.c.state == "queued", fresh, newest_first=False)
            running = tasks(t.c.state == "running", fresh, newest_first=False)
            stale = tasks(t.c.state.in_(("queued", "running")), t.c.enqueued_at < stale_before)
            finished = tasks(t.c.state == "done")
            skips = [
                FleetSkip(r.id, r.task, r.account, r.product, r.at, r.worker, r.reason)
                for r in conn.execute(
                    sa.select(*fleet_skips.c, accounts.c.name.label("account"))
                    .select_from(
                        fleet_skips.join(accounts, accounts.c.id == fleet_skips.c.account_id)
                    )
                    .order_by(fleet_skips.c.id.desc())
                    .limit(limit)
                )
            ]
            counts = dict.fromkeys(FLEET_STATES, 0)
            for state, n in conn.execute(
                sa.select(t.c.state, sa.func.count()).group_by(t.c.state)
            ).all():
                counts[state] = int(n)
            counts["skipped_deliveries"] = int(
                conn.execute(sa.select(sa.func.count()).select_from(fleet_skips)).scalar_one()
            )
        return FleetStatus(queued, running, finished, skips, stale, counts)
