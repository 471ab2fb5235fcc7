"""Contracts: what an account bought for one product (one contract per account and product)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa

from . import audit
from .accounts import get_account
from .catalog import check_contract_plan
from .domain import CHANNELS, FREQUENCY_MONTHS, SEAT_MODES, Account, Contract, check_choice
from .errors import BadInput, Conflict, NotFound
from .storage.tables import accounts, contracts


def parse_money(text: str | Decimal, what: str = "amount") -> Decimal:
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise BadInput(what, text, "a decimal amount such as 12.50") from None
    if not value.is_finite() or value < 0 or value.as_tuple().exponent < -4:  # type: ignore[operator]
        raise BadInput(what, text, "a non-negative amount with at most 4 decimals")
    return value


def create_contract(
    conn: sa.Connection,
    account: str,
    product: str,
    *,
    products: tuple[str, ...] | frozenset[str],
    seats: int,
    plan: str,
    frequency: str,
    start: dt.date,
    months: int,
    unit_price: Decimal,
    at: dt.datetime,
    channel: str = "order_form",
    mode: str = "hard_cap",
    currency: str = "USD",
    actor: str | None = None,
) -> Contract:
    acct = get_account(conn, account)
    check_choice("product", product, tuple(products))
    if seats <= 0:
        raise BadInput("seats", seats, "a whole number of seats above 0")
    if months <= 0:
        raise BadInput(
            "months", months, "a term of 1 month or more (the term must end after it starts)"
        )
    check_choice("frequency", frequency, tuple(FREQUENCY_MONTHS))
    check_choice("channel", channel, CHANNELS)
    check_choice("mode", mode, SEAT_MODES)
    if not plan:
        raise BadInput("plan", plan, "a plan name")
    check_contract_plan(product, plan, at.date())  # billing's catalog: unknown plan or add-on
    if len(currency) != 3 or not currency.isalpha():
        raise BadInput("currency", currency, "an ISO 4217 code such as USD")
    if conn.execute(
        sa.select(contracts.c.id).where(
            contracts.c.account_id == acct.id, contracts.c.product == product
        )
    ).first():
        raise Conflict(f"account {account!r} already has a {product} contract")
    values = dict(
        account_id=acct.id,
        product=product,
        plan=plan,
        quantity=seats,
        unit_price=unit_price,
        currency=currency.upper(),
        frequency=frequency,
        term_start=start,
        term_months=months,
        channel=channel,
        mode=mode,
        entitlement_version=0,
        created_at=at,
    )
    conn.execute(contracts.insert().values(**values))
    audit.record(
        conn,
        at=at,
        action="contract.create",
        outcome="ok",
        account=account,
        actor=actor,
        detail={
            "product": product,
            "seats": seats,
            "plan": plan,
            "mode": mode,
            "frequency": frequency,
            "start": start.isoformat(),
            "months": months,
            "unit_price": str(unit_price),
            "channel": channel,
        },
    )
    return get_contract(conn, acct, product)


def _to_contract(row: sa.Row, account: str) -> Contract:
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
    )


def find_contract(
    conn: sa.Connection, acct: Account, product: str, *, lock: bool = False
) -> Contract | None:
    """The account's contract for ``product``; ``lock`` takes the row lock that serialises seat
    changes on PostgreSQL (on SQLite the write transaction already holds the database lock)."""
    query = sa.select(contracts).where(
        contracts.c.account_id == acct.id, contracts.c.product == product
    )
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return None if row is None else _to_contract(row, acct.name)


def get_contract(
    conn: sa.Connection, acct: Account, product: str, *, lock: bool = False
) -> Contract:
    contract = find_contract(conn, acct, product, lock=lock)
    if contract is None:
        raise NotFound(
            f"{product} contract of account",
            acct.name,
            "create one with `seatgate contract create`",
        )
    return contract


def bump_version(conn: sa.Connection, contract_id: int) -> None:
    """Tell entitlement caches that something a decision depends on has changed."""
    conn.execute(
        contracts.update()
        .where(contracts.c.id == contract_id)
        .values(entitlement_version=contracts.c.entitlement_version + 1)
    )


def set_quantity(
    conn: sa.Connection,
    account: str,
    product: str,
    quantity: int,
    at: dt.datetime,
    actor: str | None = None,
    reason: str = "contract change",
) -> Contract:
    """Change the contracted quantity (a renewal, or seats bought). Never touches assigned seats."""
    if quantity < 0:
        raise BadInput("seats", quantity, "a whole number of seats, 0 or more")
    acct = get_account(conn, account)
    contract = get_contract(conn, acct, product, lock=True)
    conn.execute(contracts.update().where(contracts.c.id == contract.id).values(quantity=quantity))
    bump_version(conn, contract.id)
    audit.record(
        conn,
        at=at,
        action="contract.quantity",
        outcome="ok",
        account=account,
        actor=actor,
        detail={"product": product, "from": contract.quantity, "to": quantity, "reason": reason},
    )
    return get_contract(conn, acct, product)


def list_contracts(conn: sa.Connection, account: str | None = None) -> list[Contract]:
    query = sa.select(contracts, accounts.c.name.label("account_name")).join(
        accounts, accounts.c.id == contracts.c.account_id
    )
    if account is not None:
        query = query.where(accounts.c.name == account)
    return [_to_contract(r, r.account_name) for r in conn.execute(query.order_by(contracts.c.id))]
