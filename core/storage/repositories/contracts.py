"""Contracts, in SQL: one per account and product."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from ...domain.model import Account, Contract
from ..tables import accounts, contracts

__all__ = ["SqlContractStore", "bumped", "to_contract"]


def to_contract(row: Any, account: str) -> Contract:
    return Contract(
        id=row.id,
        account=account,
        product=row.product,
        plan=row.plan,
        quantity=row.quantity,
        unit_price=row.unit_price,
        currency=row.currency,
        frequency=row.frequency,
        term_start=row.term_start,
        term_months=row.term_months,
        channel=row.channel,
        mode=row.mode,
        grandfathered_at=row.grandfathered_at,
        charge_model=row.charge_model,
    )


def bumped(strict: bool) -> dict[str, Any]:
    """The values of a contract update that bumps its versions: ``entitlement_version`` always,
    ``strict_version`` too for a change a server's checks must see at once (not a sync's)."""
    values: dict[str, Any] = {"entitlement_version": contracts.c.entitlement_version + 1}
    if strict:
        values["strict_version"] = contracts.c.strict_version + 1
    return values


class SqlContractStore:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def find(
        self,
        account: Account,
        product: str,
        *,
        lock: bool = False,
        created_by: dt.datetime | None = None,
    ) -> Contract | None:
        """The account's contract for ``product``; with ``created_by``, only if it existed then.
        Its ``quantity`` is the latest one written (a renewal adjustment is computed:
        ``SqlBillingStore.contracted_on``)."""
        query = sa.select(contracts).where(
            contracts.c.account_id == account.id, contracts.c.product == product
        )
        if created_by is not None:
            query = query.where(contracts.c.created_at <= created_by)
        if lock:
            # PostgreSQL: the row lock serialises seat changes; on SQLite the write
            # transaction (BEGIN IMMEDIATE) already holds the database.
            query = query.with_for_update()
        row = self.conn.execute(query).first()
        return None if row is None else to_contract(row, account.name)

    def find_locked(self, account: Account, product: str) -> tuple[Contract, int] | None:
        """:meth:`find` with ``lock``, and the contract's ``entitlement_version`` read in the
        same statement, under the lock."""
        row = self.conn.execute(
            sa.select(contracts)
            .where(contracts.c.account_id == account.id, contracts.c.product == product)
            .with_for_update()
        ).first()
        return (
            None if row is None else (to_contract(row, account.name), int(row.entitlement_version))
        )

    def exists(self, account_id: int, product: str) -> bool:
        return (
            self.conn.execute(
                sa.select(contracts.c.id).where(
                    contracts.c.account_id == account_id, contracts.c.product == product
                )
            ).first()
            is not None
        )

    def create(self, account: Account, values: Mapping[str, Any]) -> Contract:
        self.conn.execute(
            contracts.insert().values(
                account_id=account.id, entitlement_version=0, strict_version=0, **values
            )
        )
        made = self.find(account, str(values["product"]))
        assert made is not None
        return made

    def set_quantity(self, contract_id: int, quantity: int) -> None:
        self.conn.execute(
            contracts.update().where(contracts.c.id == contract_id).values(quantity=quantity)
        )

    def bump_version(self, contract_id: int, *, strict: bool = True) -> None:
        self.conn.execute(
            contracts.update().where(contracts.c.id == contract_id).values(**bumped(strict))
        )

    def mark_grandfathered(self, contract_id: int, at: dt.datetime) -> None:
        self.conn.execute(
            contracts.update().where(contracts.c.id == contract_id).values(grandfathered_at=at)
        )

    def list(
        self, account: str | None = None, *, created_by: dt.datetime | None = None
    ) -> list[Contract]:
        """Contracts (of one account, or all); with ``created_by``, only those that existed
        then."""
        query = sa.select(contracts, accounts.c.name.label("account_name")).join(
            accounts, accounts.c.id == contracts.c.account_id
        )
        if account is not None:
            query = query.where(accounts.c.name == account)
        if created_by is not None:
            query = query.where(contracts.c.created_at <= created_by)
        return [
            to_contract(r, r.account_name)
            for r in self.conn.execute(query.order_by(contracts.c.id))
        ]
