"""Issue 12 item 7: a sync never holds the write lock for long. The pull and the staging run
outside any write transaction, and the reconcile writes in batches, each its own transaction: a
denied check's audit row and an admin's seat assignment commit while a sync is under way (with a
busy timeout of one second, they would fail if the sync held the lock). A run that dies between
two batches leaves nothing behind that the next run does not finish."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock
from seatgate.core.services import sync as sync_service
from seatgate.core.storage.tables import audit_log
from seatgate.core.testing.memory import MemorySandbox

from .conftest import (
    ACCOUNT,
    ADMIN,
    KEY_ENV,
    StepAdapter,
    make_app,
    memory_config,
    memory_plugins,
    setup_account,
)

P = "memory"
OUTSIDER = "outsider@acme.example"
UNSEATED = "unseated@acme.example"
RESTRICTED = dt.datetime(2026, 3, 20, 12, tzinfo=dt.UTC)  # unseated users are denied from here


@pytest.fixture
def app(
    db_url: str,
    clock: FixedClock,
    adapter: StepAdapter,
    crm: MemorySandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[App]:
    monkeypatch.setenv(KEY_ENV, crm.settings()["api_key"])
    if db_url.startswith("sqlite"):
        # A write behind a long one fails fast (SQLite has one write lock for the database; on
        # a shared PostgreSQL server a short lock timeout would only make the setup flaky).
        monkeypatch.setenv("SEATGATE_BUSY_TIMEOUT", "1")
    application = make_app(db_url, clock, memory_plugins(adapter=adapter))
    setup_account(application)
    application.accounts.add_users(ACCOUNT, [OUTSIDER, UNSEATED])
    config = memory_config(crm, page_size=10, activated_roles=["Agent"])
    application.installs.install(ACCOUNT, P, config, ADMIN)
    yield application
    application.db.dispose()


def denied_rows(app: App) -> int:
    with app.db.read() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(audit_log)
                .where(audit_log.c.action == "check.denied")
            ).scalar_one()
        )


def other_writers(app: App, clock: FixedClock) -> list[str]:
    """A denied check (its audit row is a write) and an admin's assignment: what they answered."""
    check = app.entitlements.check(ACCOUNT, P, UNSEATED, "agent_sync", RESTRICTED)
    assert not check.allowed
    seat = app.assign(ACCOUNT, P, [OUTSIDER], ADMIN)
    return [check.reason or "", ",".join(seat.assigned)]


def test_writes_go_through_while_a_sync_pulls(
    app: App, adapter: StepAdapter, clock: FixedClock
) -> None:
    during: list[list[str]] = []
    adapter.on_page = lambda n: during.append(other_writers(app, clock)) if n == 2 else None
    assert app.sync.sync(ACCOUNT, P).outcome == "succeeded"
    assert len(during) == 1 and during[0][1] == OUTSIDER
    assert denied_rows(app) == 1


def test_writes_go_through_between_the_reconciles_batches(
    app: App, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sync_service, "BATCH", 7)  # 40 users: several batches in each step
    during: list[list[str]] = []
    real = sync_service.SyncService._beater

    def beater(self: sync_service.SyncService, run_id: int) -> Callable[[], None]:
        beat = real(self, run_id)

        def between() -> None:
            beat()
            if not during:
                during.append(other_writers(app, clock))

        return between

    monkeypatch.setattr(sync_service.SyncService, "_beater", beater)
    result = app.sync.sync(ACCOUNT, P)
    assert result.outcome == "succeeded" and result.summary.created == 40
    assert during and during[0][1] == OUTSIDER
    # Small batches write exactly what one transaction would.
    assert result.summary.seated == len(app.seats.seated_emails(ACCOUNT, P)) - 1


def test_a_run_dying_before_its_auto_install_leaves_the_seats_to_the_next_run(
    app: App, crm: MemorySandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    holders = {u.email for u in crm.store.users if "Agent" in u.roles}
    assert holders
    # The run's gainers wait for auto install (as when the contract cannot seat them all), not
    # seated with their role (test_inline_seats.py has that path's crash).
    monkeypatch.setattr(sync_service._Reconcile, "_plan_inline", lambda self: None)
    real = sync_service.assign_seats
    monkeypatch.setattr(
        sync_service, "assign_seats", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full"))
    )
    failed = app.sync.sync(ACCOUNT, P)
    assert failed.outcome == "failed" and "disk full" in failed.summary.message
    assert app.seats.seated_emails(ACCOUNT, P) == []
    monkeypatch.setattr(sync_service, "assign_seats", real)
    again = app.sync.sync(ACCOUNT, P)
    assert again.outcome == "succeeded" and again.summary.full is True  # the cursor never moved
    assert set(app.seats.seated_emails(ACCOUNT, P)) == holders
    assert again.summary.created == 0  # the first run's users were kept, not made twice
