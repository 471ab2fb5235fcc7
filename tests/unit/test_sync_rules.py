"""The sync engine's rules (``core/domain/sync.py``) without a database or a CRM: page validation,
the diff with the duplicate-record rule and the per-product role gain, the deletion guard, the
lookback and the cursor (issue 12 items 1-4)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seatgate.core.domain.records import ExternalUser
from seatgate.core.domain.sync import (
    Known,
    LinkState,
    Staged,
    deletion_guard,
    gains_role,
    incremental_since,
    next_cursor,
    plan_changes,
    rename_batches,
    validate_page,
)

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
AGENT = frozenset({"Agent"})


def rec(
    ext: str, email: str = "sophie@x.example", *, active: bool = True, roles: tuple[str, ...] = ()
) -> Staged:
    return Staged(ext, email, "Sophie", active, roles)


# -- validation ------------------------------------------------------------------------------------
def test_validation_quarantines_each_bad_kind_and_keeps_ids_of_bad_emails_seen() -> None:
    seen: set[str] = set()
    users = [
        ExternalUser("a", "A@X.example", modified_at=T0),
        ExternalUser("", "b@x.example"),
        ExternalUser("   ", "c@x.example"),
        ExternalUser("x" * 101, "d@x.example"),
        ExternalUser("a", "e@x.example"),
        ExternalUser("f", None),
        ExternalUser("g", "not an address", modified_at=T0 + dt.timedelta(seconds=5)),
        ExternalUser("h", "Sophie@X.Example", roles=("B", "A", "B")),
    ]
    valid, bad, newest, read = validate_page(users, seen)
    assert read == 8 and newest == T0 + dt.timedelta(seconds=5)
    assert [(v.ext, v.email) for v in valid] == [("a", "a@x.example"), ("h", "sophie@x.example")]
    assert valid[1].roles == ("A", "B")
    assert [q.reason for q in bad] == [
        "missing_id", "bad_id", "bad_id", "duplicate_id", "missing_email", "bad_email",
    ]  # fmt: skip
    assert seen == {"a", "f", "g", "h"}  # a bad email never makes its user look deleted


def test_a_record_its_adapter_could_not_read_is_quarantined_seen_and_moves_no_stamp() -> None:
    """``ExternalUser.problem``: quarantined ``malformed_record`` under its id, with the problem
    as its detail; its id is seen (a full pull does not deactivate its user); its stamp, maybe
    what was unreadable, never moves the cursor. Without a usable id it stays missing/bad id."""
    seen: set[str] = set()
    later = T0 + dt.timedelta(hours=1)
    users = [
        ExternalUser("a", "a@x.example", modified_at=T0),
        ExternalUser("b", "b@x.example", modified_at=later, problem="active 'maybe' is not"),
        ExternalUser("c", None, problem="email is no text"),
        ExternalUser("", "d@x.example", problem="x"),
        ExternalUser("x" * 101, None, problem="x"),
        ExternalUser("a", "a@x.example", problem="x"),
    ]
    valid, bad, newest, read = validate_page(users, seen)
    assert read == 6 and newest == T0
    assert [v.ext for v in valid] == ["a"]
    assert [(q.ext, q.email, q.reason, q.detail) for q in bad] == [
        ("b", "b@x.example", "malformed_record", "active 'maybe' is not"),
        ("c", "", "malformed_record", "email is no text"),
        ("", "d@x.example", "missing_id", ""),
        ("", "", "bad_id", ""),
        ("a", "a@x.example", "duplicate_id", ""),
    ]
    assert seen == {"a", "b", "c"}


def test_two_emails_differing_in_capitals_are_one_person_not_a_validation_matter() -> None:
    valid, bad, _, _ = validate_page(
        [ExternalUser("1", "sophie@x.example"), ExternalUser("2", "Sophie@X.Example")], set()
    )
    assert [v.email for v in valid] == ["sophie@x.example"] * 2 and bad == []


# -- the duplicate-record rule (item 1) --------------------------------------------------------------
def test_first_full_pull_keeps_the_first_of_two_active_twins() -> None:
    plan = plan_changes([rec("1"), rec("2")], {}, {}, AGENT)
    assert [r.ext for r in plan.inserts] == ["1"]
    assert [(q.ext, q.reason) for q in plan.quarantined] == [("2", "duplicate_email")]


def test_active_wins_over_inactive_whatever_the_order() -> None:
    for order in ([rec("1", active=False), rec("2")], [rec("2"), rec("1", active=False)]):
        plan = plan_changes(order, {}, {}, AGENT)
        assert [r.ext for r in plan.inserts] == ["2"]
        assert [q.ext for q in plan.quarantined] == ["1"]


def linked_1(active: bool = True) -> dict[str, LinkState]:
    return {
        "1": LinkState(7, "sophie@x.example", "Sophie", active, active, (), roles=(), others=())
    }


def known_1(active: bool = True) -> dict[str, Known]:
    return {"sophie@x.example": Known(7, "Sophie", active, ("1", active, ()), roles=(), others=())}


def test_an_archived_twin_in_an_incremental_pull_never_touches_the_established_user() -> None:
    # HubSpot: the quarantined twin is archived; the incremental pull returns it alone.
    plan = plan_changes([rec("2", active=False)], {}, known_1(), AGENT)
    assert plan.updates == [] and plan.links == [] and plan.unlinks == []
    assert plan.deactivating == set() and 7 not in plan.touched
    assert [(q.ext, q.reason) for q in plan.quarantined] == [("2", "duplicate_email")]


def test_between_two_active_records_the_established_link_stays() -> None:
    # Incremental: only the newcomer; full: both, newcomer first. Same answer.
    inc = plan_changes([rec("2")], {}, known_1(), AGENT)
    full = plan_changes([rec("2"), rec("1")], linked_1(), known_1(), AGENT, seen={"1", "2"})
    for plan in (inc, full):
        assert [q.ext for q in plan.quarantined] == ["2"]
        assert plan.links == [] and plan.unlinks == [] and plan.inserts == []


def test_a_new_active_record_takes_over_from_a_deactivated_established_one() -> None:
    # Salesforce: the old User deactivated, a new active User with the same email.
    inc = plan_changes([rec("2")], {}, known_1(active=False), AGENT)
    full = plan_changes(
        [rec("1", active=False), rec("2")],
        linked_1(active=False),
        known_1(active=False),
        AGENT,
        seen={"1", "2"},
    )
    for plan in (inc, full):
        assert plan.links == [("2", 7)] and plan.unlinks == ["1"]
        assert plan.touched[7].active is True and plan.deactivating == set()
        assert plan.gained == {}  # no activated role here
    assert inc.quarantined == [] and [q.ext for q in full.quarantined] == ["1"]


def test_a_full_pull_that_no_longer_returns_the_established_record_lets_the_twin_in() -> None:
    plan = plan_changes([rec("2")], {}, known_1(), AGENT, seen={"2"})
    assert plan.links == [("2", 7)] and plan.unlinks == ["1"] and plan.quarantined == []


def test_a_linked_record_moving_to_a_taken_email_is_quarantined() -> None:
    linked = {"9": LinkState(3, "old@x.example", "Old", True, True, (), roles=(), others=())}
    known = {"sophie@x.example": Known(7, "Sophie", True, None, roles=(), others=())}
    plan = plan_changes([rec("9")], linked, known, AGENT)
    assert [(q.ext, q.reason) for q in plan.quarantined] == [("9", "email_taken")]
    assert (
        plan.updates == [] and plan.standing[3].email == "old@x.example" and 3 not in plan.touched
    )


records = st.lists(
    st.tuples(st.sampled_from("abcdef"), st.booleans()),
    min_size=1,
    max_size=6,
    unique_by=lambda t: t[0],
)


@settings(max_examples=200, deadline=None)
@given(records, st.randoms(use_true_random=False))
def test_the_winner_among_new_twins_depends_on_activity_not_on_order_when_one_is_active(
    recs: list[tuple[str, bool]], rnd: object
) -> None:
    staged = [rec(ext, active=active) for ext, active in recs]
    plan = plan_changes(staged, {}, {}, AGENT)
    winner = plan.inserts[0]
    assert len(plan.inserts) == 1 and len(plan.quarantined) == len(staged) - 1
    if any(a for _, a in recs):
        assert winner.active
    # Once established, every later pull keeps it whatever the order of the others.
    linked = {
        winner.ext: LinkState(
            1, winner.email, "Sophie", winner.active, winner.active, (), roles=(), others=()
        )
    }
    known = {
        winner.email: Known(
            1, "Sophie", winner.active, (winner.ext, winner.active, ()), roles=(), others=()
        )
    }
    shuffled = list(staged)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    again = plan_changes(shuffled, linked, known, AGENT, seen={e for e, _ in recs})
    assert again.links == [] and again.unlinks == [] and again.inserts == []
    assert {q.ext for q in again.quarantined} == {e for e, _ in recs} - {winner.ext}


# -- the role gain, per product (item 2) -------------------------------------------------------------
def test_a_user_known_from_another_product_gains_this_products_seat() -> None:
    known = {
        "sophie@x.example": Known(7, "Sophie", True, None, roles=(), others=())
    }  # no link of this product
    plan = plan_changes([rec("v1", roles=("Agent",))], {}, known, AGENT)
    assert plan.links == [("v1", 7)] and plan.gained == {"sophie@x.example": 7}


def test_the_gain_is_from_this_links_roles_not_the_users() -> None:
    linked = {
        "v1": LinkState(
            7, "sophie@x.example", "Sophie", True, True, ("Agent",), roles=("Agent",), others=()
        )
    }
    assert plan_changes([rec("v1", roles=("Agent",))], linked, {}, AGENT).gained == {}
    linked = {
        "v1": LinkState(
            7, "sophie@x.example", "Sophie", True, True, ("Other",), roles=("Other",), others=()
        )
    }
    assert plan_changes([rec("v1", roles=("Agent",))], linked, {}, AGENT).gained == {
        "sophie@x.example": 7
    }


def test_gains_role() -> None:
    assert gains_role(True, ("Agent",), AGENT, had_role=False)
    assert not gains_role(True, ("Agent",), AGENT, had_role=True)
    assert not gains_role(False, ("Agent",), AGENT, had_role=False)
    assert not gains_role(True, ("Agent",), frozenset(), had_role=False)


# -- the deletion guard (item 3) ---------------------------------------------------------------------
def guard(**kw: object) -> str | None:
    args: dict[str, object] = dict(
        removing=0, active_before=4, usable_pulled=4, full=True, share=0.1, minimum=5, force=False
    )
    args.update(kw)
    return deletion_guard(**args)  # type: ignore[arg-type]


def test_an_empty_full_pull_halts_whatever_the_minimum() -> None:
    message = guard(removing=4, usable_pulled=0)
    assert message is not None and "no user" in message and "force" in message
    assert guard(removing=4, usable_pulled=0, force=True) is None


def test_removing_every_active_user_halts_below_the_minimum_and_in_incremental_pulls() -> None:
    assert guard(removing=4) is not None
    assert guard(removing=4, full=False) is not None
    assert guard(removing=3) is None  # 3 < minimum 5


def test_the_share_rule_holds_from_the_minimum() -> None:
    assert guard(active_before=100, usable_pulled=90, removing=10) is None  # not above 10%
    assert guard(active_before=100, usable_pulled=89, removing=11) is not None
    assert guard(active_before=100, usable_pulled=96, removing=4, share=0.01) is None  # < min


def test_no_active_user_nothing_to_guard() -> None:
    assert guard(active_before=0, usable_pulled=0) is None


# -- lookback and cursor (item 4) --------------------------------------------------------------------
@given(st.integers(0, 86_400))
def test_the_lookback_starts_before_the_cursor(seconds: int) -> None:
    assert incremental_since(T0, seconds) == T0 - dt.timedelta(seconds=seconds)


def test_the_cursor_never_passes_the_start_nor_moves_back() -> None:
    later = T0 + dt.timedelta(hours=1)
    assert next_cursor(None, later, T0) == T0
    assert next_cursor(T0, T0 - dt.timedelta(seconds=1), later) == T0
    assert next_cursor(T0, None, later) == T0
    assert next_cursor(None, None, T0) is None


@pytest.mark.parametrize("n", [1, 3])
def test_reapplying_what_is_applied_changes_nothing(n: int) -> None:
    staged = [rec(str(i), f"u{i}@x.example", roles=("Agent",)) for i in range(n)]
    linked = {
        r.ext: LinkState(i, r.email, r.name, True, True, r.roles, roles=r.roles, others=())
        for i, r in enumerate(staged)
    }
    plan = plan_changes(staged, linked, {}, AGENT)
    assert (plan.inserts, plan.updates, plan.link_updates, plan.gained) == ([], [], [], {})


def test_a_failed_runs_message_is_one_bounded_line_without_the_statement() -> None:
    from seatgate.core.services.sync import _message

    driver = Exception(
        "(psycopg.errors.UniqueViolation) duplicate key value violates unique constraint\n"
        "[SQL: INSERT INTO integration_users (email) VALUES (%(email_m0)s), ...]\n"
        "[parameters: {'email_m0': 'ann@x.example'}]"
    )
    message = _message(driver, lambda s: s)
    assert message == (
        "Exception: (psycopg.errors.UniqueViolation) duplicate key value violates unique constraint"
    )
    long = _message(RuntimeError("x" * 5000), lambda s: s)
    assert len(long) < 400 and long.endswith("…") and "\n" not in long


# -- the user row against the record (stale roles; an email left and taken in one pull) -----------
def test_a_stale_user_row_is_updated_though_its_link_is_current() -> None:
    link = LinkState(7, "sophie@x.example", "Sophie", True, True, ("Agent",), roles=(), others=())
    plan = plan_changes([rec("1", roles=("Agent",))], {"1": link}, {}, AGENT)
    assert plan.updates == [(7, rec("1", roles=("Agent",)))] and plan.link_updates == []
    assert plan.gained == {}  # the link held the role already: no new seat


def test_a_user_linked_to_two_connectors_shows_both_records_roles() -> None:
    """The user row shows the union of its records' roles in every connector (user_roles): the
    two connectors' runs leave it alone once it holds both, instead of overwriting each other."""
    link = LinkState(
        7, "sophie@x.example", "Sophie", True, True, ("Agent",), roles=("Agent",), others=("Sup",)
    )
    plan = plan_changes([rec("1", roles=("Agent",))], {"1": link}, {}, AGENT)
    assert plan.updates == [(7, rec("1", roles=("Agent", "Sup")))]
    settled = attrs.evolve(link, roles=("Agent", "Sup"))
    assert plan_changes([rec("1", roles=("Agent",))], {"1": settled}, {}, AGENT).updates == []
    known = {"sophie@x.example": Known(7, "Sophie", True, None, roles=("Sup",), others=("Sup",))}
    plan = plan_changes([rec("v1", roles=("Agent",))], {}, known, AGENT)
    assert plan.links == [("v1", 7)] and plan.updates == [(7, rec("v1", roles=("Agent", "Sup")))]


def test_an_email_left_in_this_pull_is_taken_by_a_twin_in_either_order() -> None:
    """r5 held dup@x and carries new5@x now; the twin r1 carries dup@x: r1 gets a user of its
    own, r5's user follows r5 — whatever the order, full or incremental."""
    linked = {"5": LinkState(7, "dup@x.example", "Sophie", True, True, (), roles=(), others=())}
    known = {"dup@x.example": Known(7, "Sophie", True, ("5", True, ()), roles=(), others=())}
    r5, r1 = rec("5", "new5@x.example"), rec("1", "dup@x.example")
    for order in ([r5, r1], [r1, r5]):
        for seen in (None, {"1", "5"}):
            plan = plan_changes(order, linked, known, AGENT, seen=seen)
            assert plan.quarantined == [] and plan.inserts == [r1] and plan.unlinks == []
            assert plan.updates == [(7, r5)] and plan.renamed == {7: "dup@x.example"}


def test_a_move_set_aside_keeps_its_email_from_the_twin() -> None:
    """r5's move is set aside (new5@x is another user's): its user keeps dup@x, so the twin r1
    loses to the established link, as before."""
    linked = {"5": LinkState(7, "dup@x.example", "Sophie", True, True, (), roles=(), others=())}
    known = {
        "dup@x.example": Known(7, "Sophie", True, ("5", True, ()), roles=(), others=()),
        "new5@x.example": Known(8, "Other", True, None, roles=(), others=()),
    }
    plan = plan_changes(
        [rec("5", "new5@x.example"), rec("1", "dup@x.example")], linked, known, AGENT
    )
    assert {(q.ext, q.reason) for q in plan.quarantined} == {
        ("5", "email_taken"),
        ("1", "duplicate_email"),
    }
    assert plan.inserts == [] and plan.updates == [] and plan.renamed == {}


@st.composite
def email_moves(draw: Any) -> list[tuple[int, str, str]]:
    """Users leaving distinct emails for distinct others: chains, cycles, fresh addresses."""
    n = draw(st.integers(0, 30))
    pool = [f"e{i}@x.example" for i in range(2 * n + 1)]
    news = draw(st.permutations(pool))[:n]
    return [
        (uid, f"e{uid}@x.example", new)
        for uid, new in enumerate(news)
        if new != f"e{uid}@x.example"
    ]


@settings(max_examples=300, deadline=None)
@given(email_moves(), st.integers(1, 8))
def test_rename_batches_keep_every_email_unique_between_transactions(
    moves: list[tuple[int, str, str]], size: int
) -> None:
    batches = rename_batches(moves, size)
    assert sorted(i for batch in batches for i in batch) == list(range(len(moves)))
    holds = {uid: old for uid, old, _ in moves}
    for batch in batches:
        for i in batch:  # one transaction: the store passes through placeholders
            holds[moves[i][0]] = moves[i][2]
        assert len(set(holds.values())) == len(holds)  # unique when it commits
        assert len(batch) <= size or _is_cycle(moves, batch)


def _is_cycle(moves: list[tuple[int, str, str]], batch: list[int]) -> bool:
    olds = {moves[i][1] for i in batch}
    return all(moves[i][2] in olds for i in batch)


def test_a_long_chain_is_written_from_its_end_in_batches() -> None:
    """u0 takes u1's email, u1 u2's ... and the last a fresh one: 2,500 renames, three
    batches of 1,000 at most, the last of the chain first."""
    moves = [(i, f"e{i}@x.example", f"e{i + 1}@x.example") for i in range(2500)]
    batches = rename_batches(moves, 1000)
    assert [len(b) for b in batches] == [1000, 1000, 500]
    assert batches[0][0] == 2499 and batches[-1][-1] == 0
