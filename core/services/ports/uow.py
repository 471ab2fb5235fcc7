"""The unit of work: one transaction over every store, and the events it records.

``with ports.db.write() as uow:`` opens a write transaction; leaving the block without an exception
commits it (with the events recorded by :meth:`UnitOfWork.record`, written to the outbox in the
same transaction), an exception rolls everything back. ``read()`` opens a read-only one. The
services' :func:`~seatgate.core.services.base.transaction` adds what every write needs: the refused
action's audit row survives the rollback, and events reach the listeners after the commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

import attrs

from ...clock import Clock
from ...domain.catalog import Catalog
from ...domain.timeline import Timeline
from .adapters import AdapterDirectory
from .publisher import Publisher

if TYPE_CHECKING:
    from ...domain.events import Event

    # Only named in annotations: a check, which touches one store, imports none of the others'
    # modules (issue 10, a fast CLI).
    from .billing import BillingStore
    from .listings import Listings
    from .orders import AddOnStore, InstallLinkStore, OrdersIO, WebhookStore
    from .stores import (
        AccountStore,
        AuditLog,
        ContractStore,
        InstallStore,
        SeatStore,
        SnapshotStore,
    )
    from .sync import SyncStore
    from .tokens import TokenStore

__all__ = ["Ports", "UnitOfWork", "UnitOfWorkFactory"]


class UnitOfWork(Protocol):
    """The stores of one transaction, and the events it will publish once committed."""

    @property
    def accounts(self) -> AccountStore: ...

    @property
    def contracts(self) -> ContractStore: ...

    @property
    def seats(self) -> SeatStore: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def snapshots(self) -> SnapshotStore: ...

    @property
    def installs(self) -> InstallStore: ...

    @property
    def billing(self) -> BillingStore: ...

    @property
    def tokens(self) -> TokenStore: ...

    @property
    def listings(self) -> Listings: ...

    @property
    def links(self) -> InstallLinkStore: ...

    @property
    def addons(self) -> AddOnStore: ...

    @property
    def webhooks(self) -> WebhookStore: ...

    @property
    def sync(self) -> SyncStore: ...

    @property
    def events(self) -> list[Event]: ...

    def record(self, event: Event) -> None:
        """Publish ``event`` once this unit of work commits."""
        ...


class UnitOfWorkFactory(Protocol):
    # Bumped after every write transaction of this process (committed or not): in-process caches
    # compare it to know a write happened since they last looked.
    generation: int

    @property
    def one_writer(self) -> bool:
        """Whether the database runs one write transaction at a time (SQLite: every other
        writer waits for the one running), which bounds how long a sync's batch may last
        (:func:`~seatgate.core.services.batching.sizer`)."""
        ...

    def write(
        self, *, audit_only: bool = False, lagged: bool = False
    ) -> AbstractContextManager[UnitOfWork]:
        """A write transaction. ``audit_only``: it writes audit rows and nothing else, which no
        cached decision depends on, so :attr:`generation` does not move (a denied check's audit
        row must not make every cached snapshot of the process re-validate). ``lagged``: a
        sync's batch, which this process's cached decisions may follow within their ``max_age``
        as they follow another process's (:attr:`generation` does not move); the run's last
        transaction moves it, so the sync's changes show at once when it returns."""
        ...

    def read(self) -> AbstractContextManager[UnitOfWork]: ...

    def pending_events(self, limit: int = 1000) -> list[tuple[int, Event]]:
        """Events committed but not yet delivered (outbox id, event), oldest first."""
        ...

    def mark_delivered(self, outbox_ids: list[int], at: dt.datetime) -> None: ...

    def discard_connections(self) -> None:
        """Close the connections kept for reuse; those in use are closed when given back, and the
        next unit of work connects anew. For a write after a stop that may have cut a driver's
        call short (:mod:`~seatgate.core.services.stopping`): the connection it used may be
        broken in a way no check on checkout sees."""
        ...


def _no_orders_io() -> OrdersIO:
    from .orders import OrdersIO

    return OrdersIO()


@attrs.frozen
class Ports:
    """Everything a service may use. Built by :mod:`seatgate.core.bootstrap`."""

    db: UnitOfWorkFactory
    clock: Clock
    timeline: Timeline
    catalog: Callable[[], Catalog]  # the catalog in force (the file may be named at run time)
    publisher: Publisher
    adapters: AdapterDirectory
    # The server secret, SMTP and HTTP of issue 18 (none configured by default).
    orders: OrdersIO = attrs.field(factory=_no_orders_io)

    def now(self) -> dt.datetime:
        return self.clock.now()
