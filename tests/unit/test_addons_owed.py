"""Add-on lines (issue 18 item 2; seed 002: add-on plans "will be activated in your Account by the
Partner, based on contracted terms"): billed from the activation day under the contract's
frequency and term, co-termed, ending at the end of the term a deactivation was asked in. A
right value and the properties of the kind, from a :class:`History` alone."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import attrs
from billing_runs import Runs
from hypothesis import given, settings
from hypothesis import strategies as st
from test_owed import contract, months

from seatgate.core.domain import calendar
from seatgate.core.domain.billing import AddOn, History, addon_quote
from seatgate.core.domain.money import round_cents
from seatgate.core.domain.pricing import charge

D = dt.date


def history(c: object, *addons: AddOn) -> History:
    return History(contract=c, charge_model="per_seat", add_ons=list(addons))  # type: ignore[arg-type]


def known_on(h: History, day: dt.date) -> History:
    """The history as a run on ``day`` reads it: add-ons activated by then, deactivations too."""
    return attrs.evolve(h, add_ons=[x for x in h.add_ons if x.effective <= day])


def addon_lines(runs: Runs) -> list[tuple[str, str, dt.date, dt.date]]:
    return [
        (m, str(ln.amount.amount), ln.start, ln.end)
        for m, ln in runs.issued
        if ln.charge_kind == "add_on"
    ]


def test_an_add_on_activated_mid_month_is_prorated_on_the_next_run_then_billed_in_full() -> None:
    c = contract(quantity=10, unit_price=Decimal("10.00"))
    h = history(c, AddOn(7, "insights", "per_seat", 3, Decimal("3.00"), D(2026, 2, 10)))
    runs = Runs()
    runs.run_months(lambda m: known_on(h, m), D(2026, 1, 1), D(2026, 3, 1))
    # 3 seats x 3.00 x 19/28 of February = 6.107... -> 6.11, then March in full: 9.00.
    assert addon_lines(runs) == [
        ("2026-03", "6.11", D(2026, 2, 10), D(2026, 3, 1)),
        ("2026-03", "9.00", D(2026, 3, 1), D(2026, 4, 1)),
    ]
    line = next(ln for _, ln in runs.issued if ln.kind == "add_on")
    assert line.description.startswith("insights add-on, 3 seats at 3.00 USD/month each")


def test_a_per_account_add_on_is_one_slot_and_a_deactivation_ends_it_at_the_term_end() -> None:
    c = contract(frequency="quarterly", term_months=6)
    x = AddOn(1, "reports", "per_account", 1, Decimal("90.00"), D(2026, 1, 1), D(2026, 7, 1))
    runs = Runs()
    runs.run_months(lambda m: history(c, x), D(2026, 1, 1), D(2026, 12, 1))
    assert addon_lines(runs) == [
        ("2026-01", "270.00", D(2026, 1, 1), D(2026, 4, 1)),
        ("2026-04", "270.00", D(2026, 4, 1), D(2026, 7, 1)),
    ]


def test_the_quote_is_what_the_invoices_bill() -> None:
    c = contract(frequency="annual")
    runs = Runs()
    runs.run(history(c), D(2026, 1, 1))  # the year is invoiced in January
    x = AddOn(0, "insights", "per_seat", 4, Decimal("3.00"), D(2026, 7, 17))
    quote = addon_quote(history(c), x, runs.billed[1], runs.prior)
    runs.run(history(c, x), D(2026, 8, 1))
    assert (
        quote.amount == sum(Decimal(a) for _, a, _, _ in addon_lines(runs)) == Decimal("65.81")
    )  # 12.00 x 15/31 + 5 x 12.00


@settings(max_examples=25, deadline=None)
@given(
    start=st.dates(min_value=D(2025, 1, 1), max_value=D(2027, 12, 31)),
    frequency=st.sampled_from(["monthly", "quarterly", "semiannual", "annual"]),
    quantity=st.integers(1, 500),
    cents=st.integers(1, 10_000_00),
    per_account=st.booleans(),
)
def test_a_year_of_an_add_on_comes_to_the_same_cents_at_any_frequency(
    start: dt.date, frequency: str, quantity: int, cents: int, per_account: bool
) -> None:
    price = Decimal(cents) / 100
    qty = 1 if per_account else quantity
    model = "per_account" if per_account else "per_seat"
    c = contract(term_start=start, frequency=frequency, term_months=12)
    h = history(c, AddOn(1, "insights", model, qty, price, start))
    runs = Runs()
    runs.run_months(lambda m: h, D(start.year, start.month, 1), calendar.add_months(start, 11))
    total = sum(Decimal(a) for _, a, _, _ in addon_lines(runs))
    assert total == round_cents(price * qty * 12)


@settings(max_examples=25, deadline=None)
@given(
    start=st.dates(min_value=D(2025, 1, 1), max_value=D(2026, 12, 31)),
    frequency=st.sampled_from(["monthly", "quarterly", "semiannual", "annual"]),
    offset=st.integers(0, 364),
    quantity=st.integers(1, 200),
    cents=st.integers(1, 500_00),
)
def test_a_partial_period_prorates_exactly_and_the_pieces_add_up(
    start: dt.date, frequency: str, offset: int, quantity: int, cents: int
) -> None:
    price = Decimal(cents) / 100
    c = contract(term_start=start, frequency=frequency, term_months=12)
    t1 = calendar.term_start(c, 1)
    day = min(start + dt.timedelta(days=offset), t1 - dt.timedelta(days=1))
    h = history(c, AddOn(1, "insights", "per_seat", quantity, price, day, t1))
    runs = Runs()
    for m in months(D(start.year, start.month, 1), t1):  # the last run trues up the last period
        runs.run(known_on(h, m), m)
    lines = addon_lines(runs)
    # Billed from the activation day to the term end, once, in pieces that add up to the whole.
    assert min(s for _, _, s, _ in lines) == day and max(e for _, _, _, e in lines) == t1
    whole = charge(price, quantity, "USD", anchor=start, since=start, start=day, end=t1)
    assert sum(Decimal(a) for _, a, _, _ in lines) == whole.amount
    # The first piece is the exact proration: days over the days of the anchor month.
    _, first, s, e = min(lines, key=lambda ln: ln[2])
    assert (
        Decimal(first)
        == charge(price, quantity, "USD", anchor=start, since=start, start=s, end=e).amount
    )
