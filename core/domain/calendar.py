"""The ONE term and billing-period calendar of a contract, and month arithmetic.

Seed 002: purchases "adapt to your existing Talkdesk contract's billing frequency and term", and
"Marketplace Self-Serve new app purchases ... are billed month to month". So:

- a contract's terms renew back to back from its ``term_start`` (its *anchor*): term ``j`` starts
  ``j × term months`` after the anchor, counted from the anchor itself (never from a clamped date),
  so a contract from Jan 31 has terms starting Feb 28, Mar 31, Apr 30, ...;
- a self-serve contract has one-month terms and one-month periods, whatever it was created with;
- a term is cut into billing periods of the frequency's months; the last is cut at the term's end
  when they do not divide it.

Every date range is half-open: ``[start, end)``. ``contract list``, uninstall (effective at the end
of the current term), the purchase summary and every invoice ask this module.
"""

from __future__ import annotations

import datetime as dt
import functools
from fractions import Fraction

from .model import Contract
from .vocabulary import Channel, Frequency

__all__ = [
    "Interval",
    "add_months",
    "current_term",
    "full_period",
    "month_to_month",
    "months_between",
    "period_containing",
    "period_months",
    "periods_of_term",
    "periods_starting_in",
    "term_index",
    "term_months",
    "term_start",
]

Interval = tuple[dt.date, dt.date]


# Pure functions of their arguments, asked for the same few anchors again and again by every
# invoice line of a billing run: cached.
@functools.lru_cache(maxsize=1 << 16)
def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` plus whole months, clamped to the month's last day (Jan 31 + 1 month = Feb 28).

    Raises :class:`OverflowError` past year 9999 (``datetime.date``'s range).
    """
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    if not 1 <= year <= 9999:
        raise OverflowError(f"{day} + {months} months is outside the years 1-9999")
    last = 31 if month == 12 else (dt.date(year, month + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(year, month, min(day.day, last))


@functools.lru_cache(maxsize=1 << 16)
def months_between(anchor: dt.date, day: dt.date) -> Fraction:
    """Exact months from ``anchor`` to ``day`` (``day >= anchor``) along the anchor's own calendar:
    whole months ``k`` while ``add_months(anchor, k) <= day`` (each counted from the anchor itself,
    so an anchor on the 31st has months ending Feb 28, Mar 31, Apr 30 …), then the remaining days
    over the length of the month they fall in. Pass the contract's ``term_start``, never a date
    clamped from it (issue 11, item 1). Raises :class:`ValueError` when ``day`` is before
    ``anchor``."""
    if day < anchor:
        raise ValueError(f"{day} is before the anchor {anchor}")
    # Whole months: a first guess from the calendar, corrected for month-end clamping.
    whole = (day.year - anchor.year) * 12 + (day.month - anchor.month)
    while whole > 0 and add_months(anchor, whole) > day:
        whole -= 1
    while add_months(anchor, whole + 1) <= day:
        whole += 1
    month_start = add_months(anchor, whole)
    month_end = add_months(anchor, whole + 1)
    return whole + Fraction((day - month_start).days, (month_end - month_start).days)


def month_to_month(contract: Contract) -> bool:
    """Seed 002: "Marketplace Self-Serve new app purchases ... are billed month to month"."""
    return contract.channel == Channel.SELF_SERVE


def period_months(contract: Contract) -> int:
    """Months in one billing period (seed 002: the contract's billing frequency)."""
    return 1 if month_to_month(contract) else Frequency(contract.frequency).months


def term_months(contract: Contract) -> int:
    """Months in one term: the contract's, or one for a month-to-month (self-serve) contract."""
    return 1 if month_to_month(contract) else contract.term_months


def term_start(contract: Contract, index: int) -> dt.date:
    """The first day of term ``index`` (0 = the first): terms renew back to back (an uninstall
    without a cancellation ticket renews too), counted from the contract's own anchor."""
    return add_months(contract.term_start, index * term_months(contract))


def term_index(contract: Contract, day: dt.date) -> int:
    """The term ``day`` falls in (0 before the contract starts)."""
    if day < contract.term_start:
        return 0
    months = term_months(contract)
    j = max(0, (day.year - contract.term_start.year) * 12 + day.month - contract.term_start.month)
    j //= months
    while j > 0 and term_start(contract, j) > day:
        j -= 1
    while term_start(contract, j + 1) <= day:
        j += 1
    return j


def current_term(contract: Contract, day: dt.date) -> Interval:
    """The term in force on ``day`` as ``(start, end)``; the first term before the start."""
    j = term_index(contract, day)
    return term_start(contract, j), term_start(contract, j + 1)


def periods_of_term(contract: Contract, j: int) -> list[Interval]:
    """The billing periods of term ``j``; the last is cut at the term end if they do not divide."""
    end = term_start(contract, j + 1)
    step = period_months(contract)
    first = j * term_months(contract)
    out: list[Interval] = []
    i = 0
    while True:
        a = add_months(contract.term_start, first + i * step)
        if a >= end:
            return out
        out.append((a, min(end, add_months(contract.term_start, first + (i + 1) * step))))
        i += 1


def period_containing(contract: Contract, day: dt.date) -> tuple[int, Interval]:
    """``(term index, billing period)`` of ``day``; the first period before the start."""
    j = term_index(contract, day)
    for a, b in periods_of_term(contract, j):
        if a <= day < b:
            return j, (a, b)
    return j, periods_of_term(contract, j)[0]


def full_period(contract: Contract, day: dt.date) -> Interval:
    """The whole billing period (the frequency's months, not cut at a term end) that starts with
    the period containing ``day``: what "per billing period" prices in a quote cover."""
    j, (a, _) = period_containing(contract, day)
    offset = j * term_months(contract)
    step = period_months(contract)
    k = offset
    while add_months(contract.term_start, k) < a:
        k += step
    return add_months(contract.term_start, k), add_months(contract.term_start, k + step)


def periods_starting_in(contract: Contract, month: dt.date) -> list[tuple[int, Interval]]:
    """The contract's billing periods whose first day falls in ``month`` (its invoice month)."""
    next_month = add_months(month, 1)
    if next_month <= contract.term_start:
        return []
    j = term_index(contract, month)
    out: list[tuple[int, Interval]] = []
    while term_start(contract, j) < next_month:
        out.extend((j, p) for p in periods_of_term(contract, j) if month <= p[0] < next_month)
        j += 1
    return out
