"""Events after commit, from every path (issue 10): a recording plugin hears each event — seats
assigned and unassigned, activations, installs, uninstalls, plan changes, the end of a sync — from
the admin path and the sync path alike, only after the transaction that made it committed, never
for what was rolled back, and again (with the same id) when a crash cut its delivery short."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock
from seatgate.core.domain.events import Event
from seatgate.core.plugins import SyncSummary, hookimpl
from seatgate.core.services.base import deliver_pending
from seatgate.core.storage.tables import event_outbox, seats
from seatgate.core.testing.memory import MemorySandbox
from seatgate.core.testing.setup import installed_without_a_crm

from .conftest import (
    ACCOUNT,
    ADMIN,
    KEY_ENV,
    make_app,
    memory_config,
    memory_plugins,
    setup_account,
)

P = "memory"


class Recording:
    """Every listener hook, and what the database said when each was called."""

    def __init__(self, app_ref: list[App]) -> None:
        self._app = app_ref
        self.calls: list[tuple[str, Any]] = []
        self.events: list[Event] = []
        self.seats_committed: list[int] = []

    def _seats_now(self) -> int:
        # A listener runs after the commit: a reader of its own sees the change.
        with self._app[0].db.read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(seats)).scalar_one())

    @hookimpl
    def seatgate_seats_changed(
        self, account: str, product: str, assigned: Any, unassigned: Any, at: Any
    ) -> None:
        self.calls.append(("seats_changed", (tuple(assigned), tuple(unassigned))))
        self.seats_committed.append(self._seats_now())

    @hookimpl
    def seatgate_activation_reported(
        self, account: str, product: str, emails: Any, at: Any
    ) -> None:
        self.calls.append(("activation_reported", tuple(emails)))

    @hookimpl
    def seatgate_installed(self, account: str, product: str, actor: str, at: Any) -> None:
        self.calls.append(("installed", actor))

    @hookimpl
    def seatgate_uninstalled(
        self, account: str, product: str, actor: str, at: Any, effective: dt.date
    ) -> None:
        self.calls.append(("uninstalled", effective))

    @hookimpl
    def seatgate_plan_changed(
        self, account: str, product: str, actor: str, at: Any, from_plan: str, to_plan: str
    ) -> None:
        self.calls.append(("plan_changed", (from_plan, to_plan)))

    @hookimpl
    def seatgate_sync_finished(self, summary: SyncSummary) -> None:
        self.calls.append(("sync_finished", summary.outcome))

    @hookimpl
    def seatgate_event(self, event: Event) -> None:
        self.events.append(event)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    def hooks(self) -> list[str]:
        return [name for name, _ in self.calls]


@pytest.fixture
def recorded(
    db_url: str, clock: FixedClock, crm: MemorySandbox, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[App, Recording]]:
    monkeypatch.setenv(KEY_ENV, crm.settings()["api_key"])
    ref: list[App] = []
    recording = Recording(ref)
    app = make_app(db_url, clock, memory_plugins(("recording", recording)))
    ref.append(app)
    yield app, recording
    app.db.dispose()


def _ready(app: App, **contract: Any) -> None:
    setup_account(app, **contract)
    app.accounts.add_users(ACCOUNT, ["ann@acme.example", "bob@acme.example"])


def test_an_admin_assignment_publishes_seats_assigned_and_users_activated_after_commit(
    recorded: tuple[App, Recording],
) -> None:
    app, rec = recorded
    _ready(app)
    app.assign(ACCOUNT, P, ["ann@acme.example", "bob@acme.example"], ADMIN)
    assert rec.kinds() == ["seats.assigned", "users.activated"]
    assert ("seats_changed", (("ann@acme.example", "bob@acme.example"), ())) in rec.calls
    assert ("activation_reported", ("ann@acme.example", "bob@acme.example")) in rec.calls
    assert rec.seats_committed == [2]  # the listener saw the committed seats


def test_unassign_and_grandfather_publish_from_the_admin_path(
    recorded: tuple[App, Recording],
) -> None:
    app, rec = recorded
    # Grandfathering covers the users of a contract in force when Manage Seats was enabled (US:
    # 2025-10-25): the account, its 1-seat contract and its users exist from 2025-10-01.
    now = app.now()
    assert isinstance(app.clock, FixedClock)
    app.clock.set(dt.datetime(2025, 10, 1, 9, tzinfo=dt.UTC))
    setup_account(app, with_contract=False)
    app.contracts.create(
        ACCOUNT, P, seats=1, plan="standard", frequency="monthly", start=dt.date(2025, 10, 1),
        months=12, unit_price=Decimal("10"),
    )  # fmt: skip
    app.accounts.add_users(ACCOUNT, ["ann@acme.example", "bob@acme.example"])
    app.clock.set(now)
    app.grandfather(ACCOUNT, P, ADMIN)  # both users, above the one seat (seed 000)
    # Issue 18: entering overage is an event too.
    assert rec.kinds() == ["seats.assigned", "overage.entered"]
    assert rec.events[0].as_dict()["reason"] == "enablement"
    app.unassign(ACCOUNT, P, ["bob@acme.example"], ADMIN)
    assert rec.kinds() == ["seats.assigned", "overage.entered", "seats.unassigned", "overage.left"]
    assert rec.calls[-1] == ("seats_changed", ((), ("bob@acme.example",)))


def test_a_refused_action_publishes_nothing(recorded: tuple[App, Recording]) -> None:
    app, rec = recorded
    _ready(app, seats=1)
    app.assign(ACCOUNT, P, ["ann@acme.example"], ADMIN)
    rec.events.clear()
    result = app.assign(ACCOUNT, P, ["bob@acme.example"], ADMIN)  # capacity_reached
    # Issue 18: a refused seat is an event (seat.refused), nothing else is published.
    assert result.refused and rec.kinds() == ["seats.refused"]
    rec.events.clear()
    with pytest.raises(Exception, match="install or manage"):
        app.assign(ACCOUNT, P, ["bob@acme.example"], "intern@acme.example")
    assert rec.events == []


def test_install_uninstall_and_plan_change_publish(
    recorded: tuple[App, Recording], crm: MemorySandbox
) -> None:
    app, rec = recorded
    _ready(app)
    app.installs.install(ACCOUNT, P, memory_config(crm), ADMIN)
    assert ("installed", ADMIN) in rec.calls and "app.installed" in rec.kinds()
    app.purchases.uninstall(ACCOUNT, P, ADMIN)
    assert "app.uninstalled" in rec.kinds()
    (effective,) = [v for name, v in rec.calls if name == "uninstalled"]
    assert effective == dt.date(2027, 1, 1)  # the end of the 12-month term in force


def test_a_plan_change_publishes(recorded: tuple[App, Recording]) -> None:
    app, rec = recorded
    setup_account(app, product="salesforce")
    # The installation row `install` leaves (plans are managed once installed, seed 002),
    # written without a CRM and without an event.
    installed_without_a_crm(app, ACCOUNT, "salesforce", ADMIN)
    app.purchases.change_plan(ACCOUNT, "salesforce", "premium", ADMIN)
    assert rec.kinds() == ["plan.changed"]
    assert rec.calls == [("plan_changed", ("standard", "premium"))]


def test_a_sync_publishes_its_auto_install_and_its_end_after_commit(
    recorded: tuple[App, Recording], crm: MemorySandbox
) -> None:
    app, rec = recorded
    setup_account(app, seats=5)
    app.installs.install(ACCOUNT, P, memory_config(crm, activated_roles=["Agent"]), ADMIN)
    rec.events.clear()
    rec.calls.clear()
    result = app.sync.sync(ACCOUNT, P)
    assert result.summary.seated == 5
    assert rec.kinds() == ["seats.assigned", "users.activated", "sync.finished"]
    assert rec.seats_committed == [5]
    assert rec.hooks() == ["seats_changed", "activation_reported", "sync_finished"]
    assert rec.events[0].as_dict()["reason"] == "auto_install"


def test_a_failed_sync_publishes_its_end_and_nothing_it_rolled_back(
    recorded: tuple[App, Recording], crm: MemorySandbox
) -> None:
    app, rec = recorded
    setup_account(app, seats=5)
    app.installs.install(ACCOUNT, P, memory_config(crm, activated_roles=["Agent"]), ADMIN)
    rec.events.clear()
    crm.inject("quota")
    result = app.sync.sync(ACCOUNT, P)
    assert result.outcome == "failed"
    assert rec.kinds() == ["sync.finished"]
    assert rec.events[0].as_dict()["outcome"] == "failed"


def test_an_event_whose_delivery_was_cut_short_is_delivered_again_with_its_id(
    recorded: tuple[App, Recording], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, rec = recorded
    _ready(app)
    # The process "dies" between the commit and the delivery: nothing is delivered ...
    monkeypatch.setattr("seatgate.core.services.base.deliver_pending", lambda ports: 0)
    app.assign(ACCOUNT, P, ["ann@acme.example"], ADMIN)
    assert rec.events == []
    with app.db.read() as conn:
        pending = conn.execute(
            sa.select(event_outbox.c.event_id).where(event_outbox.c.delivered_at.is_(None))
        ).all()
    assert len(pending) == 2  # ... but both events were committed with the seats
    monkeypatch.undo()
    assert deliver_pending(app.ports) == 2  # what `sync --due` (or the next write) does
    assert rec.kinds() == ["seats.assigned", "users.activated"]
    assert {e.id for e in rec.events} == {row.event_id for row in pending}
    assert deliver_pending(app.ports) == 0  # delivered once


def test_the_billing_listener_records_one_commitment_per_event_however_often_delivered(
    recorded: tuple[App, Recording],
) -> None:
    from seatgate.core.storage.tables import commitments

    app, rec = recorded
    _ready(app)
    app.assign(ACCOUNT, P, ["ann@acme.example"], ADMIN)
    (activated,) = [e for e in rec.events if e.kind == "users.activated"]
    app.ports.publisher.publish([activated])  # a redelivery
    with app.db.read() as conn:
        rows = conn.execute(
            sa.select(commitments.c.event_id).where(commitments.c.action == "add_users")
        ).all()
    assert [r.event_id for r in rows] == [activated.id]
