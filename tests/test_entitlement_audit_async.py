"""Issue 12 item 7: denied-check audit rows written by a background writer
(``Entitlements(..., audit_async=True)``): a decision never waits for a write, and no row is ever
lost — not when many threads check at once, not while the database refuses writes for a while,
not at a normal exit without an explicit flush."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock
from seatgate.core.domain.money import parse_amount
from seatgate.core.errors import DatabaseBusy
from seatgate.core.services.entitlement import Entitlements
from seatgate.core.storage.tables import audit_log

SETUP_AT = dt.datetime(2026, 2, 1, 12, tzinfo=dt.UTC)
RESTRICTED = dt.datetime(2026, 3, 20, 12, tzinfo=dt.UTC)
UNSEATED = [f"agent{i}@example.com" for i in range(20)]


def setup(app: App) -> None:
    app.accounts.create("acme", "US")
    app.contracts.create(
        "acme",
        "salesforce",
        seats=5,
        plan="standard",
        frequency="annual",
        start=dt.date(2025, 10, 1),
        months=12,
        unit_price=parse_amount("25"),
    )
    app.accounts.add_users("acme", UNSEATED)


@pytest.fixture
def app(db_url: str) -> Iterator[App]:
    application = App(db_url, clock=FixedClock(SETUP_AT))
    setup(application)
    yield application
    application.db.dispose()


def denied(app: App) -> list[tuple[str, dt.datetime]]:
    with app.db.read() as conn:
        return [
            (r.actor, r.at)
            for r in conn.execute(
                sa.select(audit_log.c.actor, audit_log.c.at)
                .where(audit_log.c.action == "check.denied")
                .order_by(audit_log.c.id)
            )
        ]


def test_many_threads_lose_no_row(app: App) -> None:
    ent = Entitlements(app.ports, audit_async=True)
    per_thread = 150

    def work(n: int) -> None:
        for i in range(per_thread):
            email = UNSEATED[(n + i) % len(UNSEATED)]
            assert not ent.check("acme", "salesforce", email, "cti", RESTRICTED).allowed

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ent.close()
    assert ent.pending_audit == 0
    rows = denied(app)
    assert len(rows) == 8 * per_thread
    assert {actor for actor, _ in rows} == set(UNSEATED)
    assert {at for _, at in rows} == {RESTRICTED}  # each keeps its decision's instant


def test_a_database_refusing_writes_delays_rows_but_loses_none(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEATGATE_BUSY_TIMEOUT", "0.05")
    application = App(sqlite_url, clock=FixedClock(SETUP_AT))
    try:
        setup(application)
        ent = Entitlements(application.ports, audit_async=True, audit_retry=0.01)
        blocker = sa.create_engine(sqlite_url)
        with blocker.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # another writer holds the lock
            for email in UNSEATED:
                # Answered at once, although no write can go through now.
                assert not ent.check("acme", "salesforce", email, "cti", RESTRICTED).allowed
            with pytest.raises(DatabaseBusy):
                ent.flush()  # the writer's own attempts fail the same way, and keep the rows
            assert ent.pending_audit == len(UNSEATED)
            conn.exec_driver_sql("COMMIT")
        blocker.dispose()
        ent.close()
        assert [actor for actor, _ in denied(application)] == UNSEATED  # in decision order
    finally:
        application.db.dispose()


def test_the_backlog_is_bounded_past_it_a_check_waits_for_room_and_no_row_is_lost(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checks answered from memory can deny faster than the database takes rows (it held 19 GB
    of pending rows once): past ``audit_max_pending`` a check waits for the writer."""
    monkeypatch.setenv("SEATGATE_BUSY_TIMEOUT", "0.05")
    application = App(sqlite_url, clock=FixedClock(SETUP_AT))
    bound = 5
    try:
        setup(application)
        ent = Entitlements(
            application.ports, audit_async=True, audit_retry=0.01, audit_max_pending=bound
        )
        blocker = sa.create_engine(sqlite_url)
        done = threading.Event()

        def one_more() -> None:
            ent.check("acme", "salesforce", UNSEATED[bound], "cti", RESTRICTED)
            done.set()

        with blocker.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # the writer can write nothing now
            for email in UNSEATED[:bound]:
                assert not ent.check("acme", "salesforce", email, "cti", RESTRICTED).allowed
            assert ent.pending_audit == bound
            waiting = threading.Thread(target=one_more)
            waiting.start()
            # The writer retries every 10 ms and fails: the check past the bound stays held.
            assert not done.wait(0.3)
            assert ent.pending_audit == bound
            conn.exec_driver_sql("COMMIT")
        blocker.dispose()
        assert done.wait(30)  # the writer made room: the held check went through
        waiting.join(30)
        ent.close()
        assert [actor for actor, _ in denied(application)] == UNSEATED[: bound + 1]
    finally:
        application.db.dispose()


def test_rows_are_flushed_at_a_normal_exit(sqlite_url: str) -> None:
    application = App(sqlite_url, clock=FixedClock(SETUP_AT))
    setup(application)
    application.db.dispose()
    code = textwrap.dedent(
        f"""
        import datetime as dt
        from seatgate.core.bootstrap import App
        from seatgate.core.clock import FixedClock
        app = App({sqlite_url!r}, clock=FixedClock(dt.datetime(2026, 2, 1, 12, tzinfo=dt.UTC)),
                  entitlement_audit_async=True)
        at = dt.datetime(2026, 3, 20, 12, tzinfo=dt.UTC)
        for i in range(500):
            app.entitlements.check("acme", "salesforce", f"agent{{i % 20}}@example.com", "cti", at)
        # no flush, no close: the exit writes what is pending
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    application = App(sqlite_url, clock=FixedClock(SETUP_AT))
    try:
        assert len(denied(application)) == 500
    finally:
        application.db.dispose()
