"""What an entitlement decision needs about one (account, product), read in one transaction as of
an instant: only the rows stamped on or before it (issue 13, item 7: a test clock replays any past
instant).

A current snapshot (read at or after every row it depends on) is refreshed from a previous one by
re-reading only the users whose ``change_seq`` stamp (migration ``core_0003``) moved since, plus
the few scalar parts (contract, installation, uninstall, quantity); its cost is what changed, not
the account's size (issue 12 item 7). A snapshot as of a past instant is always read whole.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import sqlalchemy as sa

from ...clock import start_of
from ...domain import calendar
from ...domain.entitlement import Layered, Snapshot
from ...domain.seats import SeatCount, seats_held
from ...domain.vocabulary import TicketKind
from ...errors import NotFound
from ..stamps import sqlite_change_stamp
from ..tables import (
    accounts,
    audit_log,
    contracts,
    installations,
    integration_users,
    seat_ledger,
    seats,
    tickets,
    uninstalls,
)
from .billing import SqlBillingStore
from .contracts import to_contract

__all__ = ["SqlSnapshotStore"]


def _latest(values: Sequence[dt.datetime | None]) -> dt.datetime | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


@attrs.frozen
class _Basis:
    """What refreshing a current snapshot needs (``Snapshot.basis``).

    :param cursor: the changes the snapshot's read could not see: users stamped at or above
        ``cursor[0]``, or with a stamp among ``cursor[1]`` (PostgreSQL: the transactions in
        progress then).
    :param by_id: user id -> email of every user in the snapshot (an email can change).
    :param users_created: the latest ``created_at`` of the account's users.
    :param grandfathered_at: the contract's, when the grandfathered ids were read: grandfathering
        writes its ledger rows once, in the transaction that sets it.
    """

    account_id: int
    product: str
    cursor: tuple[int, tuple[int, ...]]
    by_id: Layered[int, str]
    users_created: dt.datetime | None
    grandfathered_at: dt.datetime | None
    grandfathered_ids: frozenset[int]


class SqlSnapshotStore:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def load(
        self, account: str, product: str, at: dt.datetime, previous: Snapshot | None = None
    ) -> Snapshot:
        """The snapshot of (``account``, ``product``) as of ``at``: users created by then, the
        seats the ledger rows stamped by then hold, the contracted quantity then, an uninstall
        requested by then. Raises :class:`NotFound` for an unknown account.

        ``previous``, a snapshot of the same (account, product) read earlier by this store: when
        the new one is current too (``at`` after every row), only the users stamped since
        ``previous`` was read are re-read, and the rest is shared with it. The result equals a
        load without ``previous``."""
        conn = self.conn
        acct = conn.execute(
            sa.select(accounts.c.id, accounts.c.region).where(accounts.c.name == account)
        ).first()
        if acct is None:
            raise NotFound(
                "account", account, remedy="create_account", context={"account": account}
            )
        # First: whatever commits after this read stamps users this cursor finds next time.
        cursor = self._cursor(acct.id)
        row = conn.execute(
            sa.select(contracts).where(
                contracts.c.account_id == acct.id, contracts.c.product == product
            )
        ).first()
        contract = None if row is None else to_contract(row, account)
        basis = None if previous is None else previous.basis
        if not (
            isinstance(basis, _Basis) and basis.account_id == acct.id and basis.product == product
        ):
            previous = basis = None
        changed: list[Any] = []
        if basis is not None:
            changed, created = self._changed(acct.id, product, basis.cursor)
            users_created = _latest([basis.users_created, created])
        else:
            users_created = conn.execute(
                sa.select(sa.func.max(integration_users.c.created_at)).where(
                    integration_users.c.account_id == acct.id
                )
            ).scalar()
        version = -1 if row is None else int(row.entitlement_version)
        strict_version = -1 if row is None else int(row.strict_version)
        # Only a sync wrote since ``previous`` (its strict version is current: every other write
        # moves it, migration core_0004) and ``previous`` holds for ``at``: a sync changes users,
        # their seats and the seat ledger, nothing else a snapshot reads, so the rest is
        # ``previous``'s. A server refreshes a few times a second during a sync, while its
        # checks wait for the interpreter: half the statements of a whole read are spared.
        # ``kept``: that snapshot, whose other parts stand.
        kept = (
            previous
            if previous is not None
            and basis is not None
            and strict_version == previous.strict_version
            and previous.valid_at(at)
            else None
        )
        until: dt.datetime | None = None
        ledger = self._ledger_stamp(acct.id, product)
        if kept is not None:
            settled = _latest([kept.settled, users_created, ledger])
            until = kept.until
            enabled = kept.enabled
        else:
            settled = _latest(
                [users_created, ledger, self._settled(acct.id, account, product, row)]
            )
            if contract is not None and self._adjusted(contract.id):
                # A renewal adjustment changes the contracted quantity at the renewal, no write
                # needed: the snapshot holds until the next term starts.
                start, end = calendar.current_term(contract, at.date())
                settled = _latest([settled, start_of(start)])
                until = start_of(end)
            enabled = self._enabled(acct.id, product)
        if row is not None and row.created_at > at:
            contract = None  # the contract did not exist yet
        current = settled is None or at >= settled
        gf_at = None if row is None else row.grandfathered_at
        new_basis: _Basis | None = None
        users: Mapping[str, tuple[bool, bool]]
        if not current:
            users = self._users_as_of(acct.id, product, at)
            grandfathered = self._grandfathered_emails(acct.id, product, at)
            assigned = sum(1 for _, s in users.values() if s)
        elif previous is not None and basis is not None:
            users, by_id, assigned = _apply(previous, basis.by_id, changed)
            renamed = {r[0] for r in changed}
            if gf_at == basis.grandfathered_at:
                gf_ids = basis.grandfathered_ids
                grandfathered = (
                    previous.grandfathered
                    if renamed.isdisjoint(gf_ids)
                    else frozenset(by_id[i] for i in gf_ids if i in by_id)
                )
            else:
                gf_ids = self._grandfathered_ids(acct.id, product)
                grandfathered = frozenset(by_id[i] for i in gf_ids if i in by_id)
            new_basis = _Basis(acct.id, product, cursor, by_id, users_created, gf_at, gf_ids)
        else:
            users, by_id = self._users_now(acct.id, product)
            assigned = sum(1 for _, s in users.values() if s)
            gf_ids = self._grandfathered_ids(acct.id, product)
            grandfathered = frozenset(by_id[i] for i in gf_ids if i in by_id)
            new_basis = _Basis(acct.id, product, cursor, by_id, users_created, gf_at, gf_ids)
        contracted = 0
        in_overage = False
        effective = None
        if contract is not None:
            if kept is not None and kept.until is None:
                contracted = kept.contracted
            else:
                # Under a renewal adjustment without a quantity the renewal's quantity is the
                # seats held then: the seat ledger, which a sync writes (stamped at its start,
                # which may be before the renewal it commits after): read again.
                contracted = SqlBillingStore(conn).contracted_on(contract, at)
            effective = (
                kept.uninstall_effective
                if kept is not None
                else self._uninstall_effective(contract.id, at)
            )
            in_overage = SeatCount(contracted, assigned, contract.mode).in_overage
        return Snapshot(
            account=account,
            region=acct.region,
            version=version,
            strict_version=strict_version,
            has_contract=contract is not None,
            contracted=contracted,
            enabled=enabled,
            users=users,
            assigned=assigned,
            grandfathered=grandfathered,
            in_overage=in_overage,
            uninstall_effective=effective,
            as_of=at,
            settled=settled,
            until=until,
            basis=new_basis,
        )

    def _cursor(self, account_id: int) -> tuple[int, tuple[int, ...]]:
        """Where the changes this read cannot see will be stamped (see migration core_0003)."""
        if self.conn.dialect.name == "postgresql":
            xmax, xip = self.conn.exec_driver_sql(
                "SELECT pg_snapshot_xmax(s)::text::bigint, "
                "ARRAY(SELECT x::text::bigint FROM pg_snapshot_xip(s) AS x) "
                "FROM pg_current_snapshot() AS s"
            ).one()
            return int(xmax), tuple(sorted(int(x) for x in xip))
        return sqlite_change_stamp(self.conn, account_id), ()

    def _changed(
        self, account_id: int, product: str, cursor: tuple[int, tuple[int, ...]]
    ) -> tuple[list[Any], dt.datetime | None]:
        """(id, email, active, seated) of the users stamped where ``cursor`` says a change not
        seen then would be, as the driver's tuples (a sync's batch is a thousand of them, read
        while checks wait: no row objects), and the latest creation among them."""
        iu = integration_users
        low, pending = cursor
        since = iu.c.change_seq >= low
        if pending:
            since = sa.or_(since, iu.c.change_seq.in_(pending))
        where = (iu.c.account_id == account_id, since)
        result = self.conn.execute(
            sa.select(iu.c.id, iu.c.email, iu.c.active, _seated(account_id, product)).where(*where)
        )
        changed: list[Any] = []
        try:
            # A thousand rows per call: the driver turns rows into tuples in C, holding the
            # interpreter throughout (a fetchall of 14,000: 4 ms the worker's checks wait).
            while part := result.cursor.fetchmany(1000):
                changed += part
        finally:
            result.close()
        created = (
            self.conn.execute(sa.select(sa.func.max(iu.c.created_at)).where(*where)).scalar()
            if changed
            else None
        )
        return changed, created

    def _users_now(
        self, account_id: int, product: str
    ) -> tuple[Layered[str, tuple[bool, bool]], Layered[int, str]]:
        """email -> (active, seated) of every user of the account, from the seats table, and
        user id -> email."""
        iu = integration_users
        rows = self.conn.execute(
            sa.select(iu.c.id, iu.c.email, iu.c.active, _seated(account_id, product)).where(
                iu.c.account_id == account_id
            )
        ).all()
        users = Layered({r[1]: _state(r[2], r[3]) for r in rows})
        return users, Layered({r[0]: r[1] for r in rows})

    def _users_as_of(
        self, account_id: int, product: str, at: dt.datetime
    ) -> dict[str, tuple[bool, bool]]:
        """email -> (active, seated) of the users created by ``at``, seated by the ledger rows
        stamped by then."""
        conn = self.conn
        iu = integration_users
        ledger = conn.execute(
            sa.select(seat_ledger.c.at, seat_ledger.c.user_id, seat_ledger.c.action)
            .where(
                seat_ledger.c.account_id == account_id,
                seat_ledger.c.product == product,
                seat_ledger.c.at <= at,
            )
            .order_by(seat_ledger.c.id)
        ).all()
        held = seats_held([(r[0], r[1], r[2]) for r in ledger], at)
        rows = conn.execute(
            sa.select(iu.c.id, iu.c.email, iu.c.active).where(
                iu.c.account_id == account_id, iu.c.created_at <= at
            )
        )
        return {r.email: (bool(r.active), r.id in held) for r in rows}

    def _grandfathered_ids(self, account_id: int, product: str) -> frozenset[int]:
        return frozenset(
            r[0]
            for r in self.conn.execute(
                sa.select(seat_ledger.c.user_id).where(
                    seat_ledger.c.account_id == account_id,
                    seat_ledger.c.product == product,
                    seat_ledger.c.action == "grandfather",
                )
            )
        )

    def _grandfathered_emails(
        self, account_id: int, product: str, at: dt.datetime
    ) -> frozenset[str]:
        return frozenset(
            r[0]
            for r in self.conn.execute(
                sa.select(integration_users.c.email)
                .join(seat_ledger, seat_ledger.c.user_id == integration_users.c.id)
                .where(
                    seat_ledger.c.account_id == account_id,
                    seat_ledger.c.product == product,
                    seat_ledger.c.action == "grandfather",
                    seat_ledger.c.at <= at,
                )
            )
        )

    def _enabled(self, account_id: int, product: str) -> bool:
        enabled = self.conn.execute(
            sa.select(installations.c.enabled).where(
                installations.c.account_id == account_id, installations.c.product == product
            )
        ).scalar()
        return enabled is None or bool(enabled)  # no installation row: nothing disabled it

    def _ledger_stamp(self, account_id: int, product: str) -> dt.datetime | None:
        """The latest seat ledger row's instant: the one stamp a sync's writes move."""
        stamp: dt.datetime | None = self.conn.execute(
            sa.select(sa.func.max(seat_ledger.c.at)).where(
                seat_ledger.c.account_id == account_id, seat_ledger.c.product == product
            )
        ).scalar()
        return stamp

    def _settled(
        self, account_id: int, account: str, product: str, contract: Any
    ) -> dt.datetime | None:
        """The latest instant any row the snapshot depends on is stamped with, but the users'
        creation (the caller's: a refresh knows it from the users changed since) and the seat
        ledger's (:meth:`_ledger_stamp`)."""
        conn = self.conn
        stamps = [
            conn.execute(
                sa.select(sa.func.max(audit_log.c.at)).where(
                    audit_log.c.account == account, audit_log.c.action == "contract.quantity"
                )
            ).scalar(),
        ]
        if contract is not None:
            cid = contract.id
            stamps.append(contract.created_at)
            stamps.extend(
                conn.execute(
                    sa.select(
                        sa.func.max(uninstalls.c.requested_at),
                        sa.func.max(uninstalls.c.reinstalled_at),
                    ).where(uninstalls.c.contract_id == cid)
                ).one()
            )
            stamps.extend(
                conn.execute(
                    sa.select(
                        sa.func.max(tickets.c.opened_at),
                        sa.func.max(tickets.c.withdrawn_at),
                        sa.func.max(tickets.c.resolved_at),
                    ).where(tickets.c.contract_id == cid)
                ).one()
            )
        return _latest(stamps)

    def _adjusted(self, contract_id: int) -> bool:
        return (
            self.conn.execute(
                sa.select(tickets.c.id).where(
                    tickets.c.contract_id == contract_id,
                    tickets.c.kind == TicketKind.RENEWAL_ADJUSTMENT,
                )
            ).first()
            is not None
        )

    def _uninstall_effective(self, contract_id: int, at: dt.datetime) -> dt.date | None:
        """The effective day of the uninstall in force at ``at``: requested by then, and no
        install came after it by then."""
        row = self.conn.execute(
            sa.select(uninstalls.c.effective)
            .where(
                uninstalls.c.contract_id == contract_id,
                uninstalls.c.requested_at <= at,
                sa.or_(uninstalls.c.reinstalled_at.is_(None), uninstalls.c.reinstalled_at > at),
            )
            .order_by(uninstalls.c.id.desc())
            .limit(1)
        ).first()
        return None if row is None else row[0]

    def version(self, account: str, product: str) -> int:
        version = self.conn.execute(
            sa.select(contracts.c.entitlement_version)
            .join(accounts, accounts.c.id == contracts.c.account_id)
            .where(accounts.c.name == account, contracts.c.product == product)
        ).scalar()
        return -1 if version is None else int(version)


def _seated(account_id: int, product: str) -> Any:
    return (
        sa.exists()
        .where(
            seats.c.account_id == account_id,
            seats.c.product == product,
            seats.c.user_id == integration_users.c.id,
        )
        .label("seated")
    )


#: (active, seated) by ``[active][seated]``: the users' states, shared. A refresh stores one of
#: these four per changed user instead of a new tuple each, so what it allocates while checks
#: wait is the changed rows alone, and a snapshot's users are no objects the collector walks.
_STATES = (((False, False), (False, True)), ((True, False), (True, True)))


def _state(active: Any, seated: Any) -> tuple[bool, bool]:
    return _STATES[bool(active)][bool(seated)]


def _apply(
    previous: Snapshot, by_id: Layered[int, str], changed: Sequence[Any]
) -> tuple[Layered[str, tuple[bool, bool]], Layered[int, str], int]:
    """``previous``'s users with the ``changed`` rows (id, email, active, seated) applied: the
    users, id -> email, and the seats held. A server's worker runs it for every user a sync
    changed while its checks wait for the interpreter: comprehensions and bulk lookups, no call
    per row."""
    if not changed:
        users = previous.users
        assert isinstance(users, Layered)
        return users, by_id, previous.assigned
    old_users = previous.users
    assert isinstance(old_users, Layered)
    ids = [row[0] for row in changed]
    emails = [row[1] for row in changed]
    # The users known before: their seats leave the count, and an email changed is no user now.
    known = [
        (old, email)
        for old, email in zip(by_id.get_many(ids), emails, strict=True)
        if old is not None
    ]
    was = old_users.get_many([old for old, _ in known], (False, False))
    gone = [old for old, email in known if old != email]
    table = _STATES  # the driver's booleans (SQLite's 0 and 1) index it
    states = [table[active][seated] for _, _, active, seated in changed]
    assigned = previous.assigned - sum(s[1] for s in was) + sum(s[1] for s in states)
    return (
        old_users.updated(zip(emails, states, strict=True), remove=gone),
        by_id.updated(zip(ids, emails, strict=True)),
        assigned,
    )
