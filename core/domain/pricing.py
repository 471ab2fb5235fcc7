"""The ONE pricing function: the purchase summary and every invoice line go through :func:`charge`.

Seed 002: "Marketplace communicated prices follow a monthly equivalent standard. If your
contract's billing frequency differs from monthly, the proportional price will be applied."

The rule (docs/billing.md, "Proration"):

- A price is per month. The months of a span are counted from an *anchor* (the start of the
  contract's current term): whole months by the calendar (``add_months``), and what is left over
  as days / the days of the anchor-aligned month it falls in. So 2026-01-01 to 2026-04-01 is
  exactly 3 months, and 2026-02-15 to 2026-03-01 is 14/28 of a month.
- ``charge(start, end)`` = round(price × quantity × months(anchor → end))
  − round(price × quantity × months(anchor → start)), with the rounding rule of
  :mod:`seatgate.core.money`. Because each amount is the difference of rounded running totals, a
  year billed monthly, quarterly, semiannually or annually comes to the same cents, and a
  period split by an event (an activation, a plan change) adds up to the unsplit period.
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
) -> Money:
    """What ``quantity`` units at ``monthly_price`` cost from ``start`` to ``end`` (half-open),
    counted and rounded from ``anchor`` (see the module docstring)."""
    if end < start:
        raise ValueError(f"span ends ({end}) before it starts ({start})")
    rate = Fraction(monthly_price) * quantity
    upto_end = round_cents(rate * months_between(anchor, end))
    upto_start = round_cents(rate * months_between(anchor, start))
    return Money(upto_end - upto_start, currency)
