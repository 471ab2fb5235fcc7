"""Batched audit of denied entitlement decisions (``Entitlements(..., audit_batch=N)``), against
the write-through default; and the seat rows that ``seats.assign`` writes by its bulk path."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock
from seatgate.core.domain.money import parse_amount
from seatgate.core.services.entitlement import Entitlements
from seatgate.core.storage.tables import audit_log, seat_ledger, seats

SETUP_AT = dt.datetime(2026, 2, 1, 12, tzinfo=dt.UTC)
RESTRICTED = dt.datetime(2026, 3, 20, 12, tzinfo=dt.UTC)
ADMIN = "admin@example.com"
SEATED = [f"seated{i}@example.com" for i in range(3)]
UNSEATED = [f"agent{i}@example.com" for i in range(12)]


@pytest.fixture
def app(db_url: str) -> Iterator[App]:
    application = App(db_url, clock=FixedClock(SETUP_AT))
    application.accounts.create("acme", "US")
    application.accounts.grant("acme", ADMIN, "manage", None)
    application.contracts.create(
        "acme",
        "salesforce",
        seats=len(SEATED),
        plan="standard",
        frequency="annual",
        start=dt.date(2025, 10, 1),
        months=12,
        unit_price=parse_amount("25"),
    )
    application.accounts.add_users("acme", SEATED + UNSEATED)
    application.assign("acme", "salesforce", SEATED, ADMIN)
    yield application
    application.db.dispose()


def entitlements(app: App, batch: int) -> Entitlements:
    return Entitlements(app.ports, audit_batch=batch)


def denied_rows(app: App) -> list[dict[str, Any]]:
    """The committed check.denied rows, read in a transaction of their own."""
    with app.db.read() as conn:
        rows = conn.execute(
            sa.select(audit_log)
            .where(audit_log.c.action == "check.denied")
            .order_by(audit_log.c.id)
        )
        return [{k: v for k, v in r._mapping.items() if k != "id"} for r in rows]


def deny(ents: Entitlements, emails: list[str]) -> None:
    for email in emails:
        decision = ents.check("acme", "salesforce", email, "cti", RESTRICTED)
        assert (decision.allowed, decision.reason) == (False, "no_seat")


def test_write_through_is_the_default_one_row_committed_per_denied_check(app: App) -> None:
    ents = entitlements(app, 1)
    deny(ents, UNSEATED[:2])
    assert [r["actor"] for r in denied_rows(app)] == UNSEATED[:2]
    assert ents.pending_audit == 0
    allowed = ents.check("acme", "salesforce", SEATED[0], "cti", RESTRICTED)
    assert allowed.allowed and len(denied_rows(app)) == 2


def test_batched_rows_are_written_when_n_are_pending_and_all_arrive_after_flush(app: App) -> None:
    ents = entitlements(app, 5)
    deny(ents, UNSEATED[:4])
    assert denied_rows(app) == [] and ents.pending_audit == 4
    deny(ents, UNSEATED[4:5])  # the fifth: one transaction for all five
    assert [r["actor"] for r in denied_rows(app)] == UNSEATED[:5]
    deny(ents, UNSEATED[5:8])
    assert len(denied_rows(app)) == 5 and ents.pending_audit == 3
    assert ents.flush() == 3
    assert [r["actor"] for r in denied_rows(app)] == UNSEATED[:8]
    assert ents.pending_audit == 0 and ents.flush() == 0


def test_batched_rows_are_the_rows_write_through_writes(app: App) -> None:
    entitlements(app, 1).check("acme", "salesforce", UNSEATED[0], "cti", RESTRICTED)
    batched = entitlements(app, 3)
    batched.check("acme", "salesforce", UNSEATED[0], "cti", RESTRICTED)
    batched.flush()
    first, second = denied_rows(app)
    assert first == second
    assert first["outcome"] == "no_seat" and first["account"] == "acme"
    assert first["detail"]["feature"] == "cti" and first["detail"]["product"] == "salesforce"


def test_nothing_is_lost_on_close(app: App) -> None:
    ents = entitlements(app, 5)
    deny(ents, UNSEATED[:7])
    assert len(denied_rows(app)) == 5
    ents.close()
    assert [r["actor"] for r in denied_rows(app)] == UNSEATED[:7]


def test_a_failed_batch_keeps_its_rows_for_the_next_flush(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    ents = entitlements(app, 10)
    deny(ents, UNSEATED[:3])
    real_write = app.db.write

    def broken() -> Any:
        raise sa.exc.OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(app.db, "write", broken)
    with pytest.raises(sa.exc.OperationalError):
        ents.flush()
    assert ents.pending_audit == 3
    monkeypatch.setattr(app.db, "write", real_write)
    deny(ents, UNSEATED[3:4])
    assert ents.flush() == 4
    assert [r["actor"] for r in denied_rows(app)] == UNSEATED[:4]


def test_pending_rows_are_written_at_process_exit(app: App) -> None:
    script = textwrap.dedent(
        f"""
        import datetime as dt
        from seatgate.core.bootstrap import App
        from seatgate.core.services.entitlement import Entitlements
        app = App({app.db.url!r})
        ents = Entitlements(
            app.ports, audit_batch=100
        )
        at = dt.datetime(2026, 3, 20, 12, tzinfo=dt.UTC)
        for email in {UNSEATED[:3]!r}:
            assert not ents.check("acme", "salesforce", email, "cti", at).allowed
        assert ents.pending_audit == 3
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    assert [r["actor"] for r in denied_rows(app)] == UNSEATED[:3]


def test_audit_batch_must_be_at_least_one(app: App) -> None:
    with pytest.raises(Exception, match="audit_batch"):
        entitlements(app, 0)


def test_bulk_seat_rows_match_what_sqlalchemy_binds(app: App) -> None:
    """seats.assign writes straight to the driver: its instants must be stored in the form
    SQLAlchemy binds, or an equality (or range) query on them misses rows (SQLite keeps text)."""
    with app.db.read() as conn:
        at_seat = conn.execute(
            sa.select(sa.func.count()).select_from(seats).where(seats.c.assigned_at == SETUP_AT)
        ).scalar_one()
        at_ledger = conn.execute(
            sa.select(seat_ledger.c.assigned_after, seat_ledger.c.email)
            .where(seat_ledger.c.at == SETUP_AT)
            .order_by(seat_ledger.c.id)
        ).all()
        flags = conn.execute(sa.select(seats.c.grandfathered)).scalars().all()
    assert at_seat == len(SEATED)
    assert [tuple(r) for r in at_ledger] == [(i + 1, e) for i, e in enumerate(SEATED)]
    assert flags == [False] * len(SEATED)


@pytest.mark.parametrize("batch", [1, 5])
def test_a_denied_checks_audit_row_leaves_the_cached_snapshot_trusted(app: App, batch: int) -> None:
    """An audit row is no input of any decision: writing it must not make every cached snapshot
    of the process re-read the database (it did: each denied check then cost a read)."""
    ents = Entitlements(app.ports, audit_batch=batch, max_age=3600.0)
    ents.check("acme", "salesforce", SEATED[0], "cti", RESTRICTED)  # caches the snapshot
    before = app.uow.generation
    deny(ents, UNSEATED)  # 12 rows: written through, or in batches of 5
    ents.flush()
    assert len(denied_rows(app)) == len(UNSEATED)
    assert app.uow.generation == before
    assert ents.is_fresh("acme", "salesforce")
    # A write a decision depends on still moves it.
    app.unassign("acme", "salesforce", [SEATED[0]], ADMIN)
    assert app.uow.generation > before and not ents.is_fresh("acme", "salesforce")
