"""The entitlement decision (``decide``) on snapshots built by hand (no database).

Issue 11 item 9: a user who is not grandfathered and holds no seat is denied ``in_overage`` while
the account is in overage, whatever the phase from enablement on. Item 13: from the uninstall's
effective date every check answers ``uninstalled``, whatever ran. Item 16: a region the policy does
not list is enabled on the revision's latest enablement date.
"""

from __future__ import annotations

import datetime as dt

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seatgate.core.domain.entitlement import Snapshot, decide
from seatgate.core.domain.timeline import Revision, Timeline

UTC = dt.UTC
D = dt.date

POLICY = Timeline(
    [
        Revision(
            id="2026-01-06",
            published=D(2025, 9, 1),
            enablement={"UK": D(2025, 10, 4), "US": D(2025, 10, 25)},
            restrictions_begin=D(2026, 3, 16),
            overage_billing_begins=D(2026, 5, 4),
        )
    ]
)
PRE = dt.datetime(2025, 10, 20, tzinfo=UTC)
TRANSITION = dt.datetime(2026, 2, 1, tzinfo=UTC)
RESTRICTED = dt.datetime(2026, 3, 20, tzinfo=UTC)
BILLING = dt.datetime(2026, 6, 1, tzinfo=UTC)


def snapshot(**changes: object) -> Snapshot:
    """1 seat; ann and bob grandfathered (seated), cat added later without a seat."""
    base = Snapshot(
        account="acme",
        region="US",
        version=1,
        has_contract=True,
        contracted=1,
        enabled=True,
        users={"ann@a.com": (True, True), "bob@a.com": (True, True), "cat@a.com": (True, False)},
        assigned=2,
        grandfathered=frozenset({"ann@a.com", "bob@a.com"}),
        in_overage=True,
        as_of=TRANSITION,
    )
    return attrs.evolve(base, **changes)


def reason(snap: Snapshot, email: str, at: dt.datetime, feature: str = "cti") -> str:
    return decide(snap, "salesforce", email, feature, at, POLICY, None).reason


# -- item 9 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("at", [TRANSITION, RESTRICTED, BILLING], ids=lambda a: str(a.date()))
def test_a_user_added_while_in_overage_gets_no_grace(at: dt.datetime) -> None:
    snap = snapshot()
    assert reason(snap, "cat@a.com", at) == "in_overage"
    assert reason(snap, "ann@a.com", at) == "seated"


def test_out_of_overage_an_unseated_user_has_the_grace_of_the_transition() -> None:
    snap = snapshot(in_overage=False)
    decision = decide(snap, "salesforce", "cat@a.com", "cti", TRANSITION, POLICY, None)
    assert (decision.reason, decision.access_ends) == ("grace", D(2026, 3, 16))
    assert reason(snap, "cat@a.com", RESTRICTED) == "no_seat"


def test_a_grandfathered_user_whose_seat_was_taken_back_is_not_added_by_the_lock() -> None:
    snap = snapshot(users={"ann@a.com": (True, False), "cat@a.com": (True, False)})
    assert reason(snap, "ann@a.com", TRANSITION) == "grace"
    assert reason(snap, "cat@a.com", TRANSITION) == "in_overage"


def test_before_enablement_nothing_is_gated() -> None:
    assert reason(snapshot(), "cat@a.com", PRE) == "pre_enablement"


phases = st.sampled_from([TRANSITION, RESTRICTED, BILLING])


@settings(max_examples=200, deadline=None)
@given(
    active=st.booleans(),
    seated=st.booleans(),
    grandfathered=st.booleans(),
    overage=st.booleans(),
    at=phases,
    feature=st.sampled_from(["cti", "agent_sync", "managed_package"]),
)
def test_in_overage_only_seats_and_grandfathering_keep_a_user_working(
    active: bool,
    seated: bool,
    grandfathered: bool,
    overage: bool,
    at: dt.datetime,
    feature: str,
) -> None:
    snap = snapshot(
        users={"u@a.com": (active, seated)},
        grandfathered=frozenset({"u@a.com"} if grandfathered else set()),
        in_overage=overage,
    )
    decision = decide(snap, "salesforce", "u@a.com", feature, at, POLICY, None)
    if not active:
        assert decision.reason == "user_inactive"
    elif seated:
        assert decision.reason == "seated"
    elif overage and not grandfathered:
        assert (decision.allowed, decision.reason) == (False, "in_overage")
    else:
        assert decision.reason == ("grace" if at == TRANSITION else "no_seat")


# -- item 13 -----------------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    effective=st.dates(min_value=D(2026, 1, 1), max_value=D(2027, 1, 1)),
    at=st.datetimes(
        min_value=dt.datetime(2025, 11, 1),
        max_value=dt.datetime(2027, 6, 1),
        timezones=st.just(UTC),
    ),
    seated=st.booleans(),
)
def test_from_the_effective_date_every_check_answers_uninstalled(
    effective: dt.date, at: dt.datetime, seated: bool
) -> None:
    snap = snapshot(
        users={"u@a.com": (True, seated)}, in_overage=False, uninstall_effective=effective
    )
    got = reason(snap, "u@a.com", at)
    if at.date() >= effective:
        assert got == "uninstalled"
    else:
        assert got != "uninstalled"


# -- item 16 -----------------------------------------------------------------------------------------


def test_a_region_the_policy_does_not_list_is_enabled_on_its_latest_enablement_date() -> None:
    revision = POLICY.revisions[0]
    assert revision.enablement_of("BR") == (D(2025, 10, 25), False)
    assert revision.enablement_of("UK") == (D(2025, 10, 4), True)
    br = snapshot(region="BR", in_overage=False)
    assert reason(br, "cat@a.com", dt.datetime(2025, 10, 24, 23, tzinfo=UTC)) == "pre_enablement"
    assert reason(br, "cat@a.com", dt.datetime(2025, 10, 25, tzinfo=UTC)) == "grace"


# -- a snapshot answers only for the instants it holds ----------------------------------------------


def test_a_snapshot_read_after_every_row_holds_for_any_later_instant() -> None:
    snap = snapshot(as_of=TRANSITION, settled=dt.datetime(2026, 1, 15, tzinfo=UTC))
    assert snap.valid_at(RESTRICTED) and snap.valid_at(dt.datetime(2026, 1, 15, tzinfo=UTC))
    assert not snap.valid_at(dt.datetime(2026, 1, 14, tzinfo=UTC))  # before a row it holds
    early = snapshot(as_of=PRE, settled=dt.datetime(2026, 1, 15, tzinfo=UTC))
    assert early.valid_at(PRE) and not early.valid_at(RESTRICTED)
    renewing = snapshot(
        as_of=TRANSITION, settled=TRANSITION, until=dt.datetime(2026, 4, 1, tzinfo=UTC)
    )
    assert renewing.valid_at(RESTRICTED) and not renewing.valid_at(BILLING)
