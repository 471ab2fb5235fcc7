"""What an entitlement decision needs about one (account, product), read in one transaction as of
an instant: only the rows stamped on or before it (issue 13, item 7: a test clock replays any past
instant)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from ...clock import start_of
from ...domain import calendar
from ...domain.entitlement import Snapshot
from ...domain.seats import SeatCount, seats_held
from ...domain.vocabulary import TicketKind
from ...errors import NotFound
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


class SqlSnapshotStore:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def load(self, account: str, product: str, at: dt.datetime) -> Snapshot:
        """The snapshot of (``account``, ``product``) as of ``at``: users created by then, the
        seats the ledger rows stamped by then hold, the contracted quantity then, an uninstall
        requested by then. Raises :class:`NotFound` for an unknown account."""
        conn = self.conn
        acct = conn.execute(
            sa.select(accounts.c.id, accounts.c.region).where(accounts.c.name == account)
        ).first()
        if acct is None:
            raise NotFound(
                "account", account, remedy="create_account", context={"account": account}
            )
        row = conn.execute(
            sa.select(contracts).where(
                contracts.c.account_id == acct.id, contracts.c.product == product
            )
        ).first()
        contract = None if row is None else to_contract(row, account)
        settled = self._settled(acct.id, account, product, None if row is None else row)
        version = -1 if row is None else int(row.entitlement_version)
        until: dt.datetime | None = None
        if contract is not None and self._adjusted(contract.id):
            # A renewal adjustment changes the contracted quantity at the renewal, no write
            # needed: the snapshot holds until the next term starts.
            start, end = calendar.current_term(contract, at.date())
            settled = _latest([settled, start_of(start)])
            until = start_of(end)
        if row is not None and row.created_at > at:
            contract = None  # the contract did not exist yet
        enabled = conn.execute(
            sa.select(installations.c.enabled).where(
                installations.c.account_id == acct.id, installations.c.product == product
            )
        ).scalar()
        users = self._users(acct.id, product, at, current=settled is None or at >= settled)
        grandfathered = frozenset(
            r[0]
            for r in conn.execute(
                sa.select(integration_users.c.email)
                .join(seat_ledger, seat_ledger.c.user_id == integration_users.c.id)
                .where(
                    seat_ledger.c.account_id == acct.id,
                    seat_ledger.c.product == product,
                    seat_ledger.c.action == "grandfather",
                    seat_ledger.c.at <= at,
                )
            )
        )
        assigned = sum(1 for _, s in users.values() if s)
        contracted = 0
        in_overage = False
        effective = None
        if contract is not None:
            billing = SqlBillingStore(conn)
            contracted = billing.contracted_on(contract, at)
            in_overage = SeatCount(contracted, assigned, contract.mode).in_overage
            effective = self._uninstall_effective(contract.id, at)
        return Snapshot(
            account=account,
            region=acct.region,
            version=version,
            has_contract=contract is not None,
            contracted=contracted,
            enabled=enabled is None or bool(enabled),  # no installation row: nothing disabled it
            users=users,
            assigned=assigned,
            grandfathered=grandfathered,
            in_overage=in_overage,
            uninstall_effective=effective,
            as_of=at,
            settled=settled,
            until=until,
        )

    def _users(
        self, account_id: int, product: str, at: dt.datetime, *, current: bool
    ) -> dict[str, tuple[bool, bool]]:
        """email -> (active, seated) of the users created by ``at``. When ``at`` is after every
        row (``current``), the seats table is the state; else the ledger rows stamped by then."""
        conn = self.conn
        iu = integration_users
        if current:
            seated = sa.exists().where(
                seats.c.account_id == account_id,
                seats.c.product == product,
                seats.c.user_id == iu.c.id,
            )
            rows = conn.execute(
                sa.select(iu.c.email, iu.c.active, seated.label("seated")).where(
                    iu.c.account_id == account_id
                )
            )
            return {r.email: (bool(r.active), bool(r.seated)) for r in rows}
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

    def _settled(
        self, account_id: int, account: str, product: str, contract: Any
    ) -> dt.datetime | None:
        """The latest instant any row the snapshot depends on is stamped with."""
        conn = self.conn
        stamps = [
            conn.execute(
                sa.select(sa.func.max(seat_ledger.c.at)).where(
                    seat_ledger.c.account_id == account_id, seat_ledger.c.product == product
                )
            ).scalar(),
            conn.execute(
                sa.select(sa.func.max(integration_users.c.created_at)).where(
                    integration_users.c.account_id == account_id
                )
            ).scalar(),
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
