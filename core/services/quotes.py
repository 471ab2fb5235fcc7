"""Prices shown before a purchase: seats bought or users added, co-termed with the contract.

Seed 002, "Purchase Summary": "indicative prices based on the selected Plan, the then listed
price, and the then selected user count. It does not reflect your specific terms, nor does it
constitute a bill". Every amount here comes from :func:`seatgate.core.domain.pricing.charge`, the
function invoices use.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from ..domain import calendar
from ..domain.catalog import Catalog
from ..domain.model import Contract
from ..domain.money import Money
from ..domain.pricing import charge
from ..domain.seats import SeatCount
from ..domain.vocabulary import ChargeModel

__all__ = ["added_users_price", "quote_seats", "seat_price"]

INDICATIVE = "indicative price: not a bill, not your contract's terms (seed 002 Purchase Summary)"


def seat_price(catalog: Catalog, contract: Contract, today: dt.date) -> Decimal:
    """Order-form (and marketplace) contracts buy at their unit price; self-serve ones at the
    then-listed price of their plan (seed 002: self-serve is billed month to month)."""
    if calendar.month_to_month(contract):
        listed = catalog.list_price(contract.product, contract.plan, today)
        if listed is not None:
            return listed.monthly_price
    return contract.unit_price


def _per_period(catalog: Catalog, contract: Contract, quantity: int, today: dt.date) -> Money:
    """What ``quantity`` seats cost for one full billing period starting with today's."""
    unit = seat_price(catalog, contract, today)
    model = catalog.charge_model(contract.product, contract.plan, contract.term_start)
    billed = 0 if model == ChargeModel.PER_ACCOUNT else quantity
    _, (a, _) = calendar.period_containing(contract, today)
    end = calendar.add_months(a, calendar.period_months(contract))
    return charge(unit, billed, contract.currency, anchor=a, start=a, end=end)


def added_users_price(catalog: Catalog, contract: Contract, above: int, today: dt.date) -> Money:
    """Seed 002, "Adding Users above Contracted Quantities": the indicative cost per billing
    period of ``above`` added users the contract does not cover (0 when it covers them)."""
    if above <= 0:
        return Money(Decimal("0"), contract.currency)
    return _per_period(catalog, contract, above, today)


def quote_seats(
    catalog: Catalog, account: str, contract: Contract, quantity: int, today: dt.date, assigned: int
) -> dict[str, Any]:
    """The purchase summary of ``quantity`` more seats, co-termed with the contract."""
    unit = seat_price(catalog, contract, today)
    model = catalog.charge_model(contract.product, contract.plan, contract.term_start)
    billed = 0 if model == ChargeModel.PER_ACCOUNT else quantity
    j, _ = calendar.period_containing(contract, today)
    anchor, end = calendar.term_start(contract, j), calendar.term_start(contract, j + 1)
    rest = charge(unit, billed, contract.currency, anchor=anchor, start=today, end=end)
    full = _per_period(catalog, contract, quantity, today)
    return {
        "account": account,
        "product": contract.product,
        "quantity_before": contract.quantity,
        "quantity_after": contract.quantity + quantity,
        "added": quantity,
        "unit_price": str(unit),
        "currency": contract.currency,
        "charge_model": model,
        "prorated_rest_of_term": str(rest.amount),
        "rest_of_term": {"start": today.isoformat(), "end": end.isoformat()},
        "per_billing_period": str(full.amount),
        "billing_period_months": calendar.period_months(contract),
        "assigned": assigned,
        "in_overage_after": SeatCount(
            contract.quantity + quantity, assigned, contract.mode
        ).in_overage,
    }
