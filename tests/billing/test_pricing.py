"""The rounding rule and the proration rule, on their own."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from decimal import Decimal
from fractions import Fraction

import pytest

from seatgate.core.domain.calendar import months_between
from seatgate.core.domain.money import Money, round_cents
from seatgate.core.domain.pricing import charge

D = dt.date


@pytest.mark.parametrize(
    ("exact", "cents"),
    [
        (Fraction(5, 1000), "0.01"),  # half a cent rounds up
        (Fraction(-5, 1000), "-0.01"),  # ... and away from zero for credits
        (Fraction(49, 10000), "0.00"),
        (Fraction(2799_9972, 10000), "2800.00"),
        (Fraction(400, 31), "12.90"),
    ],
)
def test_one_rounding_rule_to_the_cent_half_away_from_zero(exact: Fraction, cents: str) -> None:
    assert round_cents(exact) == Decimal(cents)


@pytest.mark.parametrize(
    ("anchor", "day", "months"),
    [
        (D(2026, 1, 1), D(2026, 4, 1), Fraction(3)),
        (D(2026, 2, 1), D(2026, 2, 15), Fraction(14, 28)),
        (D(2026, 1, 31), D(2026, 2, 28), Fraction(1)),  # Jan 31 + 1 month = Feb 28
        (D(2026, 1, 31), D(2026, 3, 15), Fraction(1) + Fraction(15, 31)),  # Feb 28 .. Mar 31
    ],
)
def test_months_are_whole_calendar_months_then_days(
    anchor: dt.date, day: dt.date, months: Fraction
) -> None:
    assert months_between(anchor, day) == months


def test_any_split_of_a_term_adds_up_to_the_same_cents() -> None:
    rng = random.Random(7)
    anchor, end = D(2026, 1, 1), D(2027, 1, 1)
    whole = charge(Decimal("19.9999"), 13, "EUR", anchor=anchor, start=anchor, end=end)
    for _ in range(50):
        cuts = sorted({anchor + dt.timedelta(days=rng.randrange(1, 365)) for _ in range(9)})
        bounds = [anchor, *cuts, end]
        parts = Money.zero("EUR")
        for a, b in itertools.pairwise(bounds):
            parts += charge(Decimal("19.9999"), 13, "EUR", anchor=anchor, start=a, end=b)
        assert parts == whole


def test_money_refuses_to_mix_currencies() -> None:
    with pytest.raises(ValueError, match="cannot mix"):
        Money(Decimal("1"), "USD") + Money(Decimal("1"), "EUR")
