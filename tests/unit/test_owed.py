"""What a contract owes (``owed``) and what its runs invoice, from a :class:`History` alone (no
database): issue 11 items 2, 3, 4, 5, 7 and 12, each a right value and a property of its kind."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import attrs
from billing_runs import Runs
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from seatgate.core.domain import calendar
from seatgate.core.domain.billing import (
    History,
    PlanChange,
    Purchase,
    Ticket,
    Uninstall,
    owed,
    plan_change_quote,
    purchase_quote,
)
from seatgate.core.domain.calendar import add_months
from seatgate.core.domain.model import Contract
from seatgate.core.domain.pricing import charge

D = dt.date
UTC = dt.UTC


def at(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, 9, tzinfo=UTC)


def contract(**terms: object) -> Contract:
    values: dict[str, object] = dict(
        id=1,
        account="acme",
        product="salesforce",
        plan="standard",
        quantity=10,
        unit_price=Decimal("25.00"),
        currency="USD",
        frequency="monthly",
        term_start=D(2026, 1, 1),
        term_months=12,
        channel="order_form",
        mode="hard_cap",
    )
    values.update(terms)
    return Contract(**values)  # type: ignore[arg-type]


def kinds(runs: Runs, month: str) -> list[tuple[str, str, dt.date, dt.date]]:
    return [
        (ln.kind, str(ln.amount.amount), ln.start, ln.end) for m, ln in runs.issued if m == month
    ]


def months(first: dt.date, last: dt.date) -> list[dt.date]:
    out = [first]
    while out[-1] < last:
        out.append(add_months(out[-1], 1))
    return out


# -- item 2: overage only from the overage-billing date ----------------------------------------------


def overage_history(ledger: list[tuple[dt.date, int]]) -> History:
    """hard_cap, 2 seats, from 2025-10-01 (in force at enablement), overage billed from
    2026-05-04."""
    return History(
        contract=contract(quantity=2, term_start=D(2025, 10, 1)),
        charge_model="per_seat",
        ledger=ledger,
        overage_begins=D(2026, 5, 4),
    )


def test_an_account_out_of_overage_before_the_overage_date_is_never_billed_for_it() -> None:
    # 3 users grandfathered in January 2026, the third unassigned on 2026-04-01.
    h = overage_history([(D(2026, 1, 10), 3), (D(2026, 4, 1), 2)])
    runs = Runs()
    runs.run_months(lambda _: h, D(2026, 1, 1), D(2026, 7, 1))
    assert [k for k, *_ in runs.issued if k in ("2026-05", "2026-06")]
    assert {ln.kind for _, ln in runs.issued} == {"base"}
    assert runs.total_of("2026-05") == runs.total_of("2026-06") == Decimal("50.00")


def test_three_users_still_held_on_the_overage_date_are_one_seat_of_overage_from_that_day() -> None:
    h = overage_history([(D(2026, 1, 10), 3)])
    runs = Runs()
    runs.run_months(lambda _: h, D(2026, 1, 1), D(2026, 6, 1))
    assert kinds(runs, "2026-05") == [
        ("base", "50.00", D(2026, 5, 1), D(2026, 6, 1)),
        ("overage", "22.58", D(2026, 5, 4), D(2026, 6, 1)),  # 25.00 x 28/31
    ]
    assert kinds(runs, "2026-06")[-1] == ("overage", "25.00", D(2026, 6, 1), D(2026, 7, 1))


ledgers = st.lists(
    st.tuples(st.dates(min_value=D(2025, 10, 1), max_value=D(2027, 3, 1)), st.integers(0, 6)),
    max_size=8,
).map(sorted)


@settings(max_examples=150, deadline=None)
@given(
    ledger=ledgers,
    contracted=st.integers(1, 4),
    overage=st.dates(min_value=D(2025, 11, 1), max_value=D(2027, 1, 1)),
    term=st.sampled_from([1, 3, 12]),
)
def test_overage_counts_only_seats_held_on_or_after_the_overage_date(
    ledger: list[tuple[dt.date, int]], contracted: int, overage: dt.date, term: int
) -> None:
    c = contract(quantity=contracted, term_start=D(2025, 10, 1), term_months=term)
    h = History(contract=c, charge_model="per_seat", ledger=ledger, overage_begins=overage)
    held_from = [h.assigned_before(overage)] + [n for d, n in ledger if d >= overage]
    for month in months(D(2025, 10, 1), D(2027, 3, 1)):
        j = calendar.term_index(c, month)
        for span in calendar.periods_of_term(c, j):
            slots = owed(h, j, span)
            spans = [
                iv
                for key, per in slots.items()
                if key[0] == "overage"
                for v in per.values()
                for iv in v
            ]
            assert all(s >= overage for s, _ in spans)
            if max(held_from) <= contracted:
                assert spans == []
            # Never more seats of overage than were held above the contract from that date.
            most = max(held_from) - contracted
            for s, _ in spans:
                n = sum(
                    1
                    for key, per in slots.items()
                    if key[0] == "overage"
                    for iv in per.values()
                    if any(a <= s < b for a, b in iv)
                )
                assert n <= most


# -- item 3: a final invoice carries everything not yet invoiced -------------------------------------


def test_seats_bought_on_an_annual_contract_are_invoiced_by_the_next_monthly_run() -> None:
    c = contract(frequency="annual")
    bought = Purchase(7, D(2026, 7, 17), 3, Decimal("25.00"))
    h0 = History(contract=c, charge_model="per_seat")
    h1 = attrs.evolve(h0, purchases=[bought])
    h2 = attrs.evolve(h1, uninstalls=[Uninstall(D(2027, 1, 1), None, True)])
    assert (
        purchase_quote(
            h0, at(D(2026, 7, 17)), 3, Decimal("25.00"), [(D(2026, 1, 1), D(2027, 1, 1))], {}
        )
        is not None
    )
    runs = Runs()
    runs.run(h0, D(2026, 1, 1))
    for month in months(D(2026, 2, 1), D(2026, 7, 1)):
        runs.run(h0, month)
    runs.run(h2, D(2026, 8, 1))  # the purchase, the uninstall and its cancellation ticket
    assert kinds(runs, "2026-08") == [
        ("seats_purchased", "411.29", D(2026, 7, 17), D(2027, 1, 1)),  # what the summary showed
    ]
    runs.run_months(lambda _: h2, D(2026, 9, 1), D(2027, 3, 1))
    assert runs.total == Decimal("3000.00") + Decimal("411.29")


def test_a_credit_from_a_policy_revision_reaches_the_final_invoice() -> None:
    # Overage billed from 2026-02-02 (the first revision), then the date moves to 2026-05-04;
    # the month-to-month contract has ended (cancelled) by the time the revision is known.
    c = contract(quantity=2, channel="self_serve", term_months=1, term_start=D(2026, 1, 1))
    early = History(
        contract=c,
        charge_model="per_seat",
        ledger=[(D(2025, 12, 1), 3)],
        uninstalls=[Uninstall(D(2026, 4, 1), None, True)],
        overage_begins=D(2026, 2, 2),
    )
    late = attrs.evolve(early, overage_begins=D(2026, 5, 4))
    runs = Runs()
    runs.run_months(lambda _: early, D(2026, 1, 1), D(2026, 4, 1))
    assert runs.total == Decimal("150.00") + Decimal("24.11") + Decimal("25.00")  # Feb, Mar
    runs.run(late, D(2026, 9, 1))  # months later: the final invoice carries the credit
    assert runs.total == Decimal("150.00")


events = st.lists(
    st.tuples(
        st.integers(0, 700),  # day offset from the start
        st.sampled_from(["held", "buy", "plan", "revision"]),
        st.integers(0, 6),
    ),
    max_size=10,
)


@settings(max_examples=60, deadline=None)
@given(
    start=st.dates(min_value=D(2025, 10, 1), max_value=D(2026, 6, 30)),
    frequency=st.sampled_from(["monthly", "quarterly", "semiannual", "annual"]),
    term=st.sampled_from([1, 6, 12]),
    mode=st.sampled_from(["hard_cap", "auto_expand"]),
    channel=st.sampled_from(["order_form", "self_serve"]),
    happenings=events,
    stop_term=st.integers(1, 3),
)
def test_the_invoices_of_a_contract_that_ends_add_up_to_everything_it_owed(
    start: dt.date,
    frequency: str,
    term: int,
    mode: str,
    channel: str,
    happenings: list[tuple[int, str, int]],
    stop_term: int,
) -> None:
    c = contract(
        term_start=start, frequency=frequency, term_months=term, mode=mode, channel=channel,
        quantity=2,
    )  # fmt: skip
    stop = calendar.term_start(c, stop_term)
    final = History(
        contract=c,
        charge_model="per_seat",
        overage_begins=start + dt.timedelta(days=60),
        uninstalls=[Uninstall(stop, None, True)],
    )
    timeline: list[tuple[dt.date, History]] = []  # what is known from each day
    ledger: list[tuple[dt.date, int]] = []
    bought: list[Purchase] = []
    changes: list[PlanChange] = []
    overage = final.overage_begins
    for k, (offset, what, n) in enumerate(sorted(happenings)):
        day = start + dt.timedelta(days=offset)
        if day >= stop:
            break
        if what == "held":
            ledger.append((day, n))
        elif what == "buy" and n:
            bought.append(Purchase(k + 1, day, n, Decimal("25.00")))
        elif what == "plan":
            plan = "premium" if n % 2 else "standard"  # back to the contracted plan too
            changes.append(PlanChange(k + 1, day, plan, "per_seat", Decimal("40.00")))
        elif what == "revision":
            overage = day + dt.timedelta(days=30 * n)
        final = attrs.evolve(
            final,
            ledger=list(ledger),
            purchases=list(bought),
            plan_changes=list(changes),
            overage_begins=overage,
        )
        timeline.append((day, final))

    def known(month: dt.date) -> History:
        seen = [h for day, h in timeline if day < month]
        return seen[-1] if seen else attrs.evolve(final, ledger=[], purchases=[], plan_changes=[])

    runs = Runs()
    runs.run_months(known, D(start.year, start.month, 1), add_months(stop, 2))
    fresh = Runs()  # everything known from the start: each period billed once, in full
    fresh.run_months(lambda _: final, D(start.year, start.month, 1), add_months(stop, 2))
    for j in range(stop_term):
        for span in calendar.periods_of_term(c, j):
            assert span in runs.billed[c.id]
            # What the period's invoices cover net of their credits is what it owes, slot by slot.
            assert coverage(runs, c.id, span[0]) == normalized(owed(final, j, span)), span
    assert all(span[0] < stop for span in runs.billed[c.id])
    # The money: the same, but for the rounding of lines grouping other slots (a cent a line).
    assert abs(runs.total - fresh.total) <= Decimal("0.01") * len(runs.issued)


Slots = dict[tuple[str, Decimal, int], dict[int, list[tuple[dt.date, dt.date]]]]


def normalized(
    slots: Slots,
) -> dict[tuple[tuple[str, Decimal, int], int], list[tuple[dt.date, dt.date]]]:
    out = {}
    for key, per in slots.items():
        for n, intervals in per.items():
            merged = _merge(intervals)
            if merged:
                out[(key, n)] = merged
    return out


def coverage(
    runs: Runs, cid: int, period_start: dt.date
) -> dict[tuple[tuple[str, Decimal, int], int], list[tuple[dt.date, dt.date]]]:
    """What the lines issued for a period cover, net of the credits."""
    days: dict[tuple[tuple[str, Decimal, int], int], dict[dt.date, int]] = {}
    for row in runs.prior.get((cid, period_start), []):
        key = (row["charge_kind"], row["unit_price"], row["ref"])
        for n in range(row["slot_lo"], row["slot_hi"] + 1):
            per_day = days.setdefault((key, n), {})
            day = row["start"]
            while day < row["end"]:
                per_day[day] = per_day.get(day, 0) + row["sign"]
                day += dt.timedelta(days=1)
    out = {}
    for slot, per_day in days.items():
        assert all(v in (0, 1) for v in per_day.values()), (slot, per_day)
        covered = sorted(d for d, v in per_day.items() if v == 1)
        merged = _merge([(d, d + dt.timedelta(days=1)) for d in covered])
        if merged:
            out[slot] = merged
    return out


def _merge(intervals: list[tuple[dt.date, dt.date]]) -> list[tuple[dt.date, dt.date]]:
    out: list[tuple[dt.date, dt.date]] = []
    for s, e in sorted(iv for iv in intervals if iv[0] < iv[1]):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(e, out[-1][1]))
        else:
            out.append((s, e))
    return out


# -- item 4: selecting the contracted plan again brings its terms back -------------------------------


def test_back_on_the_contracted_plan_the_contract_price_applies_again() -> None:
    c = contract(unit_price=Decimal("20.00"))  # negotiated 20.00; standard lists at 25.00
    h = History(
        contract=c,
        charge_model="per_seat",
        plan_changes=[
            PlanChange(1, D(2026, 1, 10), "premium", "per_seat", Decimal("40.00")),
            PlanChange(2, D(2026, 1, 20), "standard", "per_seat", Decimal("25.00")),
        ],
    )
    runs = Runs()
    runs.run(History(contract=c, charge_model="per_seat"), D(2026, 1, 1))
    runs.run(h, D(2026, 2, 1))
    runs.run(h, D(2026, 3, 1))
    assert kinds(runs, "2026-03") == [("base", "200.00", D(2026, 3, 1), D(2026, 4, 1))]
    # January: 10 days on premium at its then-listed 40.00 instead of the contract's 20.00
    # (charged, and those days of the contract credited), the rest at 20.00 — never at 25.00.
    premium = charge(
        Decimal("40.00"), 10, "USD", anchor=c.term_start, start=D(2026, 1, 10), end=D(2026, 1, 20)
    ).amount
    credit = charge(
        Decimal("20.00"), 10, "USD", anchor=c.term_start, start=D(2026, 1, 10), end=D(2026, 1, 20)
    ).amount
    assert (premium, credit) == (Decimal("129.03"), Decimal("64.52"))
    assert (
        runs.total_of("2026-01") + runs.total_of("2026-02") == Decimal("400.00") + premium - credit
    )


# -- item 5: what is shown is what is billed ---------------------------------------------------------


def test_a_plan_change_quotes_the_users_its_invoice_bills() -> None:
    # auto_expand, 2 seats; 4 users on 2026-01-05, 2 removed on 01-20; premium on 02-01.
    c = contract(quantity=2, mode="auto_expand")
    h = History(
        contract=c, charge_model="per_seat", ledger=[(D(2026, 1, 5), 4), (D(2026, 1, 20), 2)]
    )
    users, shown = plan_change_quote(h, D(2026, 2, 1), Decimal("40.00"), "per_seat")
    assert (users, str(shown.amount)) == (4, "160.00")  # the term's peak: removing users
    changed = attrs.evolve(
        h, plan_changes=[PlanChange(1, D(2026, 2, 1), "premium", "per_seat", Decimal("40.00"))]
    )
    runs = Runs()
    runs.run(h, D(2026, 1, 1))
    runs.run(changed, D(2026, 2, 1))
    feb = [ln for m, ln in runs.issued if m == "2026-02" and ln.start == D(2026, 2, 1)]
    assert [(ln.kind, ln.quantity, str(ln.amount.amount)) for ln in feb] == [
        ("plan_change", 4, "160.00")
    ]


@settings(max_examples=40, deadline=None)
@given(
    ledger=ledgers,
    bought_on=st.dates(min_value=D(2025, 9, 1), max_value=D(2026, 12, 31)),
    quantity=st.integers(1, 5),
    mode=st.sampled_from(["hard_cap", "auto_expand"]),
    frequency=st.sampled_from(["monthly", "quarterly", "annual"]),
    plan=st.sampled_from([None, "premium", "standard"]),
)
def test_a_seat_purchase_quotes_what_the_invoices_then_bill(
    ledger: list[tuple[dt.date, int]],
    bought_on: dt.date,
    quantity: int,
    mode: str,
    frequency: str,
    plan: str | None,
) -> None:
    c = contract(quantity=2, mode=mode, frequency=frequency, term_start=D(2025, 10, 1))
    changes = [PlanChange(9, D(2025, 11, 1), plan, "per_seat", Decimal("40.00"))] if plan else []
    before = History(
        contract=c,
        charge_model="per_seat",
        ledger=[(d, n) for d, n in ledger if d < bought_on],
        plan_changes=changes,
        overage_begins=D(2026, 5, 4),
    )
    buy = at(bought_on)
    # The world where nobody buys and the one where the purchase happens: same runs until then.
    without, with_ = Runs(), Runs()
    first = D(2025, 10, 1)
    for month in months(first, D(bought_on.year, bought_on.month, 1)):
        without.run(before, month)
        with_.run(before, month)
    j = calendar.term_index(c, bought_on)
    billed = with_.billed[c.id]
    shown = purchase_quote(before, buy, quantity, Decimal("25.00"), billed, with_.prior)
    after = attrs.evolve(
        before,
        purchases=[Purchase(1, bought_on, quantity, Decimal("25.00"))],
        quantity_changes=[(buy, 2, 2 + quantity)],
    )
    term_end = calendar.term_start(c, j + 1)
    for month in months(
        add_months(D(bought_on.year, bought_on.month, 1), 1), add_months(term_end, 1)
    ):
        without.run(before, month)
        with_.run(after, month)

    def of_the_term(runs: Runs) -> Decimal:
        t0 = calendar.term_start(c, j)
        return sum(
            (ln.amount.amount for m, ln in runs.issued if t0 <= ln.period_start < term_end),
            Decimal("0"),
        )

    assume(bought_on >= c.term_start or j == 0)
    assert of_the_term(with_) - of_the_term(without) == shown.amount


# -- item 7: a renewal adjustment --------------------------------------------------------------------


def renewal_history(ticket: Ticket | None) -> History:
    """10 contracted, quarterly, a year from 2026-01-01; 5 bought in March; 15 users, cut to 8 in
    June."""
    c = contract(frequency="quarterly", mode="auto_expand")
    return History(
        contract=c,
        charge_model="per_seat",
        quantity_changes=[(at(D(2026, 3, 2)), 10, 15)],
        ledger=[(D(2026, 3, 2), 15), (D(2026, 6, 10), 8)],
        purchases=[Purchase(1, D(2026, 3, 2), 5, Decimal("25.00"))],
        tickets=[] if ticket is None else [ticket],
    )


def test_without_a_ticket_the_renewal_bills_the_seats_of_the_term() -> None:
    runs = Runs()
    runs.run(renewal_history(None), D(2027, 1, 1))
    assert runs.total_of("2027-01") == Decimal("1125.00")


def test_with_a_renewal_adjustment_the_renewal_bills_the_users_held() -> None:
    opened = Ticket(1, "renewal_adjustment", D(2026, 6, 12))
    h = renewal_history(opened)
    assert h.quantity_before(D(2027, 1, 1)) == 8  # max(contracted at renewal, users held)
    assert h.contracted_on(at(D(2026, 12, 31))) == 15
    assert h.contracted_on(at(D(2027, 1, 1))) == 8
    runs = Runs()
    runs.run(h, D(2027, 1, 1))
    assert runs.total_of("2027-01") == Decimal("600.00")
    # Support sets the renewal quantity: 10 -> max(10, 8 held).
    resolved = renewal_history(attrs.evolve(opened, renewal_quantity=10))
    runs = Runs()
    runs.run(resolved, D(2027, 1, 1))
    assert runs.total_of("2027-01") == Decimal("750.00")
    # Support sets 5 while 8 are held: the renewal bills the 8 (3 above, auto_expand).
    low = renewal_history(attrs.evolve(opened, renewal_quantity=5))
    runs = Runs()
    runs.run(low, D(2027, 1, 1))
    assert runs.total_of("2027-01") == Decimal("600.00")


# -- item 12: uninstall, reinstall -------------------------------------------------------------------


def test_an_install_before_the_uninstall_takes_effect_withdraws_it() -> None:
    c = contract(term_months=3)
    withdrawn = History(
        contract=c,
        charge_model="per_seat",
        uninstalls=[Uninstall(D(2026, 4, 1), D(2026, 3, 10), True)],
    )
    assert withdrawn.gaps() == [] and withdrawn.billing_stops() is None
    ended = attrs.evolve(withdrawn, uninstalls=[Uninstall(D(2026, 4, 1), D(2026, 5, 16), True)])
    assert ended.gaps() == [(D(2026, 4, 1), D(2026, 5, 16))]
    runs = Runs()
    runs.run_months(lambda _: ended, D(2026, 4, 1), D(2026, 6, 1))
    assert runs.total_of("2026-04") == Decimal("0")
    # A new purchase from the reinstall: 16 of May's 31 days, then June in full.
    assert kinds(runs, "2026-05") == [("base", "129.03", D(2026, 5, 16), D(2026, 6, 1))]
    assert kinds(runs, "2026-06") == [("base", "250.00", D(2026, 6, 1), D(2026, 7, 1))]


# -- the kinds of items 4, 5 and 7, as properties ----------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    changes=st.lists(
        st.tuples(
            st.dates(min_value=D(2026, 1, 1), max_value=D(2026, 12, 31)),
            st.sampled_from(["standard", "premium"]),
        ),
        max_size=5,
    ),
    day=st.dates(min_value=D(2026, 1, 1), max_value=D(2026, 12, 31)),
)
def test_on_the_contracted_plan_the_contract_terms_apply_whatever_came_before(
    changes: list[tuple[dt.date, str]], day: dt.date
) -> None:
    c = contract(unit_price=Decimal("20.00"))
    h = History(
        contract=c,
        charge_model="per_seat",
        plan_changes=[
            PlanChange(
                i + 1, when, plan, "per_seat", Decimal("25.00" if plan == "standard" else "40.00")
            )
            for i, (when, plan) in enumerate(sorted(changes))
        ],
    )
    j, span = calendar.period_containing(c, day)
    slots = owed(h, j, span)
    in_force = [plan for when, plan in sorted(changes) if when <= day]
    on_day = {
        key for key, per in slots.items() for iv in per.values() for a, b in iv if a <= day < b
    }
    if not in_force or in_force[-1] == "standard":
        assert on_day == {("base", Decimal("20.00"), 0)}  # the negotiated price, not 25.00
    else:
        assert {key[0] for key in on_day} == {"plan_change"}


@settings(max_examples=100, deadline=None)
@given(
    ledger=ledgers,
    changed_on=st.dates(min_value=D(2025, 10, 1), max_value=D(2026, 9, 1)),
    mode=st.sampled_from(["hard_cap", "auto_expand"]),
    frequency=st.sampled_from(["monthly", "quarterly"]),
)
def test_a_plan_change_quotes_what_its_next_full_period_bills(
    ledger: list[tuple[dt.date, int]], changed_on: dt.date, mode: str, frequency: str
) -> None:
    c = contract(quantity=2, mode=mode, frequency=frequency, term_start=D(2025, 10, 1))
    h = History(
        contract=c,
        charge_model="per_seat",
        ledger=[(d, n) for d, n in ledger if d <= changed_on],  # nothing changes afterwards
        overage_begins=D(2026, 5, 4),
    )
    _, shown = plan_change_quote(h, changed_on, Decimal("40.00"), "per_seat")
    changed = attrs.evolve(
        h, plan_changes=[PlanChange(1, changed_on, "premium", "per_seat", Decimal("40.00"))]
    )
    # The next period that starts after the change, billed in full under the new plan.
    j, (_, end) = calendar.period_containing(c, changed_on)
    k = calendar.term_index(c, end)
    nxt = next(p for p in calendar.periods_of_term(c, k) if p[0] == end)
    assume(nxt[1] == calendar.full_period(c, end)[1] and k == j)  # same term, a whole period
    slots = owed(changed, k, nxt)
    billed = sum(
        (
            charge(
                key[1],
                1,
                "USD",
                anchor=c.term_start,
                since=calendar.term_start(c, k),
                start=s,
                end=e,
            ).amount
            for key, per in slots.items()
            for iv in per.values()
            for s, e in iv
        ),
        Decimal("0"),
    )
    assert billed == shown.amount


@settings(max_examples=100, deadline=None)
@given(
    held=st.integers(0, 20),
    renewal_quantity=st.one_of(st.none(), st.integers(0, 20)),
    contracted=st.integers(1, 15),
)
def test_an_adjusted_renewal_bills_the_renewal_quantity_or_the_users_held(
    held: int, renewal_quantity: int | None, contracted: int
) -> None:
    c = contract(quantity=contracted, frequency="quarterly", term_months=3, mode="auto_expand")
    h = History(
        contract=c,
        charge_model="per_seat",
        ledger=[(D(2026, 1, 5), 20), (D(2026, 2, 1), held)],  # a peak of 20, then cut
        tickets=[Ticket(1, "renewal_adjustment", D(2026, 2, 2), renewal_quantity)],
    )
    runs = Runs()
    runs.run(h, D(2026, 4, 1))
    quantity = held if renewal_quantity is None else renewal_quantity
    assert runs.total_of("2026-04") == Decimal("75.00") * max(quantity, held)
    assert h.contracted_on(at(D(2026, 4, 1))) == quantity
