"""Users gaining a role seated in the transaction that writes their role (issue 12 item 9).

When nobody waited for a seat before the run and the contract has room for every user the run
gives a role, the run seats those users as it inserts them (``_Reconcile._plan_inline``) instead
of writing them to the waiting list and seating them in auto install's batches. That is only
right if it leaves what auto install leaves: the same seats, waiting list, seat ledger (each
seat's ``assigned_after``: the pull order), counts, events and billing commitments, whatever
the mix. A run that dies between two batches leaves every user holding a role seated or
waiting. Auto install's batches carry the seat count from one to the next while nobody else
changes the seats (``SeatTally``), and count again when someone did."""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock, parse_instant
from seatgate.core.domain.events import Event, SeatsAssigned, UsersActivated
from seatgate.core.plugins import ExternalUser, hookimpl
from seatgate.core.services import sync as sync_service
from seatgate.core.storage.db import Database
from seatgate.core.storage.repositories.sync import SqlSyncStore
from seatgate.core.storage.tables import (
    audit_log,
    auto_install_waiting,
    commitments,
    integration_users,
    seat_ledger,
)
from seatgate.core.testing.memory import MemorySandbox

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
AT = parse_instant("2026-02-01T12:00:00Z")


class Events:
    """Every event delivered after its commit."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    @hookimpl
    def seatgate_event(self, event: Event) -> None:
        self.events.append(event)


def record(n: int, email: int, active: bool, agent: bool) -> ExternalUser:
    return ExternalUser(
        f"r{n}", f"u{email}@example.com", f"U{email}", active, ("Agent",) if agent else ("Admin",)
    )


@contextlib.contextmanager
def path(inline: bool) -> Iterator[None]:
    """The run's gainers seated with their role where the rule allows (``inline``), or always
    through the waiting list and auto install (the path before issue 12 item 9, still taken when
    someone waited or the contract cannot seat them all)."""
    with pytest.MonkeyPatch.context() as mp:
        if not inline:
            mp.setattr(sync_service._Reconcile, "_plan_inline", lambda self: None)
        yield


def state(app: App) -> dict[str, Any]:
    """What a run leaves in the database, by email (ids are the same on both paths, but the
    emails say more when a comparison fails)."""
    iu = integration_users
    with app.db.read() as conn:
        email_of = dict(conn.execute(sa.select(iu.c.id, iu.c.email)).all())
        w = auto_install_waiting
        waiting = sorted(
            (email_of[r.user_id], r.reason, r.since)
            for r in conn.execute(sa.select(w.c.user_id, w.c.reason, w.c.since))
        )
        ledger = [
            tuple(r)
            for r in conn.execute(
                sa.select(
                    seat_ledger.c.email,
                    seat_ledger.c.action,
                    seat_ledger.c.actor,
                    seat_ledger.c.reason,
                    seat_ledger.c.at,
                    seat_ledger.c.assigned_after,
                ).order_by(seat_ledger.c.id)
            )
        ]
        audit = [
            (r.action, r.outcome, r.actor)
            for r in conn.execute(sa.select(audit_log).order_by(audit_log.c.id))
        ]
        bought = [
            (r.action, r.actor, r.detail.get("added"), r.detail.get("above_contract"))
            for r in conn.execute(sa.select(commitments).order_by(commitments.c.id))
        ]
    added = sum(a or 0 for _, _, a, _ in bought)
    above = sum(b or 0 for _, _, _, b in bought)
    return {
        "seats": app.seats.seated_emails(ACCOUNT, P),
        "waiting": waiting,
        "ledger": ledger,
        "audit": audit,
        # One commitment per activation event: how many depends on the batches (their sizes
        # follow the time they take, on either path); what they add up to does not.
        "commitments": (sorted({(a, b) for a, b, _, _ in bought}), added, above),
        "agents": sorted((a["email"], a["active"]) for a in app.sync.agents(ACCOUNT, P)),
    }


def seat_events(events: list[Event]) -> dict[str, Any]:
    """The seat events in delivery order, their batches joined (:func:`state`'s commitments)."""
    assigned = [e for e in events if isinstance(e, SeatsAssigned)]
    activated = [e for e in events if isinstance(e, UsersActivated)]
    return {
        "assigned": [x for e in assigned for x in e.emails],
        "assigned_by": sorted({(e.actor, e.reason) for e in assigned}),
        "activated": [x for e in activated for x in e.emails],
        "activated_by": sorted({(e.actor, e.currency) for e in activated}),
        "assigned_after": [e.assigned_after for e in activated][-1:],
        "above_contract": sum(e.above_contract for e in activated),
        "price_shown": sum((Decimal(e.price_shown) for e in activated), Decimal(0)),
        "others": sorted(type(e).__name__ for e in events if e not in assigned + activated),
    }


def outcome(result: sync_service.SyncResult) -> tuple[Any, ...]:
    s = result.summary
    return (
        s.outcome,
        s.created,
        s.updated,
        s.deactivated,
        s.quarantined,
        s.seated,
        s.gated,
        s.agents_synced,
        result.waiting,
        s.message,
    )


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database, copied for each example (migrating takes longer than a run)."""
    file = tmp_path_factory.mktemp("template") / "seatgate.db"
    Database(f"sqlite:///{file}").dispose()
    return file


@pytest.fixture
def fresh(request: pytest.FixtureRequest, db_url: str, tmp_path: Path) -> Callable[[], str]:
    """A new empty database per call, of the kind ``db_url`` is (examples share no state)."""
    if db_url.startswith("sqlite"):
        file = request.getfixturevalue("template")

        def sqlite() -> str:
            copy = tmp_path / f"{uuid.uuid4().hex}.db"
            shutil.copyfile(file, copy)
            return f"sqlite:///{copy}"

        return sqlite
    base = db_url.split("?", 1)[0]
    admin = sa.create_engine(base)
    made: list[str] = []

    def postgres() -> str:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        made.append(schema)
        return f"{base}?options={quote(f'-csearch_path={schema}')}"

    def drop() -> None:
        for schema in made:  # one a transaction: each holds a lock per table it drops
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    request.addfinalizer(drop)
    return postgres


@pytest.fixture
def crm(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemorySandbox]:
    with MemorySandbox(users=0) as sandbox:
        monkeypatch.setenv(KEY_ENV, sandbox.settings()["api_key"])
        yield sandbox


Records = list[tuple[int, bool, bool]]  # (email number, active, holds the activated role)


def world(
    url: str,
    crm: MemorySandbox,
    *,
    inline: bool,
    mode: str,
    seats: int,
    known: set[int],
    seated: set[int],
    runs: list[tuple[Records, int]],
) -> dict[str, Any]:
    """Runs on a new database: an account whose users ``known`` exist before any sync (those
    ``seated`` hold seats), then one forced full sync per item of ``runs`` — the CRM's records,
    and the contracted seats set before it. Everything the runs left, after each."""
    events = Events()
    app = make_app(url, FixedClock(AT), memory_plugins(("events", events)))
    out: dict[str, Any] = {}
    try:
        setup_account(app, seats=seats, mode=mode)
        if known:
            app.accounts.add_users(ACCOUNT, [f"u{n}@example.com" for n in sorted(known)])
        if seated:
            app.assign(ACCOUNT, P, [f"u{n}@example.com" for n in sorted(seated)], ADMIN)
        config = memory_config(crm, page_size=3, activated_roles=["Agent"])
        app.installs.install(ACCOUNT, P, config, ADMIN)
        for i, (records, quantity) in enumerate(runs):
            crm.extra = [record(n, *r) for n, r in enumerate(records)]
            if i:
                app.contracts.set_quantity(ACCOUNT, P, quantity, ADMIN)
            with path(inline):
                result = app.sync.sync(ACCOUNT, P, full=True, force=True)
            out[f"run {i}"] = (outcome(result), state(app), seat_events(events.events))
            events.events.clear()
    finally:
        app.db.dispose()
    return out


#: Few emails: twins (two records of one email) are common.
records = st.lists(
    st.tuples(st.integers(0, 6), st.booleans(), st.booleans()), min_size=1, max_size=12
)
#: An email whose first record is inactive is weighed at the end of the pull, after the others
#: are written, but comes first in the pull: its seat comes first.
TWINS: Records = [(0, False, True), (0, True, True), (1, True, True), (2, True, True)]


def test_seating_with_the_role_leaves_what_auto_install_leaves(
    fresh: Callable[[], str], crm: MemorySandbox, monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    """Over random pulls (twins, inactive records, users the account knew, seats held before,
    too few seats, a second run with someone waiting), the two paths leave the same. (Fewer
    examples on PostgreSQL: each makes two schemas.)"""
    monkeypatch.setattr(sync_service, "BATCH", 2)  # several batches of each step

    @given(
        mode=st.sampled_from(["hard_cap", "auto_expand"]),
        seats=st.integers(1, 12),
        first=records,
        known=st.sets(st.integers(0, 6), max_size=4),
        seated=st.sets(st.integers(0, 6), max_size=3),
        second=st.none() | st.tuples(records, st.integers(1, 12)),
    )
    @example(mode="hard_cap", seats=9, first=TWINS, known=set(), seated=set(), second=None)
    # u0 is a user the account knew: linked, not inserted; it comes first in the pull.
    @example(mode="hard_cap", seats=9, first=TWINS[1:], known={0}, seated=set(), second=None)
    # Two users wait after the first run; the second brings more seats and two new users.
    @example(
        mode="hard_cap",
        seats=1,
        first=TWINS,
        known=set(),
        seated=set(),
        second=([*TWINS, (3, True, True), (4, True, True)], 9),
    )
    @example(
        mode="auto_expand", seats=1, first=TWINS, known={3}, seated={3}, second=(TWINS[::-1], 2)
    )
    @settings(
        max_examples=60 if db_url.startswith("sqlite") else 12,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    def same(
        mode: str,
        seats: int,
        first: Records,
        known: set[int],
        seated: set[int],
        second: tuple[Records, int] | None,
    ) -> None:
        runs = [(first, seats), *([second] if second else [])]
        kw: dict[str, Any] = dict(
            mode=mode, seats=seats, known=known, seated=seated & known, runs=runs
        )
        assert world(fresh(), crm, inline=True, **kw) == world(fresh(), crm, inline=False, **kw)

    same()


# -- which path a run takes ------------------------------------------------------------------------

OUTSIDER = "outsider@acme.example"


@pytest.fixture
def agents(crm: MemorySandbox) -> set[str]:
    """The CRM: 40 users, the odd ones holding the activated role."""
    crm.extra = [record(n, n, True, n % 2 == 1) for n in range(40)]
    return {f"u{n}@example.com" for n in range(1, 40, 2)}


@pytest.fixture
def installed(
    db_url: str, crm: MemorySandbox, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., App]]:
    """Call with the contracted seats (and mode): the App with the account, an outsider it
    knows, and ``memory`` installed."""
    made: list[App] = []

    def make(seats: int, mode: str = "hard_cap") -> App:
        app = make_app(db_url, FixedClock(AT), memory_plugins())
        made.append(app)
        setup_account(app, seats=seats, mode=mode)
        app.accounts.add_users(ACCOUNT, [OUTSIDER])
        config = memory_config(crm, page_size=10, activated_roles=["Agent"])
        app.installs.install(ACCOUNT, P, config, ADMIN)
        return app

    monkeypatch.setattr(sync_service, "BATCH", 4)  # 40 users: several batches of each step
    yield make
    for app in made:
        app.db.dispose()


def statements(app: App) -> list[str]:
    """The statements ``app`` runs from now on (a list that grows)."""
    seen: list[str] = []

    @sa.event.listens_for(app.db.engine, "before_cursor_execute")
    def _statement(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()))

    return seen


def seat_counts(run: list[str]) -> int:
    """The statements of ``run`` that count a product's seats (they read every seat)."""
    return sum(1 for s in run if "count(*)" in s.lower() and "FROM seats" in s)


def test_a_contract_with_room_for_every_gainer_seats_them_with_their_role(
    installed: Callable[..., App], agents: set[str]
) -> None:
    """No waiting-list row is written or deleted, no auto install batch runs, and the seats are
    counted a few times a run, not once per batch (the tally carries the count)."""
    app = installed(seats=len(agents))
    run = statements(app)
    result = app.sync.sync(ACCOUNT, P)
    assert (result.summary.seated, result.waiting) == (len(agents), 0)
    assert set(app.seats.seated_emails(ACCOUNT, P)) == agents
    written = [s for s in run if "auto_install_waiting" in s and not s.startswith("SELECT")]
    assert written == []
    # _plan_inline's (with the contract's version: the batches carry it) and the gate's.
    assert seat_counts(run) == 2
    inserts = [s for s in run if s.startswith("INSERT INTO seats ")]
    assert len(inserts) > 3  # seated over several batches


def test_a_contract_short_of_seats_seats_through_the_waiting_list_as_before(
    installed: Callable[..., App], agents: set[str]
) -> None:
    """One seat short: every gainer waits from the batch that writes its role, auto install
    seats them in pull order up to capacity (its batches counting the seats once), the last
    waits."""
    app = installed(seats=len(agents) - 1)
    run = statements(app)
    result = app.sync.sync(ACCOUNT, P)
    assert (result.summary.seated, result.waiting) == (len(agents) - 1, 1)
    joined = [s for s in run if s.startswith("INSERT INTO auto_install_waiting ")]
    assert len(joined) >= 2  # the user batches' pending rows, then the one refused
    assert seat_counts(run) == 3  # _plan_inline's, auto install's first batch's, the gate's
    with app.db.read() as conn:
        (email,) = conn.execute(
            sa.select(integration_users.c.email).join(
                auto_install_waiting, auto_install_waiting.c.user_id == integration_users.c.id
            )
        ).scalars()
    assert email == "u39@example.com"  # the last in pull order


def test_auto_expand_seats_every_gainer_with_their_role_above_the_contract(
    installed: Callable[..., App], agents: set[str]
) -> None:
    app = installed(seats=1, mode="auto_expand")
    run = statements(app)
    result = app.sync.sync(ACCOUNT, P)
    assert (result.summary.seated, result.waiting) == (len(agents), 0)
    assert not [s for s in run if s.startswith("INSERT INTO auto_install_waiting ")]


# -- a run that dies between batches ---------------------------------------------------------------


def holders_without_seat_or_place(app: App) -> set[str]:
    """Users holding the activated role (an active link with it, active user) who neither hold a
    seat nor wait for one."""
    with app.db.read() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT u.email FROM integration_users AS u "
                "JOIN external_ids AS x ON x.user_id = u.id "
                "WHERE u.active AND x.active AND x.roles LIKE '%Agent%' "
                "AND NOT EXISTS (SELECT 1 FROM seats AS s WHERE s.user_id = u.id) "
                "AND NOT EXISTS (SELECT 1 FROM auto_install_waiting AS w WHERE w.user_id = u.id)"
            )
        ).scalars()
        return set(rows)


@pytest.mark.parametrize("dies_at", [2, 3])
@pytest.mark.parametrize("seats", [20, 19])  # room for every gainer; one seat short
def test_a_run_dying_between_batches_leaves_every_role_holder_seated_or_waiting(
    installed: Callable[..., App],
    agents: set[str],
    monkeypatch: pytest.MonkeyPatch,
    dies_at: int,
    seats: int,
) -> None:
    """The run dies in its ``dies_at``-th user batch; what committed before holds every role it
    wrote with a seat or a waiting-list row; the rerun seats every role holder it has room for,
    in pull order."""
    app = installed(seats=seats)
    calls = [0]
    insert_users = SqlSyncStore.insert_users

    def dying(self: SqlSyncStore, *args: Any, **kwargs: Any) -> list[int]:
        calls[0] += 1
        ids = insert_users(self, *args, **kwargs)
        if calls[0] == dies_at:
            raise OSError("disk full")  # after this batch's users are written: rolled back
        return ids

    monkeypatch.setattr(SqlSyncStore, "insert_users", dying)
    failed = app.sync.sync(ACCOUNT, P)
    assert failed.outcome == "failed" and "disk full" in failed.summary.message
    monkeypatch.setattr(SqlSyncStore, "insert_users", insert_users)
    with app.db.read() as conn:
        users = conn.execute(sa.select(sa.func.count()).select_from(integration_users)).scalar()
    assert 1 < users < 41  # the outsider and some of the batches before the one that died
    assert holders_without_seat_or_place(app) == set()
    assert app.seats.seated_emails(ACCOUNT, P) != [] or seats < len(agents)
    again = app.sync.sync(ACCOUNT, P)
    assert again.outcome == "succeeded"
    held = set(app.seats.seated_emails(ACCOUNT, P))
    expected = sorted(agents, key=lambda e: int(e[1:].split("@")[0]))[:seats]
    assert held == set(expected)
    assert holders_without_seat_or_place(app) == set()


# -- the seat count carried between a run's batches ------------------------------------------------


@pytest.mark.parametrize("inline", [True, False])
def test_a_seat_an_admin_assigns_between_two_batches_is_counted(
    installed: Callable[..., App],
    agents: set[str],
    monkeypatch: pytest.MonkeyPatch,
    inline: bool,
) -> None:
    """Room for exactly every gainer; between two batches that seat them (with their role, or in
    auto install) an admin seats someone else. The run's next batch finds the contract's version
    moved and counts the seats again: the hard cap holds, the last gainer waits."""
    app = installed(seats=len(agents))
    seating = [False]
    real_auto = sync_service._Reconcile._auto_install

    def auto_install(self: sync_service._Reconcile) -> None:
        seating[0] = True
        real_auto(self)

    monkeypatch.setattr(sync_service._Reconcile, "_auto_install", auto_install)
    done: list[Any] = []
    real_beater = sync_service.SyncService._beater

    def beater(self: sync_service.SyncService, run_id: int) -> Callable[[], None]:
        beat = real_beater(self, run_id)

        def between() -> None:
            beat()
            if (seating[0] or inline) and not done and app.seats.seated_emails(ACCOUNT, P):
                done.append(app.assign(ACCOUNT, P, [OUTSIDER], ADMIN))

        return between

    monkeypatch.setattr(sync_service.SyncService, "_beater", beater)
    with path(inline):
        result = app.sync.sync(ACCOUNT, P)
    assert done and done[0].assigned == [OUTSIDER]
    held = app.seats.seated_emails(ACCOUNT, P)
    assert len(held) == len(agents)  # the contract's seats, not one more
    assert (result.summary.seated, result.waiting) == (len(agents) - 1, 1)
    assert "u39@example.com" not in held  # the last in pull order waits
