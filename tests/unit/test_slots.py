"""Seat slots as bands (tester report item 1: the cost of a quote, a preview or a run grew with
the seat count): the bands read exactly like the slot-by-slot mapping they replace, and their size
depends on the events, never on the number of seats."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from seatgate.core.domain import calendar
from seatgate.core.domain.billing import (
    History,
    PlanChange,
    Purchase,
    draft_invoices,
    owed,
    purchase_quote,
)
from seatgate.core.domain.bounds import MAX_SEATS
from seatgate.core.domain.model import Contract
from seatgate.core.domain.slots import Interval, Rect, SlotBands, normalize

D = dt.date


def contract(quantity: int, **terms: object) -> Contract:
    values: dict[str, object] = dict(
        id=1,
        account="acme",
        product="salesforce",
        plan="standard",
        quantity=quantity,
        unit_price=Decimal("25.00"),
        currency="USD",
        frequency="monthly",
        term_start=D(2026, 1, 1),
        term_months=12,
        channel="order_form",
        mode="auto_expand",
    )
    values.update(terms)
    return Contract(**values)  # type: ignore[arg-type]


days = st.dates(min_value=D(2026, 1, 1), max_value=D(2026, 3, 1))
rects = st.lists(
    st.tuples(st.integers(1, 12), st.integers(0, 6), days, days).map(
        lambda t: (t[0], t[0] + t[1], (min(t[2], t[3]), max(t[2], t[3])))
    ),
    max_size=8,
)


def slot_by_slot(items: list[Rect]) -> dict[int, list[Interval]]:
    per: dict[int, list[Interval]] = {}
    for lo, hi, span in items:
        for n in range(lo, hi + 1):
            per.setdefault(n, []).append(span)
    return {n: v for n, spans in per.items() if (v := normalize(spans))}


@settings(max_examples=300, deadline=None)
@given(items=rects)
def test_bands_read_as_the_slot_by_slot_mapping(items: list[Rect]) -> None:
    bands = SlotBands.of(items)
    assert dict(bands) == slot_by_slot(items)
    assert len(bands) == len(slot_by_slot(items))
    # Disjoint, in slot order, and adjacent bands differ in their days (else they are one).
    for (_, hi1, d1), (lo2, _, d2) in itertools.pairwise(bands.bands):
        assert hi1 < lo2 and (hi1 + 1 < lo2 or d1 != d2)


@settings(max_examples=100, deadline=None)
@given(items=rects, lift=st.integers(0, MAX_SEATS))
def test_the_number_of_bands_does_not_grow_with_the_slots(items: list[Rect], lift: int) -> None:
    # The same rectangles, each made ``lift`` slots taller: as many bands, whatever the height.
    taller = [(lo, hi + lift, span) for lo, hi, span in items]
    assert len(SlotBands.of(taller).bands) <= 2 * len(items)


ledgers = st.lists(st.tuples(days, st.integers(0, 8)), max_size=6).map(sorted)


@settings(max_examples=60, deadline=None)
@given(ledger=ledgers, bought=st.lists(st.tuples(days, st.integers(1, 5)), max_size=3))
def test_a_million_seats_cost_as_many_bands_and_lines_as_three(
    ledger: list[tuple[dt.date, int]], bought: list[tuple[dt.date, int]]
) -> None:
    """The same events on a 3-seat and a 1,000,000-seat contract (the ledger lifted by the
    difference): the same number of bands and lines, and the amounts scale exactly."""
    lift = MAX_SEATS - 3 - 15

    def history(quantity: int, extra: int) -> History:
        return History(
            contract=contract(quantity),
            charge_model="per_seat",
            ledger=[(d, n + extra) for d, n in ledger],
            purchases=[Purchase(i + 1, d, q, Decimal("25.00")) for i, (d, q) in enumerate(bought)],
        )

    small, big = history(3, 0), history(3 + lift, lift)
    for span in calendar.periods_of_term(small.contract, 0)[:3]:
        a, b = owed(small, 0, span), owed(big, 0, span)
        assert set(a) == set(b)
        assert [len(a[k].bands) for k in a] == [len(b[k].bands) for k in a]
    month = D(2026, 2, 1)
    (few,) = draft_invoices([small], month, {}, {}, {"acme": 1})
    (many,) = draft_invoices([big], month, {}, {}, {"acme": 1})
    assert len(few.lines) == len(many.lines)
    assert many.total.amount - few.total.amount == Decimal(lift) * 25


def test_the_purchase_summary_of_a_million_seat_contract() -> None:
    """Tester report item 1: 10 seats bought on 2026-02-10 on a monthly contract of 999,990 seats
    from 2026-01-01: 19/28 of February (169.64) and ten full months (2,500.00)."""
    h = History(contract=contract(MAX_SEATS - 10, mode="hard_cap"), charge_model="per_seat")
    at = dt.datetime(2026, 2, 10, 12, tzinfo=dt.UTC)
    assert purchase_quote(h, at, 10, Decimal("25.00"), [], {}).amount == Decimal("2669.64")
    (draft,) = draft_invoices([h], D(2026, 1, 1), {}, {}, {"acme": 1})
    assert [(ln.kind, ln.quantity, ln.amount.amount) for ln in draft.lines] == [
        ("base", MAX_SEATS - 10, Decimal("24999750.00"))
    ]


def test_a_plan_change_on_a_million_seats_is_one_line() -> None:
    h = History(
        contract=contract(MAX_SEATS, mode="hard_cap"),
        charge_model="per_seat",
        plan_changes=[PlanChange(1, D(2026, 1, 16), "premium", "per_seat", Decimal("40.00"))],
    )
    (draft,) = draft_invoices([h], D(2026, 1, 1), {}, {}, {"acme": 1})
    assert [(ln.kind, ln.quantity, ln.start, ln.end) for ln in draft.lines] == [
        ("base", MAX_SEATS, D(2026, 1, 1), D(2026, 1, 16)),
        ("plan_change", MAX_SEATS, D(2026, 1, 16), D(2026, 2, 1)),
    ]
