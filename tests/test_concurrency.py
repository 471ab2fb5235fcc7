"""Concurrent assignments never over-assign (seed 000 hard cap; DESIGN.md: the capacity check and
the write are one transaction).

20 workers each assign a different user, all at once (a barrier releases them together), against a
contract of 10 seats. Exactly 10 must get a seat and 10 be refused ``capacity_reached`` — with
threads and with processes (each its own App on the same database), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import threading
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock
from seatgate.core.domain.money import parse_amount
from seatgate.core.storage.tables import seat_ledger, seats

WORKERS = 20
SEATS = 10
ADMIN = "admin@example.com"
PRODUCT = "salesforce"
AT = dt.datetime(2026, 2, 1, 12, tzinfo=dt.UTC)
BARRIER_TIMEOUT = 120.0


def emails() -> list[str]:
    return [f"racer{i:02d}@example.com" for i in range(WORKERS)]


def prepare(url: str) -> None:
    app = App(url, clock=FixedClock(AT))
    app.accounts.create("acme", "US")
    app.accounts.grant("acme", ADMIN, "manage", None)
    app.contracts.create(
        "acme",
        PRODUCT,
        seats=SEATS,
        plan="standard",
        frequency="monthly",
        start=dt.date(2025, 10, 1),
        months=12,
        unit_price=parse_amount("30"),
    )
    app.accounts.add_users("acme", emails())
    app.db.dispose()


def ready_app(url: str) -> App:
    """An App with everything loaded (schema checked, adapters imported) so the race is the write."""
    app = App(url, clock=FixedClock(AT))
    app.products()
    with app.db.read() as conn:
        conn.execute(sa.text("SELECT 1"))
    return app


def race(app: App, email: str, barrier: Any) -> tuple[str, str]:
    """Wait for every worker, then assign one seat. Returns (email, "assigned" or the reason)."""
    barrier.wait(BARRIER_TIMEOUT)
    result = app.assign("acme", PRODUCT, [email], ADMIN)
    if result.newly_assigned == [email]:
        return email, "assigned"
    return email, result.refused[0]["reason"]


def process_worker(url: str, email: str, barrier: Any, results: Any) -> None:
    try:
        app = ready_app(url)
        try:
            results.put(race(app, email, barrier))
        finally:
            app.db.dispose()
    except BaseException as exc:  # report, so the parent does not wait forever
        results.put((email, f"error: {exc!r}"))
        raise


def run_threads(url: str) -> list[tuple[str, str]]:
    apps = [ready_app(url) for _ in range(WORKERS)]
    barrier = threading.Barrier(WORKERS)
    out: list[tuple[str, str]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(app: App, email: str) -> None:
        try:
            got = race(app, email, barrier)
        except BaseException as exc:
            barrier.abort()
            with lock:
                errors.append(exc)
            return
        with lock:
            out.append(got)

    threads = [
        threading.Thread(target=work, args=(app, email))
        for app, email in zip(apps, emails(), strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for app in apps:
        app.db.dispose()
    if errors:
        raise errors[0]
    return out


def run_processes(url: str) -> list[tuple[str, str]]:
    # fork where there is one: children start with seatgate already imported, so they are ready in
    # milliseconds (spawn re-imports everything, ~1.5 s of CPU per process). Each child still
    # builds its own App, engine and connections; the parent holds no open connection.
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    barrier = ctx.Barrier(WORKERS)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=process_worker, args=(url, email, barrier, results))
        for email in emails()
    ]
    for p in procs:
        p.start()
    out = [results.get(timeout=BARRIER_TIMEOUT * 2) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    return out


def assert_exactly_ten_assigned(url: str, outcomes: list[tuple[str, str]]) -> None:
    by_outcome: dict[str, int] = {}
    for _, outcome in outcomes:
        by_outcome[outcome] = by_outcome.get(outcome, 0) + 1
    assert by_outcome == {"assigned": SEATS, "capacity_reached": WORKERS - SEATS}

    app = App(url, clock=FixedClock(AT))
    try:
        with app.db.read() as conn:
            held = conn.execute(sa.select(sa.func.count()).select_from(seats)).scalar_one()
            ledger = conn.execute(
                sa.select(seat_ledger.c.assigned_after).order_by(seat_ledger.c.id)
            ).scalars()
            steps = list(ledger)
        assert held == SEATS
        # Each assignment saw the one before it: the ledger counts 1, 2, ... 10 with no repeat.
        assert steps == list(range(1, SEATS + 1))
        winners = {email for email, outcome in outcomes if outcome == "assigned"}
        decision_seated = {
            e for e in emails() if app.check("acme", PRODUCT, e, "cti", AT).reason == "seated"
        }
        assert decision_seated == winners
    finally:
        app.db.dispose()


Runner = Callable[[str], list[tuple[str, str]]]


@pytest.mark.parametrize("runner", [run_threads, run_processes], ids=["threads", "processes"])
def test_twenty_workers_ten_seats_sqlite(sqlite_url: str, runner: Runner) -> None:
    prepare(sqlite_url)
    assert_exactly_ten_assigned(sqlite_url, runner(sqlite_url))


@pytest.mark.postgres
@pytest.mark.parametrize("runner", [run_threads, run_processes], ids=["threads", "processes"])
def test_twenty_workers_ten_seats_postgres(postgres_url: str, runner: Runner) -> None:
    prepare(postgres_url)
    assert_exactly_ten_assigned(postgres_url, runner(postgres_url))
