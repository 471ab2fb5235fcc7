"""The ONE pricing function: the purchase summary, every quote and every invoice line go through
:func:`charge`.

Seed 002: "Marketplace communicated prices follow a monthly equivalent standard. If your
contract's billing frequency differs from monthly, the proportional price will be applied."

The rule (docs/billing.md, "Proration"):

- A price is per month. Months are counted along the calendar of an *anchor* — the contract's own
  ``term_start``, never a date clamped from it: month ``k`` runs from ``add_months(anchor, k)`` to
  ``add_months(anchor, k + 1)``, and a day inside it is ``k`` + days / the days of that month. So a
  contract from 2026-01-31 has months Jan 31 → Feb 28 → Mar 31 → Apr 30 …, each exactly one month,
  and 2026-02-15 to 2026-03-01 of a contract from the 1st is 14/28 of a month.
- ``charge(start, end)`` = round(price × quantity × months(since → end))
  − round(price × quantity × months(since → start)), where ``since`` is the start of the contract's
  current term (a whole number of months from the anchor) and the rounding rule is
  :func:`~seatgate.core.domain.money.round_cents`. Because each amount is the difference of rounded
  running totals, a year billed monthly, quarterly, semiannually or annually comes to the same
  cents, and a period split by an event (an activation, a plan change) adds up to the unsplit
  period.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction

from .calendar import months_between
from .money import Money, round_cents


def charge(
    monthly_price: Decimal,
    quantity: int,
    currency: str,
    *,
    anchor: dt.date,
    start: dt.date,
    end: dt.date,
    since: dt.date | None = None,
) -> Money:
    """What ``quantity`` units at ``monthly_price`` (per month, in ``currency``) cost from ``start``
    to ``end`` (half-open), months counted along ``anchor``'s calendar and running totals rounded
    from ``since`` (default: the anchor; for a contract, the start of its current term).

    Raises :class:`ValueError` when ``end`` is before ``start`` or ``since`` is after ``start``
    (a span before the term starts has no price: callers quote from the term start).
    """
    if end < start:
        raise ValueError(f"span ends ({end}) before it starts ({start})")
    origin = since or anchor
    if start < origin:
        raise ValueError(f"span starts ({start}) before the term ({origin})")
    rate = Fraction(monthly_price) * quantity
    base = months_between(anchor, origin)
    upto_end = round_cents(rate * (months_between(anchor, end) - base))
    upto_start = round_cents(rate * (months_between(anchor, start) - base))
    return Money(upto_end - upto_start, currency)
