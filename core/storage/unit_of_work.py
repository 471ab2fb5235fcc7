"""The unit of work over SQL: one transaction, a repository per aggregate, and the event outbox.

:class:`SqlUnitOfWorkFactory` implements :class:`~seatgate.core.services.ports.UnitOfWorkFactory`
on a :class:`~.db.Database`: ``write()`` is a write transaction (SQLite ``BEGIN IMMEDIATE``), and
the events recorded in it are inserted into ``event_outbox`` just before it commits, so an event
exists exactly when the change it reports does.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from functools import cached_property
from typing import TYPE_CHECKING

import sqlalchemy as sa

from .bulk import chunks
from .db import Database
from .tables import event_outbox

if TYPE_CHECKING:
    from ..domain.events import Event
    from .repositories.accounts import SqlAccountStore
    from .repositories.audit import SqlAuditLog
    from .repositories.billing import SqlBillingStore
    from .repositories.contracts import SqlContractStore
    from .repositories.installs import SqlInstallStore
    from .repositories.listings import SqlListings
    from .repositories.orders import SqlAddOnStore, SqlInstallLinkStore, SqlWebhookStore
    from .repositories.seats import SqlSeatStore
    from .repositories.snapshots import SqlSnapshotStore
    from .repositories.sync import SqlSyncStore
    from .repositories.tokens import SqlTokenStore

__all__ = ["SqlUnitOfWork", "SqlUnitOfWorkFactory"]


class SqlUnitOfWork:
    """Repositories over one connection in one transaction, each built (and its module imported) on
    first use: a check touches one, and ``seatgate check`` never imports the others (issue 10)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.connection = conn
        self.events: list[Event] = []

    def record(self, event: Event) -> None:
        self.events.append(event)

    @cached_property
    def accounts(self) -> SqlAccountStore:
        from .repositories.accounts import SqlAccountStore

        return SqlAccountStore(self.connection)

    @cached_property
    def contracts(self) -> SqlContractStore:
        from .repositories.contracts import SqlContractStore

        return SqlContractStore(self.connection)

    @cached_property
    def seats(self) -> SqlSeatStore:
        from .repositories.seats import SqlSeatStore

        return SqlSeatStore(self.connection)

    @cached_property
    def audit(self) -> SqlAuditLog:
        from .repositories.audit import SqlAuditLog

        return SqlAuditLog(self.connection)

    @cached_property
    def snapshots(self) -> SqlSnapshotStore:
        from .repositories.snapshots import SqlSnapshotStore

        return SqlSnapshotStore(self.connection)

    @cached_property
    def installs(self) -> SqlInstallStore:
        from .repositories.installs import SqlInstallStore

        return SqlInstallStore(self.connection)

    @cached_property
    def billing(self) -> SqlBillingStore:
        from .repositories.billing import SqlBillingStore

        return SqlBillingStore(self.connection)

    @cached_property
    def tokens(self) -> SqlTokenStore:
        from .repositories.tokens import SqlTokenStore

        return SqlTokenStore(self.connection)

    @cached_property
    def listings(self) -> SqlListings:
        from .repositories.listings import SqlListings

        return SqlListings(self.connection)

    @cached_property
    def links(self) -> SqlInstallLinkStore:
        from .repositories.orders import SqlInstallLinkStore

        return SqlInstallLinkStore(self.connection)

    @cached_property
    def addons(self) -> SqlAddOnStore:
        from .repositories.orders import SqlAddOnStore

        return SqlAddOnStore(self.connection)

    @cached_property
    def webhooks(self) -> SqlWebhookStore:
        from .repositories.orders import SqlWebhookStore

        return SqlWebhookStore(self.connection)

    @cached_property
    def sync(self) -> SqlSyncStore:
        from .repositories.sync import SqlSyncStore

        return SqlSyncStore(self.connection)

    def flush_events(self) -> None:
        """Write the recorded events to the outbox (in this transaction)."""
        if self.events:
            self.connection.execute(
                event_outbox.insert(),
                [
                    {
                        "event_id": e.id,
                        "kind": e.kind,
                        "account": e.account,
                        "at": e.at,
                        "payload": e.as_dict(),
                    }
                    for e in self.events
                ],
            )


class SqlUnitOfWorkFactory:
    """Units of work on one database."""

    def __init__(self, database: Database) -> None:
        self.database = database
        # Committed write transactions of this process: an in-process cache (the entitlement
        # snapshots) whose generation is behind re-validates at once.
        self.generation = 0

    def __repr__(self) -> str:
        return f"SqlUnitOfWorkFactory({self.database!r})"

    @property
    def one_writer(self) -> bool:
        """SQLite runs one write transaction at a time; PostgreSQL's writers wait only for the
        writers of the same rows."""
        return self.database.is_sqlite

    @contextlib.contextmanager
    def write(self, *, audit_only: bool = False, lagged: bool = False) -> Iterator[SqlUnitOfWork]:
        try:
            with self.database.write() as conn:
                uow = SqlUnitOfWork(conn)
                yield uow
                uow.flush_events()
        finally:
            if not (audit_only or lagged):
                self.generation += 1

    @contextlib.contextmanager
    def read(self) -> Iterator[SqlUnitOfWork]:
        with self.database.read() as conn:
            yield SqlUnitOfWork(conn)

    def pending_events(self, limit: int = 1000) -> list[tuple[int, Event]]:
        from ..domain.events import from_dict  # 16 attrs classes: not on a check's path

        with self.database.read() as conn:
            rows = conn.execute(
                sa.select(event_outbox.c.id, event_outbox.c.payload)
                .where(event_outbox.c.delivered_at.is_(None))
                .order_by(event_outbox.c.id)
                .limit(limit)
            ).all()
        return [(r.id, from_dict(r.payload)) for r in rows]

    def discard_connections(self) -> None:
        self.database.discard_connections()

    def mark_delivered(self, outbox_ids: list[int], at: dt.datetime) -> None:
        if not outbox_ids:
            return
        with self.database.write() as conn:
            for chunk in chunks(outbox_ids):
                conn.execute(
                    event_outbox.update()
                    .where(event_outbox.c.id.in_(chunk))
                    .values(delivered_at=at)
                )
