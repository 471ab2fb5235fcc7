"""Prices shown before a purchase: seats bought or users added, co-termed with the contract.

Seed 002, "Purchase Summary": "indicative prices based on the selected Plan, the then listed
price, and the then selected user count. It does not reflect your specific terms, nor does it
constitute a bill". What is shown is what is billed (issue 11, item 5): every amount here comes
from the billing domain the invoices use — :func:`~seatgate.core.domain.billing.rest_of_term` on the
contract's history with and without the purchase, and
:func:`~seatgate.core.domain.pricing.charge` under the plan selected now.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from ..domain import bounds, calendar
from ..domain.billing import History, PlanChange, purchase_quote
from ..domain.calendar import Interval
from ..domain.catalog import Catalog
from ..domain.model import Contract
from ..domain.money import Money, normalize_price
from ..domain.pricing import charge
from ..domain.seats import SeatCount
from ..domain.vocabulary import ChargeModel
from ..errors import NotFound
from .ports import Ports, UnitOfWork

__all__ = [
    "INDICATIVE",
    "added_users_price",
    "contract_history",
    "overage_begins",
    "quote_seats",
    "seat_price",
    "terms_in_force",
]

INDICATIVE = "indicative price: not a bill, not your contract's terms (seed 002 Purchase Summary)"


def overage_begins(ports: Ports) -> dt.date | None:
    """Seed 000: the overage-billing date of the timeline revision in force now."""
    revision = ports.timeline.revision_at(ports.now())
    return revision.overage_billing_begins if revision else None


def contract_history(uow: UnitOfWork, ports: Ports, contract: Contract) -> History:
    """The contract's billing history as known now (what the next billing run would read)."""
    found, _ = uow.billing.histories(
        ports.now(), ports.catalog(), overage_begins(ports), contract.account, contract.product
    )
    if not found:
        raise NotFound(
            f"{contract.product} contract of account",
            contract.account,
            "it is recorded after the instant asked about",
            remedy="create_contract",
            context={"account": contract.account, "product": contract.product},
        )
    return found[0]


def seat_price(catalog: Catalog, contract: Contract, today: dt.date) -> Decimal:
    """Order-form (and marketplace) contracts buy at their unit price; self-serve ones at the
    then-listed price of their plan (seed 002: self-serve is billed month to month)."""
    if calendar.month_to_month(contract):
        listed = catalog.list_price(contract.product, contract.plan, today)
        if listed is not None and listed.currency == contract.currency:
            return normalize_price(listed.monthly_price, contract.currency)
    return contract.unit_price


def terms_in_force(
    catalog: Catalog, contract: Contract, change: PlanChange | None, today: dt.date
) -> tuple[Decimal, str]:
    """(monthly unit price, charge model) a seat is billed at today: the selected plan's when a
    plan other than the contracted one is selected (seed 002), else the contract's."""
    if change is not None:
        return change.unit_price, change.charge_model
    model = contract.charge_model or catalog.charge_model(
        contract.product, contract.plan, contract.term_start
    )
    return seat_price(catalog, contract, today), model


def _per_period(
    contract: Contract, unit: Decimal, model: str, quantity: int, today: dt.date
) -> tuple[Money, Interval]:
    """What ``quantity`` seats cost for one full billing period, the one containing today (or the
    first, before the term starts), and that period."""
    j, _ = calendar.period_containing(contract, today)
    a, b = calendar.full_period(contract, today)
    billed = 0 if model == ChargeModel.PER_ACCOUNT else quantity
    since = calendar.term_start(contract, j)
    price = charge(
        unit, billed, contract.currency, anchor=contract.term_start, since=since, start=a, end=b
    )
    return price, (a, b)


def added_users_price(
    catalog: Catalog, contract: Contract, change: PlanChange | None, above: int, today: dt.date
) -> Money:
    """Seed 002, "Adding Users above Contracted Quantities": the indicative cost per billing
    period of ``above`` added users the contract does not cover (0 when it covers them), under
    the plan selected now."""
    if above <= 0:
        return Money.zero(contract.currency)
    unit, model = terms_in_force(catalog, contract, change, today)
    return _per_period(contract, unit, model, above, today)[0]


def quote_seats(
    catalog: Catalog,
    history: History,
    quantity: int,
    at: dt.datetime,
    assigned: int,
    billed: Sequence[Interval],
    prior: Mapping[tuple[int, dt.date], Sequence[Mapping[str, Any]]],
) -> dict[str, Any]:
    """The purchase summary of ``quantity`` more seats, co-termed with the contract.

    ``prorated_rest_of_term`` is what the invoices will bill because of the purchase, from today
    (or the term start, before it) to the end of the term: the rest of the term billed with the
    purchase minus without it, by the invoices' own function. ``per_billing_period`` is the
    seats' price for one full billing period under the plan selected now.
    """
    contract = history.contract
    today = at.date()
    change = history.plan_in_force(today)
    unit, model = terms_in_force(catalog, contract, change, today)
    before = history.contracted_on(at)
    bounds.contracted_total(before, quantity, "quantity")
    rest = purchase_quote(
        history, at, quantity, seat_price(catalog, contract, today), billed, prior
    )
    start = max(today, contract.term_start)
    _, end = calendar.current_term(contract, start)
    full, _ = _per_period(contract, unit, model, quantity, today)
    return {
        "account": contract.account,
        "product": contract.product,
        "plan": change.plan if change is not None else contract.plan,
        "quantity_before": before,
        "quantity_after": before + quantity,
        "added": quantity,
        "unit_price": str(unit),
        "currency": contract.currency,
        "charge_model": model,
        "prorated_rest_of_term": str(rest.amount),
        "rest_of_term": {"start": start.isoformat(), "end": end.isoformat()},
        "per_billing_period": str(full.amount),
        "billing_period_months": calendar.period_months(contract),
        "assigned": assigned,
        "in_overage_after": SeatCount(before + quantity, assigned, contract.mode).in_overage,
    }
