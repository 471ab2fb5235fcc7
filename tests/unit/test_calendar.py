"""The term and period calendar, and the pricing function on it (no database).

Issue 11, item 1: months are counted from the contract's own anchor (its ``term_start``), never
from a clamped date, so every full billing period bills exactly its 1, 3, 6 or 12 months at the
monthly price, whatever the anchor day (29, 30, 31, a leap day), the frequency, the term and the
channel.
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from fractions import Fraction

import pytest
from billing_runs import Runs
from hypothesis import given, settings
from hypothesis import strategies as st

from seatgate.core.domain import calendar
from seatgate.core.domain.billing import History, owed
from seatgate.core.domain.calendar import add_months, months_between
from seatgate.core.domain.model import Contract
from seatgate.core.domain.pricing import charge
from seatgate.core.domain.vocabulary import Channel, Frequency

D = dt.date
FREQUENCIES = list(Frequency)
CHANNELS = list(Channel)


def contract(
    start: dt.date,
    *,
    frequency: str = "monthly",
    months: int = 12,
    channel: str = "order_form",
    quantity: int = 1,
    price: str = "25.00",
    mode: str = "hard_cap",
) -> Contract:
    return Contract(
        id=1,
        account="acme",
        product="salesforce",
        plan="standard",
        quantity=quantity,
        unit_price=Decimal(price),
        currency="USD",
        frequency=frequency,
        term_start=start,
        term_months=months,
        channel=channel,
        mode=mode,
    )


def bill_months(c: Contract, first: dt.date, n: int) -> list[tuple[str, dt.date, dt.date, str]]:
    """Run the billing of ``n`` months from ``first`` on a history with nothing but the contract:
    (month, period start, period end, amount) of every line issued."""
    h = History(contract=c, charge_model="per_seat")
    runs = Runs()
    runs.run_months(lambda _: h, first, add_months(first, n - 1))
    return [(m, ln.start, ln.end, str(ln.amount.amount)) for m, ln in runs.issued]


# -- the right values --------------------------------------------------------------------------------


def test_a_self_serve_contract_from_january_31_bills_25_every_month_and_300_a_year() -> None:
    # The field report: 27.42 for 2026-02-28 -> 03-31 and 25.81 for 04-30 -> 05-31, 305.66 a year.
    c = contract(D(2026, 1, 31), channel="self_serve", months=1)
    lines = bill_months(c, D(2026, 1, 1), 12)
    assert [(a, b) for _, a, b, _ in lines][:5] == [
        (D(2026, 1, 31), D(2026, 2, 28)),
        (D(2026, 2, 28), D(2026, 3, 31)),
        (D(2026, 3, 31), D(2026, 4, 30)),
        (D(2026, 4, 30), D(2026, 5, 31)),
        (D(2026, 5, 31), D(2026, 6, 30)),
    ]
    assert {amount for *_, amount in lines} == {"25.00"}
    assert sum(Decimal(amount) for *_, amount in lines) == Decimal("300.00")


def test_months_are_counted_from_the_anchor_not_from_a_clamped_date() -> None:
    anchor = D(2026, 1, 31)
    assert months_between(anchor, D(2026, 2, 28)) == 1
    assert months_between(anchor, D(2026, 3, 31)) == 2  # not 2 + 3/31 (from Feb 28)
    assert months_between(anchor, D(2026, 4, 15)) == 2 + Fraction(15, 30)
    assert months_between(D(2024, 2, 29), D(2025, 2, 28)) == 12  # a leap-day anchor


def test_a_quarter_from_the_last_day_of_november_is_three_months() -> None:
    c = contract(D(2025, 11, 30), frequency="quarterly", months=12, quantity=4)
    assert calendar.periods_of_term(c, 1) == [
        (D(2026, 11, 30), D(2027, 2, 28)),
        (D(2027, 2, 28), D(2027, 5, 30)),
        (D(2027, 5, 30), D(2027, 8, 30)),
        (D(2027, 8, 30), D(2027, 11, 30)),
    ]
    h = History(contract=c, charge_model="per_seat")
    for span in calendar.periods_of_term(c, 1):
        slots = owed(h, 1, span)
        assert list(slots) == [("base", Decimal("25.00"), 0)] and len(slots[next(iter(slots))]) == 4
    assert charge(
        Decimal("25.00"),
        4,
        "USD",
        anchor=c.term_start,
        since=D(2026, 11, 30),
        start=D(2027, 2, 28),
        end=D(2027, 5, 30),
    ).amount == Decimal("300.00")


def test_a_span_before_the_term_has_no_price() -> None:
    with pytest.raises(ValueError, match="before the term"):
        charge(
            Decimal("1"), 1, "USD", anchor=D(2026, 1, 1), start=D(2025, 12, 1), end=D(2026, 2, 1)
        )


# -- the kind: any anchor, frequency, term and channel -----------------------------------------------

starts = st.dates(min_value=D(2020, 1, 1), max_value=D(2035, 12, 31))


@settings(max_examples=150, deadline=None)
@given(
    start=starts,
    frequency=st.sampled_from(FREQUENCIES),
    months=st.integers(min_value=1, max_value=36),
    channel=st.sampled_from(CHANNELS),
    terms=st.integers(min_value=1, max_value=4),
    cents=st.integers(min_value=1, max_value=100_000),
    quantity=st.integers(min_value=1, max_value=50),
)
def test_every_full_period_bills_exactly_its_months(
    start: dt.date,
    frequency: str,
    months: int,
    channel: str,
    terms: int,
    cents: int,
    quantity: int,
) -> None:
    price = Decimal(cents) / 100
    c = contract(
        start,
        frequency=frequency,
        months=months,
        channel=channel,
        quantity=quantity,
        price=str(price),
    )
    step = calendar.period_months(c)
    h = History(contract=c, charge_model="per_seat")
    for j in range(terms):
        t0, t1 = calendar.term_start(c, j), calendar.term_start(c, j + 1)
        # Terms come back to back from the anchor itself.
        assert t0 == add_months(start, j * calendar.term_months(c))
        spans = calendar.periods_of_term(c, j)
        assert spans[0][0] == t0 and spans[-1][1] == t1
        assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
        term_total = Decimal(0)
        for a, b in spans:
            whole = months_between(start, b) - months_between(start, a)
            assert whole.denominator == 1  # a period is whole months of the anchor's calendar
            (key, slots), *_ = owed(h, j, (a, b)).items()
            amount = charge(
                key[1], len(slots), "USD", anchor=start, since=t0, start=a, end=b
            ).amount
            if b == add_months(
                start, j * calendar.term_months(c) + (spans.index((a, b)) + 1) * step
            ):
                assert whole == step  # a full period is exactly the frequency's months
            assert amount == price * quantity * int(whole)
            term_total += amount
        assert term_total == price * quantity * calendar.term_months(c)
