"""The assignment plan (``plan_assignment``) and the seats held as of an instant (the ledger
replay), without a database."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from seatgate.core.domain.seats import SeatCount, held_counts, plan_assignment, seats_held

UTC = dt.UTC
EMAILS = [f"u{i}@a.com" for i in range(8)]


def test_the_hard_cap_refuses_beyond_the_contract_in_order() -> None:
    users = {e: (i, True) for i, e in enumerate(EMAILS[:4])}
    plan = plan_assignment(EMAILS[:4], users, set(), SeatCount(2, 0, "hard_cap"))
    assert [e for _, e, _ in plan.new] == EMAILS[:2]
    assert plan.refused == [(EMAILS[2], "capacity_reached"), (EMAILS[3], "capacity_reached")]


def test_in_overage_nobody_is_added() -> None:
    users = {EMAILS[5]: (5, True)}
    plan = plan_assignment([EMAILS[5]], users, set(), SeatCount(2, 3, "hard_cap"))
    assert plan.new == [] and plan.refused == [(EMAILS[5], "in_overage")]


@settings(max_examples=300, deadline=None)
@given(
    wanted=st.lists(st.sampled_from(EMAILS), unique=True, max_size=8),
    known=st.sets(st.sampled_from(EMAILS)),
    inactive=st.sets(st.sampled_from(EMAILS)),
    held=st.sets(st.sampled_from(EMAILS)),
    contracted=st.integers(0, 6),
    extra=st.integers(0, 3),
    mode=st.sampled_from(["hard_cap", "auto_expand"]),
)
def test_an_assignment_never_goes_above_the_cap_and_keeps_the_order(
    wanted: list[str],
    known: set[str],
    inactive: set[str],
    held: set[str],
    contracted: int,
    extra: int,
    mode: str,
) -> None:
    users = {e: (EMAILS.index(e), e not in inactive) for e in known}
    held_ids = {EMAILS.index(e) for e in held & known}
    before = len(held_ids) + extra  # seats of users not asked about
    plan = plan_assignment(wanted, users, held_ids, SeatCount(contracted, before, mode))
    added = [e for _, e, _ in plan.new]
    assert plan.assigned == before + len(added)
    assert [n for *_, n in plan.new] == list(range(before + 1, plan.assigned + 1))
    if mode == "hard_cap":
        if before > contracted:
            assert added == []  # the overage lock
        else:
            assert plan.assigned <= contracted
    # Every user asked about is answered once: seated already, newly, or refused with a reason.
    answered = set(plan.already) | set(added) | {e for e, _ in plan.refused}
    assert answered == set(wanted)
    assert not set(added) & {e for e, _ in plan.refused}
    # In order: a user refused for the cap is never followed by one who got a seat.
    capped = [
        wanted.index(e) for e, why in plan.refused if why in ("capacity_reached", "in_overage")
    ]
    if capped:
        assert all(wanted.index(e) < min(capped) for e in added)


# -- the seats held as of an instant (issue 13, item 7) ---------------------------------------------

instants = st.integers(0, 20).map(
    lambda h: dt.datetime(2026, 1, 1, tzinfo=UTC) + dt.timedelta(hours=h)
)
rows = st.lists(
    st.tuples(instants, st.integers(0, 4), st.sampled_from(["assign", "grandfather", "unassign"])),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(ledger=rows, at=instants)
def test_the_seats_held_at_an_instant_are_the_writes_stamped_by_then_in_write_order(
    ledger: list[tuple[dt.datetime, int, str]], at: dt.datetime
) -> None:
    # The model: replay, in the order they were written, the rows stamped on or before `at`.
    model: set[int] = set()
    for when, user, action in ledger:
        if when <= at:
            (model.discard if action == "unassign" else model.add)(user)
    assert seats_held(ledger, at) == model
    # The counts over time agree with it at every instant a row is stamped with.
    counts = held_counts(ledger)
    assert [when for when, _ in counts] == sorted(when for when, _, _ in ledger)
    for when in {w for w, _, _ in ledger}:
        last = [n for w, n in counts if w == when][-1]
        assert last == len(seats_held(ledger, when))


@settings(max_examples=300, deadline=None)
@given(
    contracted=st.integers(0, 8),
    assigned=st.integers(0, 10),
    more=st.integers(0, 8),
    mode=st.sampled_from(["hard_cap", "auto_expand"]),
)
def test_room_for_n_seats_is_no_refusal_for_any_n_users_in_any_order(
    contracted: int, assigned: int, more: int, mode: str
) -> None:
    """``SeatCount.room_for``: the plan of ``more`` new active users refuses none of them,
    whichever come first (a sync seats its users with their role only then)."""
    count = SeatCount(contracted, assigned, mode)
    wanted = EMAILS[:more]
    users = {e: (i, True) for i, e in enumerate(wanted)}
    for order in (wanted, wanted[::-1]):
        plan = plan_assignment(order, users, set(), count)
        assert count.room_for(more) == (plan.refused == [])
    assert count.room_for(more) == (
        more == 0 or mode == "auto_expand" or assigned + more <= contracted
    )
