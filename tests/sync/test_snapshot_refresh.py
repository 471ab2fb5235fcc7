"""A snapshot refreshed from what changed since it was read equals one read whole (issue 12 item
7): for any sequence of writes — seats assigned and unassigned, users added, grandfathering, the
contracted quantity, and syncs that add, deactivate, reactivate and rename users — on SQLite and
PostgreSQL; and on PostgreSQL a transaction that commits after a later one (an older stamp, seen
late) is not missed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
from collections.abc import Iterator

import pytest
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
from seatgate.core.domain.entitlement import Layered, Snapshot
from seatgate.core.errors import Conflict, SeatgateError
from seatgate.core.storage.repositories.snapshots import SqlSnapshotStore
from seatgate.core.storage.tables import integration_users
from seatgate.core.testing.memory import MemorySandbox
from seatgate.core.testing.setup import account_with_contract

from .conftest import KEY_ENV, memory_config, memory_plugins

P = "memory"
ADMIN = "admin@example.com"
BEFORE_ENABLEMENT = dt.datetime(2025, 10, 1, 12, tzinfo=dt.UTC)
AT = dt.datetime(2026, 2, 1, 12, tzinfo=dt.UTC)  # transition: grace, overage lock
CRM_USERS = 8


def _load(app: App, account: str, at: dt.datetime, previous: Snapshot | None = None) -> Snapshot:
    with app.db.read() as conn:
        return SqlSnapshotStore(conn).load(account, P, at, previous=previous)


@pytest.fixture
def small_layers(monkeypatch: pytest.MonkeyPatch) -> None:
    # Merge the layers of a refreshed snapshot's users often, so that the examples go through
    # merges as well as through layers over a shared base.
    monkeypatch.setattr(Layered, "merge_floor", 3)
    monkeypatch.setattr(Layered, "merge_ratio", 2)


def test_a_refreshed_snapshot_equals_a_whole_read_for_any_sequence_of_writes(
    db_url: str, monkeypatch: pytest.MonkeyPatch, small_layers: None
) -> None:
    clock = FixedClock(AT)
    app = App(db_url, clock=clock, plugins=memory_plugins())
    names = itertools.count()
    crms: list[MemorySandbox] = []

    class Writes(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.account = f"acct{next(names)}"
            self.crm = MemorySandbox(users=CRM_USERS)
            crms.append(self.crm)
            monkeypatch.setenv(KEY_ENV, self.crm.settings()["api_key"])
            self.emails = [f"admin-added{i}@example.com" for i in range(3)]
            self.renames = itertools.count()
            self.previous: Snapshot | None = None

        @initialize(seats=st.integers(min_value=1, max_value=6))
        def open_account(self, seats: int) -> None:
            clock.set(BEFORE_ENABLEMENT)  # its first users are the ones grandfathering covers
            try:
                account_with_contract(app, self.account, P, admin=ADMIN, seats=seats)
                app.accounts.add_users(self.account, self.emails[:2])
            finally:
                clock.set(AT)
            config = memory_config(self.crm, activated_roles=["Agent"])
            app.installs.install(self.account, P, config, ADMIN)
            self.previous = _load(app, self.account, AT)

        def known(self) -> list[str]:
            return [*self.emails, *(u.email.lower() for u in self.crm.store.users)]

        @rule(data=st.data())
        def assign(self, data: st.DataObject) -> None:
            wanted = data.draw(st.lists(st.sampled_from(self.known()), min_size=1, max_size=3))
            app.assign(self.account, P, wanted, ADMIN)

        @rule(data=st.data())
        def unassign(self, data: st.DataObject) -> None:
            wanted = data.draw(st.lists(st.sampled_from(self.known()), min_size=1, max_size=3))
            app.unassign(self.account, P, wanted, ADMIN)

        @rule()
        def grandfather(self) -> None:
            app.grandfather(self.account, P, ADMIN)

        @rule(quantity=st.integers(min_value=1, max_value=8))
        def set_quantity(self, quantity: int) -> None:
            app.set_quantity(self.account, P, quantity, actor=ADMIN)

        @precondition(lambda self: len(self.emails) < 6)
        @rule()
        def add_user(self) -> None:
            email = f"admin-added{len(self.emails)}@example.com"
            app.accounts.add_users(self.account, [email])
            self.emails.append(email)

        @rule(data=st.data(), active=st.booleans())
        def crm_sets_active(self, data: st.DataObject, active: bool) -> None:
            numbers = sorted(self.crm.store.by_number)
            chosen = data.draw(st.lists(st.sampled_from(numbers), min_size=1, max_size=3))
            self.crm.store.change(chosen, active=active)

        @rule(data=st.data())
        def crm_renames(self, data: st.DataObject) -> None:
            number = data.draw(st.sampled_from(sorted(self.crm.store.by_number)))
            email = f"renamed{next(self.renames)}-{number}@example.com"
            self.crm.store.change([number], email=email)

        @precondition(lambda self: len(self.crm.store.users) < CRM_USERS + 4)
        @rule(count=st.integers(min_value=1, max_value=2))
        def crm_adds(self, count: int) -> None:
            self.crm.store.add(count)

        # What only other writes change, which a refresh after a sync's writes alone reuses:
        # the installation, an uninstall, a renewal adjustment.
        @rule(enabled=st.booleans())
        def set_enabled(self, enabled: bool) -> None:
            app.installs.set_enabled(self.account, P, enabled, ADMIN)

        @rule()
        def uninstall(self) -> None:
            with contextlib.suppress(SeatgateError):  # e.g. uninstalled already
                app.purchases.uninstall(self.account, P, ADMIN)

        @rule()
        def renewal_adjustment(self) -> None:
            with contextlib.suppress(SeatgateError):  # e.g. one is open already
                app.purchases.open_ticket(self.account, P, "renewal_adjustment", ADMIN)

        @rule(full=st.booleans())
        def sync(self, full: bool) -> None:
            with contextlib.suppress(Conflict):  # disabled: syncs do not run
                app.sync.sync(self.account, P, full=full, force=True)

        @invariant()
        def a_refresh_equals_a_whole_read(self) -> None:
            if self.previous is None:
                return
            refreshed = _load(app, self.account, AT, previous=self.previous)
            whole = _load(app, self.account, AT)
            assert refreshed == whole
            assert dict(refreshed.users) == dict(whole.users)
            assert refreshed.basis is not None  # a current snapshot refreshes again
            self.previous = refreshed

    try:
        run_state_machine_as_test(
            Writes,
            settings=settings(
                max_examples=25 if "sqlite" in db_url else 12,
                stateful_step_count=12,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
            ),
        )
    finally:
        for crm in crms:
            crm.stop()
        app.db.dispose()


@pytest.fixture
def pg_app(postgres_url: str) -> Iterator[App]:
    app = App(postgres_url, clock=FixedClock(AT))
    account_with_contract(app, "late", "salesforce", admin=ADMIN, seats=10)
    app.accounts.add_users("late", [f"u{i}@example.com" for i in range(5)])
    yield app
    app.db.dispose()


def test_a_change_committed_after_a_later_one_is_not_missed(pg_app: App) -> None:
    # PostgreSQL stamps a change with its transaction's id: a transaction that took its id
    # before a refresh and commits after a later transaction has the older stamp.
    def load(previous: Snapshot | None = None) -> Snapshot:
        with pg_app.db.read() as conn:
            return SqlSnapshotStore(conn).load("late", "salesforce", AT, previous=previous)

    first = load()
    with pg_app.db.engine.connect() as slow:
        slow.execute(
            sa.update(integration_users)
            .where(integration_users.c.email == "u1@example.com")
            .values(active=False)
        )  # in progress: it has its transaction id, not committed
        during = load(first)
        pg_app.assign("late", "salesforce", ["u2@example.com"], ADMIN)  # a later one commits
        after_later = load(during)
        assert after_later.users["u2@example.com"] == (True, True)
        assert after_later.users["u1@example.com"] == (True, False)  # not committed yet
        slow.commit()
    last = load(after_later)
    assert last.users["u1@example.com"] == (False, False)
    assert last == load()


def test_a_refresh_re_reads_only_the_users_changed(db_url: str) -> None:
    app = App(db_url, clock=FixedClock(AT))
    try:
        account_with_contract(app, "big", "salesforce", admin=ADMIN, seats=1000)
        app.accounts.add_users("big", [f"u{i}@example.com" for i in range(300)])
        app.assign("big", "salesforce", [f"u{i}@example.com" for i in range(100)], ADMIN)
        with app.db.read() as conn:
            first = SqlSnapshotStore(conn).load("big", "salesforce", AT)
        app.unassign("big", "salesforce", ["u7@example.com"], ADMIN)
        app.assign("big", "salesforce", ["u200@example.com"], ADMIN)
        with app.db.read() as conn:
            store = SqlSnapshotStore(conn)
            changed, _ = store._changed(first.basis.account_id, "salesforce", first.basis.cursor)
            second = store.load("big", "salesforce", AT, previous=first)
        assert sorted(r[1] for r in changed) == ["u200@example.com", "u7@example.com"]
        assert second.assigned == 100
        assert second.users["u7@example.com"] == (True, False)
        assert second.users["u200@example.com"] == (True, True)
        assert first.users["u7@example.com"] == (True, True)  # the older snapshot is unchanged
    finally:
        app.db.dispose()


def test_a_refresh_after_a_sync_sees_the_seats_a_renewal_adjustment_counts(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A renewal_adjustment ticket left without a quantity makes the renewal's quantity the users
    # held at the renewal (History._renewals): the seat ledger, which a sync writes (its auto
    # install) without moving the strict version. A sync that started before the renewal day
    # stamps its seats then, and commits them after a server read its snapshot on that day.
    clock = FixedClock(dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC))
    app = App(db_url, clock=clock, plugins=memory_plugins())
    crm = MemorySandbox(users=CRM_USERS)
    monkeypatch.setenv(KEY_ENV, crm.settings()["api_key"])
    try:
        account_with_contract(app, "acme", P, admin=ADMIN, seats=2, mode="auto_expand")
        app.installs.install("acme", P, memory_config(crm, activated_roles=["Agent"]), ADMIN)
        app.purchases.open_ticket("acme", P, "renewal_adjustment", ADMIN)
        renewal = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
        previous = _load(app, "acme", renewal + dt.timedelta(minutes=1))
        clock.set(renewal - dt.timedelta(minutes=1))  # the sync's start, its seats' stamp
        app.sync.sync("acme", P, full=True, force=True)
        at = renewal + dt.timedelta(minutes=2)
        whole = _load(app, "acme", at)
        assert whole.contracted != previous.contracted  # the sync's seats are the quantity now
        refreshed = _load(app, "acme", at, previous=previous)
        assert refreshed.strict_version == previous.strict_version  # the quiet path
        assert refreshed.contracted == whole.contracted
        assert refreshed == whole
    finally:
        crm.stop()
        app.db.dispose()
