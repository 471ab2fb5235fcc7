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
  :func:`~seatgate.core.domain.money.round_minor` (to the currency's minor unit). Because each amount is the difference of rounded
  running totals, a year billed monthly, quarterly, semiannually or annually comes to the same
  cents, and a period split by an event (an activation, a plan change) adds up to the unsplit
  period.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction

from ..errors import BadInput
from .calendar import months_between
from .money import Money, currency_code, money_text, normalize_price, round_minor
from .vocabulary import Channel, ChargeModel, Frequency


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
    upto_end = round_minor(rate * (months_between(anchor, end) - base), currency)
    upto_start = round_minor(rate * (months_between(anchor, start) - base), currency)
    return Money(upto_end - upto_start, currency)


# -- what a contract is priced at, by channel (seed 002) ---------------------------------------------
def check_channel_terms(
    channel: str,
    *,
    unit_price: Decimal | None,
    frequency: str,
    months: int,
    start: dt.date,
    today: dt.date,
    listed: bool = True,
) -> None:
    """The terms a channel allows, refused one by one (:class:`BadInput` naming the field):

    - ``self_serve`` — seed 002: "Marketplace Self-Serve new app purchases ... are billed month
      to month", at "the then listed price": no unit price of its own, frequency ``monthly``, a
      term of 1 month, starting on the purchase day (``today``).
    - ``marketplace`` — an app bought on the marketplace under the customer's existing contract:
      "AppConnect purchases adapt to your existing Talkdesk contract's billing frequency and
      term" (so any frequency, term and start), at the marketplace's communicated (listed)
      price: no unit price of its own — a negotiated price is an order form's (``listed``
      False: the catalog lists no price for the plan, a third-party app's, so the contract names
      it).
    - ``order_form`` — its own terms ("Buying through a Signed Order Form"): anything in bounds.
    """
    if channel not in (Channel.SELF_SERVE, Channel.MARKETPLACE):
        return
    if unit_price is not None and (listed or channel == Channel.SELF_SERVE):
        raise BadInput(
            "unit price",
            str(unit_price),
            f"no unit price: a {channel} purchase is at the then-listed price (a negotiated "
            "price comes with an order form)",
        )
    if channel != Channel.SELF_SERVE:
        return
    if frequency != Frequency.MONTHLY:
        raise BadInput(
            "frequency", frequency, "monthly: a self-serve purchase is billed month to month"
        )
    if months != 1:
        raise BadInput("months", months, "1: a self-serve purchase runs month to month")
    if start != today:
        raise BadInput(
            "start",
            start.isoformat(),
            f"{today.isoformat()}, the purchase day: a self-serve purchase starts when it is made",
        )


def contract_price(
    product: str,
    plan: str,
    listed: tuple[Decimal, str] | None,
    unit_price: Decimal | None,
    currency: str | None,
) -> tuple[Decimal, str]:
    """``(monthly unit price, currency)`` of a new contract, written with the currency's minor
    unit (:func:`~.money.normalize_price`).

    :param listed: ``(monthly price, currency)`` the catalog lists ``plan`` at today (None: not
        listed — a plan of the order form's own).
    :param unit_price: the price the contract names (None: the listed price).
    :param currency: the currency the contract names (None: the listed one, else USD).

    A contract without a price of its own takes the listed price, in the listed currency only: a
    listed price is never relabelled into another currency (tester report item 3). Raises
    :class:`BadInput` naming the currency and the listed one, or a price with no listing.
    """
    code = currency_code(currency) if currency is not None else None
    if unit_price is None:
        if listed is None:
            raise BadInput(
                "unit price",
                None,
                f"an amount (the catalog lists no price for plan {plan!r} of {product})",
            )
        price, listed_in = listed
        if code is not None and code != listed_in:
            raise BadInput(
                "currency",
                currency,
                f"{listed_in}, the currency the catalog lists {product}'s {plan} plan in; a "
                f"contract in {code} names its own unit price in {code}",
            )
        return normalize_price(price, listed_in), listed_in
    code = code or (listed[1] if listed is not None else "USD")
    return normalize_price(unit_price, code), code


def price_text(unit_price: Decimal, currency: str, charge_model: str) -> str:
    """A monthly price as people read it, with the currency's minor unit: ``25.00 USD/seat/month``
    for a per-seat plan, ``99.00 USD/month`` for a per-account one (seed 002: "charged once, per
    Talkdesk account, independently of the number of activated seats")."""
    per = "month" if charge_model == ChargeModel.PER_ACCOUNT else "seat/month"
    return f"{money_text(unit_price, currency)}/{per}"
