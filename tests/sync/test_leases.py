"""Issue 13 item 10: a run is recorded when it starts, with a lease (owner, heartbeat, expiry). A
run whose process died shows as ``interrupted`` with its start time once its lease expired, and the
next run says it found one; a second run of the connector while a live lease exists is skipped."""

from __future__ import annotations

import contextlib
import datetime as dt
import multiprocessing
import os
import signal
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
import sqlalchemy as sa

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock
from seatgate.core.domain import sync as sync_rules
from seatgate.core.plugins import RequestContext, UserPage, hookimpl
from seatgate.core.services import stopping
from seatgate.core.services.sync import LEASE_SECONDS, SyncService, default_owner, owner_is_dead
from seatgate.core.storage.tables import sync_runs
from seatgate.core.testing.memory import MemoryAdapter, MemorySandbox

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


class Killed(BaseException):
    """The process dies here: nothing after it runs (not even ``except Exception``)."""


@pytest.fixture
def app(
    db_url: str,
    clock: FixedClock,
    adapter: StepAdapter,
    crm: MemorySandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[App]:
    monkeypatch.setenv(KEY_ENV, crm.settings()["api_key"])
    application = make_app(db_url, clock, memory_plugins(adapter=adapter))
    setup_account(application)
    application.installs.install(ACCOUNT, P, memory_config(crm, page_size=10), ADMIN)
    yield application
    application.db.dispose()


def rows(app: App) -> list[Any]:
    with app.db.read() as conn:
        return conn.execute(sa.select(sync_runs).order_by(sync_runs.c.id)).all()


def die_at(adapter: StepAdapter, page: int) -> None:
    def on_page(n: int) -> None:
        if n == page:
            raise Killed()

    adapter.on_page = on_page


def test_a_dead_run_shows_interrupted_with_its_start_and_the_next_run_finds_it(
    app: App, adapter: StepAdapter, clock: FixedClock
) -> None:
    assert app.sync.sync(ACCOUNT, P).outcome == "succeeded"
    clock.advance(hours=1)
    died_at = clock.now()
    die_at(adapter, 2)
    with pytest.raises(Killed):
        app.sync.sync(ACCOUNT, P, full=True)
    dead = rows(app)[-1]
    assert (dead.outcome, dead.started_at, dead.owner) == ("running", died_at, app.sync.owner)
    shown = app.sync.runs(ACCOUNT)[0]
    assert (shown["id"], shown["outcome"]) == (dead.id, "running")  # the lease is still live

    clock.advance(seconds=LEASE_SECONDS + 1)
    shown = app.sync.runs(ACCOUNT)[0]
    assert (shown["id"], shown["outcome"], shown["started_at"]) == (
        dead.id,
        "interrupted",
        died_at,
    )
    assert died_at.isoformat() in shown["message"]
    # The admin listings (HTTP API, console, runs show) show it the same way.
    (listed,) = [r for r in app.listings.runs(ACCOUNT).items if r["id"] == dead.id]
    assert {k: listed[k] for k in shown} == shown
    assert app.listings.run(None, dead.id)["outcome"] == "interrupted"
    assert "owner" not in listed and "lease_expires_at" not in listed

    adapter.on_page = None
    result = app.sync.sync(ACCOUNT, P)
    assert result.outcome == "succeeded"
    assert result.interrupted == [{"run": dead.id, "started_at": died_at}]
    assert result.as_dict()["interrupted"] == [{"run": dead.id, "started_at": died_at.isoformat()}]
    assert f"found interrupted run(s) {dead.id}" in result.summary.message
    assert rows(app)[-2].outcome == "interrupted"  # recorded so, not only shown
    assert [r.id for r in rows(app)] == sorted(r.id for r in rows(app))  # no id lost or reused
    again = app.sync.sync(ACCOUNT, P)
    assert again.interrupted == [] and "interrupted" not in again.as_dict()


def test_a_second_run_while_a_live_lease_exists_is_skipped(app: App, adapter: StepAdapter) -> None:
    inner: list[Any] = []

    def on_page(n: int) -> None:
        if n == 1:
            inner.append(app.sync.sync(ACCOUNT, P))

    adapter.on_page = on_page
    outer = app.sync.sync(ACCOUNT, P)
    assert outer.outcome == "succeeded" and outer.summary.agents_synced == 40
    (skipped,) = inner
    assert skipped.outcome == "skipped" and skipped.remedy == "wait" and skipped.run_id is None
    assert f"run {outer.run_id} of memory for acme is under way" in skipped.summary.message
    assert [r.outcome for r in rows(app)] == ["succeeded"]  # the skipped run wrote no row


def test_the_lease_is_renewed_while_the_run_pulls(
    app: App, adapter: StepAdapter, clock: FixedClock
) -> None:
    seen: list[tuple[str, str]] = []

    def on_page(n: int) -> None:
        clock.advance(seconds=LEASE_SECONDS / 2)  # a slow CRM: the pull outlives its first lease
        if n == 3:
            seen.append((app.sync.runs(ACCOUNT)[0]["outcome"], app.sync.sync(ACCOUNT, P).outcome))

    adapter.on_page = on_page
    assert app.sync.sync(ACCOUNT, P).outcome == "succeeded"
    assert seen == [("running", "skipped")]
    assert rows(app)[-1].heartbeat_at > rows(app)[-1].started_at


def test_the_lease_is_renewed_while_the_run_weighs_what_waited_for_the_end_of_the_pull(
    app: App, crm: MemorySandbox, clock: FixedClock
) -> None:
    """The end of the pull weighs the records left waiting (here a record moving to another
    email: two rounds of weighing) in one plan after the pull's last heartbeat; a plan longer
    than the lease keeps it, renewed between its rounds."""
    assert app.sync.sync(ACCOUNT, P).outcome == "succeeded"
    crm.store.change([1], email="moved@x.example")
    real = sync_rules._plan
    lapsed: list[dt.datetime] = []

    def slow(*args: Any) -> Any:
        out = real(*args)
        clock.advance(seconds=LEASE_SECONDS * 0.6)  # each round outlives half the lease
        with app.db.read() as conn:
            until = conn.execute(sa.select(sa.func.max(sync_runs.c.lease_expires_at))).scalar()
        if until is None or until.replace(tzinfo=dt.UTC) <= clock.now():
            lapsed.append(clock.now())
        return out

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sync_rules, "_plan", slow)
        result = app.sync.sync(ACCOUNT, P)
    assert result.outcome == "succeeded" and result.summary.updated == 1
    assert lapsed == []


def test_a_run_taken_for_dead_stops_and_applies_nothing(
    app: App, adapter: StepAdapter, clock: FixedClock
) -> None:
    inner: list[Any] = []

    def on_page(n: int) -> None:
        if n == 1:
            clock.advance(seconds=3 * LEASE_SECONDS)  # silent for longer than its lease
            adapter.on_page = None
            inner.append(app.sync.sync(ACCOUNT, P))

    adapter.on_page = on_page
    outer = app.sync.sync(ACCOUNT, P)
    assert inner[0].outcome == "succeeded" and len(inner[0].interrupted) == 1
    assert outer.outcome == "failed" and "lost its lease" in outer.summary.message
    assert outer.summary.created == 0


# -- a real kill -9 ------------------------------------------------------------------------------------
class BlockingAdapter(MemoryAdapter):
    """After the first page, tells the parent the run is under way and blocks until killed."""

    def __init__(self, started: Any) -> None:
        self.started = started

    @hookimpl
    def seatgate_pull_users(
        self,
        product: str,
        settings: Mapping[str, Any],
        since: dt.datetime | None,
        ctx: RequestContext,
    ) -> Iterator[UserPage]:
        pages = MemoryAdapter.seatgate_pull_users(self, product, settings, since, ctx)
        yield next(iter(pages))
        self.started.set()
        threading.Event().wait()  # until SIGKILL
        yield from pages  # never reached


def _child(url: str, instant: dt.datetime, started: Any, *_: Any) -> None:
    app = make_app(url, FixedClock(instant), memory_plugins(adapter=BlockingAdapter(started)))
    app.sync.sync(ACCOUNT, P, full=True)


@contextlib.contextmanager
def stopped_mid_pull(
    db_url: str,
    clock: FixedClock,
    crm: MemorySandbox,
    monkeypatch: pytest.MonkeyPatch,
    target: Callable[..., None],
    sig: int,
    *,
    again: bool = False,
) -> Iterator[tuple[App, int | None]]:
    """An App whose connector's first sync ran in a child process (``target``) sent ``sig``
    mid-pull; yields it with the child's exit code. ``again``: ``sig`` is sent a second time once
    the child says it is handling the first (``target`` gets two more events: it sets the first
    there and waits for the second, set once the signal is sent)."""
    if not hasattr(os, "fork"):
        pytest.skip("needs fork to share the in-process CRM")
    monkeypatch.setenv(KEY_ENV, crm.settings()["api_key"])
    app = make_app(db_url, clock, memory_plugins())
    try:
        setup_account(app)
        app.installs.install(ACCOUNT, P, memory_config(crm, page_size=10), ADMIN)
        context = multiprocessing.get_context("fork")
        started, handling, sent_again = context.Event(), context.Event(), context.Event()
        child = context.Process(
            target=target, args=(db_url, clock.now(), started, handling, sent_again)
        )
        child.start()
        assert started.wait(60), "the child's sync never started"
        os.kill(child.pid or 0, sig)
        if again:
            assert handling.wait(60), "the child never handled the first signal"
            os.kill(child.pid or 0, sig)
            sent_again.set()
        child.join(60)
        yield app, child.exitcode
    finally:
        app.db.dispose()


@pytest.fixture
def killed(
    db_url: str, clock: FixedClock, crm: MemorySandbox, monkeypatch: pytest.MonkeyPatch
) -> Iterator[App]:
    """An App whose connector's first sync ran in a child process killed with SIGKILL mid-pull."""
    with stopped_mid_pull(db_url, clock, crm, monkeypatch, _child, signal.SIGKILL) as (app, code):
        assert code == -signal.SIGKILL
        yield app


def test_kill_9_during_a_sync(killed: App, clock: FixedClock) -> None:
    app = killed
    assert [r["outcome"] for r in app.sync.runs(ACCOUNT)] == ["running"]
    clock.advance(seconds=LEASE_SECONDS + 1)
    (shown,) = app.sync.runs(ACCOUNT)
    assert shown["outcome"] == "interrupted" and shown["started_at"] < clock.now()
    result = app.sync.sync(ACCOUNT, P)
    assert result.outcome == "succeeded" and result.summary.created == 40
    assert [i["run"] for i in result.interrupted] == [shown["id"]]


def test_a_run_killed_on_this_machine_is_taken_over_at_once_on_a_frozen_clock(
    killed: App,
) -> None:
    """Its process is gone (same pid namespace, no such pid): the next run need not wait for the
    lease — which, with --as-of or SEATGATE_NOW, never expires."""
    (dead,) = rows(killed)
    result = killed.sync.sync(ACCOUNT, P)
    assert result.outcome == "succeeded" and result.summary.created == 40
    assert [i["run"] for i in result.interrupted] == [dead.id]
    assert [r.outcome for r in rows(killed)] == ["interrupted", "succeeded"]


def test_a_run_stopped_with_ctrl_c_gives_its_lease_back(app: App, adapter: StepAdapter) -> None:
    def on_page(n: int) -> None:
        if n == 2:
            raise KeyboardInterrupt

    adapter.on_page = on_page
    with pytest.raises(KeyboardInterrupt):
        app.sync.sync(ACCOUNT, P)
    (stopped,) = rows(app)
    assert stopped.outcome == "interrupted" and stopped.lease_expires_at is None
    assert "Ctrl-C" in stopped.message and stopped.pulled == 20
    adapter.on_page = None
    again = app.sync.sync(ACCOUNT, P)  # the clock has not moved: no lease to wait for
    assert again.outcome == "succeeded" and again.summary.created == 40


def test_an_owner_is_dead_only_when_known_gone_here() -> None:
    mine = default_owner()
    assert not owner_is_dead(mine)  # this process
    assert not owner_is_dead("fleet:" + mine)
    assert not owner_is_dead("host-1:123:abcd")  # no namespace: not known
    assert not owner_is_dead("other-host:1:abcd@000000000000.1")  # another namespace
    if "@" in mine:  # Linux: a pid no process has, in this namespace
        gone = mine.replace(f":{os.getpid()}:", f":{2**22 + 7}:")
        assert owner_is_dead(gone) and owner_is_dead("fleet:" + gone)


def test_a_holder_of_the_fleet_lock_takes_over_a_dead_fleet_runs_live_lease(
    app: App, adapter: StepAdapter
) -> None:
    """The fleet's worker holds the connector's advisory lock for its whole run, so when the
    next task gets that lock, a live lease owned by a fleet run is a dead worker's (issue 17
    item 3: the redelivered task converges instead of being skipped)."""
    fleet_side = SyncService(app.ports, owner="fleet:host-1-abc")
    die_at(adapter, 2)
    with pytest.raises(Killed):
        fleet_side.sync(ACCOUNT, P, full=True)
    adapter.on_page = None
    (dead,) = [r for r in rows(app) if r.outcome == "running"]
    # Not holding the lock (a run from the command line): the live lease stands.
    assert app.sync.sync(ACCOUNT, P).outcome == "skipped"
    # Another owner's prefix takes over nothing either.
    assert app.sync.sync(ACCOUNT, P, take_over_from="other:").outcome == "skipped"
    taken = app.sync.sync(ACCOUNT, P, take_over_from="fleet:")
    assert taken.outcome == "succeeded" and taken.summary.pulled == 40
    assert [i["run"] for i in taken.interrupted] == [dead.id]
    assert [r.outcome for r in rows(app) if r.id == dead.id] == ["interrupted"]


def _terminated_child(url: str, instant: dt.datetime, started: Any, *_: Any) -> None:
    from seatgate.core.entrypoints.cli import stop_on_sigterm

    stop_on_sigterm()  # what `seatgate` does first
    _child(url, instant, started)


def test_sigterm_during_a_sync_records_it_interrupted_and_frees_the_lease(
    db_url: str, clock: FixedClock, crm: MemorySandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A supervisor's stop (SIGTERM) of `seatgate sync`: the run is recorded interrupted, its
    lease is given back at once (the next run is not skipped), the process exits 143."""
    with stopped_mid_pull(db_url, clock, crm, monkeypatch, _terminated_child, signal.SIGTERM) as (
        app,
        code,
    ):
        assert code == 128 + signal.SIGTERM
        assert rows(app)[-1].outcome == "interrupted"
        result = app.sync.sync(ACCOUNT, P)  # on the same frozen clock: not skipped
        assert result.outcome == "succeeded" and result.summary.created == 40
        assert result.interrupted == []  # recorded by the stopped run itself


def _terminated_twice_child(
    url: str, instant: dt.datetime, started: Any, handling: Any, sent_again: Any
) -> None:
    """`seatgate sync` whose run, while it records itself interrupted after the first SIGTERM,
    lets the parent send the second and waits until it was sent (the signal arrives during the
    wait, which it interrupts)."""
    from seatgate.core.entrypoints.cli import stop_on_sigterm

    stop_on_sigterm()
    app = make_app(url, FixedClock(instant), memory_plugins(adapter=BlockingAdapter(started)))

    def recording_interrupted(*args: Any) -> None:
        parameters = args[3]
        values = parameters.values() if isinstance(parameters, dict) else parameters
        if "interrupted" in values and not handling.is_set():
            handling.set()
            sent_again.wait(60)

    sa.event.listen(app.db.engine, "before_cursor_execute", recording_interrupted)
    app.sync.sync(ACCOUNT, P, full=True)


def test_a_second_sigterm_while_the_first_is_handled_changes_nothing(
    db_url: str,
    clock: FixedClock,
    crm: MemorySandbox,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A supervisor (or an impatient operator) sends SIGTERM twice: the second lands while the
    run records itself interrupted. It must not cut that record short (the lease would be left
    to expire) nor print a traceback; the exit is 143 all the same."""
    with stopped_mid_pull(
        db_url, clock, crm, monkeypatch, _terminated_twice_child, signal.SIGTERM, again=True
    ) as (app, code):
        assert code == 128 + signal.SIGTERM
        stopped = rows(app)[-1]
        assert stopped.outcome == "interrupted" and stopped.lease_expires_at is None
    assert "Traceback" not in capfd.readouterr().err


# -- a stop that breaks the driver's call ---------------------------------------------------------------
@pytest.fixture
def stop_note() -> Iterator[None]:
    """The process-wide note of a requested stop, forgotten after the test (pytest runs on)."""
    stopping.reset()
    yield
    stopping.reset()


def _driver_error(app: App) -> type[Exception]:
    """The exception the database driver raises for a call made in a state it cannot be in."""
    if app.db.is_sqlite:
        return sqlite3.ProgrammingError
    import psycopg

    return psycopg.ProgrammingError


def _sigterm() -> None:
    from seatgate.core.entrypoints.cli import _terminated

    _terminated(signal.SIGTERM, None)  # what the signal runs: notes the stop, raises SystemExit


#: What psycopg says when SQLAlchemy rolls back the connection a signal broke mid-call.
BROKEN = "can't change 'autocommit' now: connection in transaction status ACTIVE"


@contextlib.contextmanager
def stop_breaks_the_next_statement(
    app: App, signal_lands: Callable[[], None] = _sigterm
) -> Iterator[Callable[[], None]]:
    """What a SIGTERM sent during PostgreSQL calls does about one time in eight (measured, psycopg
    3.3): its ``SystemExit`` is raised inside the driver's call and, as the driver and SQLAlchemy
    unwind, the driver's own error comes out instead, chained to it. Yields ``arm``: the next
    statement runs the signal's handler (``signal_lands``) and fails so; later ones run."""
    armed = [False]
    error = _driver_error(app)

    def hook(*_: Any) -> None:
        if armed[0]:
            armed[0] = False
            try:
                signal_lands()
            finally:
                raise error(BROKEN)  # while the stop unwinds: its context is the stop

    sa.event.listen(app.db.engine, "before_cursor_execute", hook)
    try:
        yield lambda: armed.__setitem__(0, True)
    finally:
        sa.event.remove(app.db.engine, "before_cursor_execute", hook)


@pytest.mark.usefixtures("stop_note")
def test_a_stop_that_breaks_a_database_call_records_the_run_interrupted(
    app: App, adapter: StepAdapter
) -> None:
    with stop_breaks_the_next_statement(app) as arm:

        def on_page(n: int) -> None:
            if n == 2:
                arm()  # the page's read of the links and users it names

        adapter.on_page = on_page
        with pytest.raises(SystemExit) as stopped:
            app.sync.sync(ACCOUNT, P)
    assert stopped.value.code == 128 + signal.SIGTERM
    cause = stopped.value.__cause__  # SQLAlchemy's wrapper of the driver's error
    assert isinstance(getattr(cause, "orig", cause), _driver_error(app))
    (run,) = rows(app)
    assert (run.outcome, run.lease_expires_at) == ("interrupted", None)
    assert "ProgrammingError" not in (run.message or "")
    stopping.reset()
    adapter.on_page = None
    again = app.sync.sync(ACCOUNT, P)  # the frozen clock has not moved: no lease to wait for
    assert again.outcome == "succeeded" and again.summary.created == 40


@pytest.mark.usefixtures("stop_note")
def test_a_stop_that_breaks_the_failed_runs_record_records_it_interrupted(
    app: App, adapter: StepAdapter
) -> None:
    """The CRM failed the pull; SIGTERM came while the run's failure was being written."""
    with stop_breaks_the_next_statement(app) as arm:

        def on_page(n: int) -> None:
            if n == 2:
                arm_next_write.append(True)
                raise RuntimeError("the CRM went away")

        arm_next_write: list[bool] = []
        original = app.ports.db.write

        def write(**kwargs: Any) -> Any:
            if arm_next_write:
                arm_next_write.clear()
                arm()
            return original(**kwargs)

        adapter.on_page = on_page
        with (
            pytest.MonkeyPatch.context() as patch,
            pytest.raises(SystemExit) as stopped,
        ):
            patch.setattr(app.ports.db, "write", write)
            app.sync.sync(ACCOUNT, P)
    assert stopped.value.code == 128 + signal.SIGTERM
    (run,) = rows(app)
    assert (run.outcome, run.lease_expires_at) == ("interrupted", None)


def sigterm_after_the_write_that_leaves(app: App, outcomes: list[str]) -> int | None:
    """Sync once with SIGTERM landing right after the first write transaction that commits the
    runs' ``outcomes`` (before the write's block returns); the exit status, None if it never
    landed."""
    original = app.ports.db.write
    done: list[bool] = []

    @contextlib.contextmanager
    def write(**kwargs: Any) -> Iterator[Any]:
        with original(**kwargs) as uow:
            yield uow
        with app.db.read() as conn:  # committed: the handler runs here
            now = conn.execute(sa.select(sync_runs.c.outcome).order_by(sync_runs.c.id))
            if now.scalars().all() == outcomes and not done:
                done.append(True)
                _sigterm()

    with pytest.MonkeyPatch.context() as patch, pytest.raises(SystemExit) as stopped:
        patch.setattr(app.ports.db, "write", write)
        app.sync.sync(ACCOUNT, P)
    code = stopped.value.code
    return code if done and isinstance(code, int) else None


def test_a_stop_after_the_runs_own_record_committed_leaves_that_record(
    app: App, stop_note: None
) -> None:
    """SIGTERM landing once the run's ``succeeded`` had committed, before the write's block
    returned: the run had ended, so its record stands (found by the review helper: it was
    overwritten ``interrupted``, with the counts of an unfinished run)."""
    assert sigterm_after_the_write_that_leaves(app, ["succeeded"]) == 128 + signal.SIGTERM
    (run,) = rows(app)
    assert (run.outcome, run.lease_expires_at) == ("succeeded", None)
    assert run.created > 0


def test_a_stop_right_after_the_runs_row_committed_records_it_interrupted(
    app: App, stop_note: None
) -> None:
    """SIGTERM landing once the run's ``running`` row (its lease) had committed, before the run
    went on: the run is recorded interrupted and its lease given back (the stop's scope had
    opened only after that transaction: the run stayed running until its lease expired, and on
    a frozen clock the next run was skipped)."""
    assert sigterm_after_the_write_that_leaves(app, ["running"]) == 128 + signal.SIGTERM
    (run,) = rows(app)
    assert (run.outcome, run.lease_expires_at, run.pulled) == ("interrupted", None, 0)
    stopping.reset()
    again = app.sync.sync(ACCOUNT, P)  # on the same frozen clock: not skipped
    assert again.outcome == "succeeded" and again.interrupted == []


@pytest.mark.usefixtures("stop_note")
def test_ctrl_c_that_breaks_a_database_call_records_the_run_interrupted(
    app: App, adapter: StepAdapter
) -> None:
    """Ctrl-C's ``KeyboardInterrupt`` raised inside the driver's call, the driver's error coming
    out instead: the CLI's SIGINT handler notes the stop, so the run is recorded interrupted and
    the command exits 130 (it had been recorded failed, an internal error)."""
    from seatgate.core.entrypoints.cli import _interrupted

    with stop_breaks_the_next_statement(app, lambda: _interrupted(signal.SIGINT, None)) as arm:

        def on_page(n: int) -> None:
            if n == 2:
                arm()

        adapter.on_page = on_page
        with pytest.raises(SystemExit) as stopped:
            app.sync.sync(ACCOUNT, P)
    assert stopped.value.code == 128 + signal.SIGINT
    (run,) = rows(app)
    assert (run.outcome, run.lease_expires_at) == ("interrupted", None)
