"""Manage Seats under any sequence of admin actions (hypothesis state machine).

The rules (seed 000, hard cap):

- grandfathering seats the users known when Manage Seats was enabled, once, never a later joiner;
- no sequence of assign, unassign, grandfather and contract quantity changes ever leaves an account
  with more seats assigned than contracted, unless grandfathering or a lower contracted quantity
  put it there (an assignment never does);
- an account in overage (more seats assigned than contracted) never gains a user by assignment;
- what the database holds is what the commands answered.

Each example runs on a fresh account of its own in one SQLite database, so examples cannot see
each other and no schema is rebuilt per example.
"""

from __future__ import annotations

import datetime as dt
import itertools

import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock
from seatgate.core.domain.money import parse_amount
from seatgate.core.storage.tables import accounts as accounts_table
from seatgate.core.storage.tables import integration_users, seats

ADMIN = "admin@example.com"
PRODUCT = "salesforce"
AT = dt.datetime(2026, 2, 1, 12, tzinfo=dt.UTC)
BEFORE_ENABLEMENT = dt.datetime(2025, 10, 1, 12, tzinfo=dt.UTC)
KNOWN = [f"user{i}@example.com" for i in range(6)]

emails = st.lists(st.sampled_from(KNOWN), min_size=1, max_size=4)


class SeatRules(RuleBasedStateMachine):
    app: App
    _names = itertools.count()

    def __init__(self) -> None:
        super().__init__()
        self.account = f"acct{next(self._names)}"
        self.known = list(KNOWN)
        self.seated: set[str] = set()
        self.contracted = 0
        self.grandfathered = False
        self.opened = False
        # True only while the account is above its seats because grandfathering or a lower
        # contracted quantity put it there.
        self.excess_allowed = False

    @initialize(quantity=st.integers(min_value=1, max_value=5), start_with=emails)
    def open_account(self, quantity: int, start_with: list[str]) -> None:
        # Opened before Manage Seats is enabled in the US (2025-10-25): its first users are the
        # ones grandfathering covers (seed 000); later joiners are not.
        clock = self.app.clock
        assert isinstance(clock, FixedClock)
        clock.set(BEFORE_ENABLEMENT)
        try:
            self._open(quantity)
        finally:
            clock.set(AT)
        self.assign(start_with)

    def _open(self, quantity: int) -> None:
        app = self.app
        app.accounts.create(self.account, "US")
        app.accounts.grant(self.account, ADMIN, "manage", None)
        app.contracts.create(
            self.account,
            PRODUCT,
            seats=quantity,
            plan="standard",
            frequency="monthly",
            start=dt.date(2025, 10, 1),
            months=12,
            unit_price=parse_amount("30"),
        )
        app.accounts.add_users(self.account, self.known)
        self.contracted = quantity
        self.opened = True

    # -- the actions ---------------------------------------------------------------------------------
    @rule(wanted=emails)
    def assign(self, wanted: list[str]) -> None:
        before = len(self.seated)
        result = self.app.assign(self.account, PRODUCT, wanted, ADMIN)
        after = result.assigned_count
        if before > self.contracted:
            assert after == before, "an account in overage gained a user"
            assert {r["reason"] for r in result.refused} <= {"in_overage"}
        else:
            assert after <= self.contracted, "an assignment went above the contracted seats"
        assert after == before + len(result.newly_assigned)
        assert set(result.newly_assigned).isdisjoint(self.seated)
        # Users are taken in order until the cap: a refusal is never followed by a new seat.
        order = list(dict.fromkeys(wanted))
        new = [e for e in order if e not in self.seated]
        assert result.newly_assigned == new[: len(result.newly_assigned)]
        self.seated |= set(result.newly_assigned)

    @rule(wanted=emails)
    def unassign(self, wanted: list[str]) -> None:
        result = self.app.unassign(self.account, PRODUCT, wanted, ADMIN)
        assert set(result.unassigned) == set(wanted) & self.seated
        self.seated -= set(result.unassigned)
        assert result.assigned_count == len(self.seated)
        self.excess_allowed = self.excess_allowed and len(self.seated) > self.contracted

    @rule()
    def grandfather(self) -> None:
        result = self.app.grandfather(self.account, PRODUCT, ADMIN)
        if self.grandfathered:
            assert result.newly_assigned == [], "grandfathering ran twice"
        else:
            # Only the users of enablement day (issue 11, item 8), never a later joiner.
            assert set(result.newly_assigned) == set(KNOWN) - self.seated
            self.seated |= set(KNOWN)
            self.grandfathered = True
            self.excess_allowed = len(self.seated) > self.contracted

    @rule(quantity=st.integers(min_value=1, max_value=8))
    def set_quantity(self, quantity: int) -> None:
        lowered = quantity < self.contracted
        self.app.set_quantity(self.account, PRODUCT, quantity, actor=ADMIN)
        self.contracted = quantity
        over = len(self.seated) > quantity
        self.excess_allowed = over and (lowered or self.excess_allowed)

    @precondition(lambda self: len(self.known) < 9)
    @rule()
    def a_new_user_joins(self) -> None:
        email = f"late{len(self.known)}@example.com"
        self.app.accounts.add_users(self.account, [email])
        self.known.append(email)

    # -- what must always hold -----------------------------------------------------------------------
    @invariant()
    def above_the_seats_only_through_grandfathering_or_a_lower_quantity(self) -> None:
        if len(self.seated) > self.contracted:
            assert self.excess_allowed

    @invariant()
    def the_database_holds_what_the_commands_answered(self) -> None:
        if not self.opened:
            return
        with self.app.db.read() as conn:
            held = conn.execute(
                sa.select(integration_users.c.email)
                .join(seats, seats.c.user_id == integration_users.c.id)
                .join(accounts_table, accounts_table.c.id == seats.c.account_id)
                .where(accounts_table.c.name == self.account, seats.c.product == PRODUCT)
            ).scalars()
            assert set(held) == self.seated


def test_seat_rules_hold_for_any_sequence_of_actions(sqlite_url: str) -> None:
    app = App(sqlite_url, clock=FixedClock(AT))
    app.products()

    def machine() -> SeatRules:
        m = SeatRules()
        m.app = app
        return m

    try:
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=60,
                stateful_step_count=15,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    finally:
        app.db.dispose()
