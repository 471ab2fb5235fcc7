"""The sync store's bulk writes say the same on SQLite and PostgreSQL.

The two databases take different paths (core/storage/bulk.py): SQLite multi-row INSERTs with ids
the run hands out itself; PostgreSQL one ``INSERT ... SELECT FROM unnest(arrays)`` per batch with
``ON CONFLICT DO NOTHING RETURNING``, ``UPDATE ... FROM unnest`` and ``= ANY(array)``, with the
columns declared fixed sent once when every row holds one value. Whatever a batch holds (new
users, users already there, an email twice, a user or link updated twice), both must leave the
rows a plain model of the rules leaves.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock, parse_instant
from seatgate.core.domain.sync import Staged
from seatgate.core.storage.repositories.sync import SqlSyncStore
from seatgate.core.storage.tables import (
    accounts,
    auto_install_waiting,
    external_ids,
    integration_users,
)

P = "memory"
AT = parse_instant("2026-03-01T09:00:00Z")
_accounts = itertools.count(1)  # account names and external ids unique across examples
_exts = itertools.count(1)


@pytest.fixture
def apps(sqlite_url: str, postgres_url: str) -> Iterator[list[App]]:
    """A SQLite and a PostgreSQL database for the test; each example of a property uses accounts
    of its own, so examples never see each other's rows."""
    out = [App(url, clock=FixedClock(AT)) for url in (sqlite_url, postgres_url)]
    try:
        yield out
    finally:
        for app in out:
            app.db.dispose()


@pytest.fixture
def app(db_url: str) -> Iterator[App]:
    out = App(db_url, clock=FixedClock(AT))
    try:
        yield out
    finally:
        out.db.dispose()


def _account(conn: sa.Connection) -> int:
    inserted = conn.execute(
        accounts.insert().values(name=f"acct-{next(_accounts)}", region="US", created_at=AT)
    ).inserted_primary_key
    assert inserted is not None
    return int(inserted[0])


# A batch: records over a small pool of emails (so repeats within a batch and across batches
# happen), each with an external id of its own, as the reconcile's plan gives them.
EMAILS = [f"u{i}@example.com" for i in range(6)]
ROLES = st.lists(st.sampled_from(["Agent", "Admin", "Viewer"]), unique=True, max_size=2).map(
    lambda r: tuple(sorted(r))
)
RECORD = st.tuples(st.sampled_from(EMAILS), st.text("ab ", max_size=4), st.booleans(), ROLES)
BATCHES = st.lists(st.lists(RECORD, min_size=1, max_size=8), min_size=1, max_size=3)
UPDATES = st.lists(st.tuples(st.integers(0, 20), st.text("xy", max_size=3), st.booleans(), ROLES))


def _run(
    app: App, batches: list[list[tuple[str, str, bool, tuple[str, ...]]]], updates: list[Any]
) -> dict[str, Any]:
    """Insert the batches (a transaction each), then update users and links by position among
    the records written; returns the account's users by email and links by record number."""
    exts: list[str] = []
    written: list[tuple[str, str, int]] = []  # (ext, email, user id) per record
    with app.db.write() as conn:
        acct = _account(conn)
    for batch in batches:
        records = []
        for email, name, active, roles in batch:
            exts.append(f"ext-{next(_exts)}")
            records.append(Staged(exts[-1], email, name, active, roles))
        with app.db.write() as conn:
            ids = SqlSyncStore(conn).insert_users(acct, P, records, AT)
        written += [(r.ext, r.email, uid) for r, uid in zip(records, ids, strict=True)]
    later = AT + dt.timedelta(hours=1)
    user_updates = []
    link_updates = []
    for pos, name, active, roles in updates:
        ext, email, uid = written[pos % len(written)]
        user_updates.append((uid, Staged(ext, f"new-{email}", name, active, roles)))
        link_updates.append((ext, not active, roles))
    with app.db.write() as conn:
        store = SqlSyncStore(conn)
        store.update_users(user_updates, later)
        store.update_links(acct, P, link_updates)
    with app.db.read() as conn:
        iu, x = integration_users, external_ids
        users = {
            r.id: (r.email, r.name, r.active, tuple(r.roles), r.updated_at)
            for r in conn.execute(sa.select(iu).where(iu.c.account_id == acct))
        }
        links = {
            r.external_id: (r.user_id, r.active, tuple(r.roles))
            for r in conn.execute(sa.select(x).where(x.c.account_id == acct, x.c.product == P))
        }
    # Ids differ between databases (PostgreSQL spends one per skipped conflict): compare by what
    # they point at, records numbered in the order they were written.
    return {
        "users": sorted(users.values()),
        "links": [(users[links[ext][0]], *links[ext][1:]) for ext in exts],
        "returned": [users[uid] for _, _, uid in written],
    }


def _model(batches: list[list[Any]], updates: list[Any]) -> dict[str, Any]:
    """The rules, plainly: an email's first record makes its user; each record links to its
    email's user with its own state; the last update of a user or a link is what stays."""
    later = AT + dt.timedelta(hours=1)
    users: dict[str, list[Any]] = {}
    order: list[str] = []  # the email of each record
    links: list[list[Any]] = []
    for batch in batches:
        for email, name, active, roles in batch:
            users.setdefault(email, [email, name, active, roles, AT])
            order.append(email)
            links.append([email, active, roles])
    for pos, name, active, roles in updates:
        i = pos % len(order)
        user = users[order[i]]
        user[:] = [f"new-{order[i]}", name, active, roles, later]
        links[i][1:] = [not active, roles]
    return {"users": users, "order": order, "links": links}


def _same_as_model(got: dict[str, Any], model: dict[str, Any]) -> None:
    users = {email: tuple(user) for email, user in model["users"].items()}
    assert got["users"] == sorted(users.values())
    assert got["returned"] == [users[email] for email in model["order"]]
    assert got["links"] == [(users[email], a, r) for email, a, r in model["links"]]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(batches=BATCHES, updates=UPDATES)
def test_batches_write_the_same_rows_on_sqlite_and_postgres(
    apps: list[App], batches: list[list[Any]], updates: list[Any]
) -> None:
    sqlite_app, pg_app = apps
    on_sqlite = _run(sqlite_app, batches, updates)
    on_pg = _run(pg_app, batches, updates)
    assert on_sqlite == on_pg
    _same_as_model(on_pg, _model(batches, updates))


def test_an_email_created_by_another_connector_is_linked_not_duplicated(app: App) -> None:
    with app.db.write() as conn:
        acct = _account(conn)
        # Another connector's run created this user since this run read what is known.
        theirs = SqlSyncStore(conn).insert_users(
            acct, "other", [Staged("o-1", "a@example.com", "A", True, ())], AT
        )
    with app.db.write() as conn:
        ids = SqlSyncStore(conn).insert_users(
            acct,
            P,
            [
                Staged("m-1", "a@example.com", "A again", False, ("Agent",)),
                Staged("m-2", "b@example.com", "B", True, ()),
            ],
            AT,
        )
    assert ids[0] == theirs[0] and ids[1] != theirs[0]
    with app.db.read() as conn:
        names = conn.execute(
            sa.select(integration_users.c.email, integration_users.c.name)
            .where(integration_users.c.account_id == acct)
            .order_by(integration_users.c.email)
        ).all()
    assert [tuple(r) for r in names] == [("a@example.com", "A"), ("b@example.com", "B")]


def test_fixed_columns_that_vary_and_a_key_upserted_twice_are_written_row_by_row(
    app: App,
) -> None:
    """``fixed`` is a hint: a batch whose fixed column holds several values is still written
    as given; a key twice in one upsert is written as two upserts in order."""
    days = [AT + dt.timedelta(days=d) for d in range(3)]
    with app.db.write() as conn:
        acct = _account(conn)
        store = SqlSyncStore(conn)
        uids = store.insert_users(
            acct, P, [Staged(f"w-{i}", f"w{i}@example.com", "", True, ()) for i in range(3)], AT
        )
        store.join_waiting(
            acct, P, [(uid, day, "pending") for uid, day in zip(uids, days, strict=True)]
        )
    with app.db.write() as conn:
        # The same user twice: the first row inserts, the second updates only the reason.
        SqlSyncStore(conn).join_waiting(
            acct, P, [(uids[0], days[2], "no_seat"), (uids[0], days[1], "capacity")]
        )
    w = auto_install_waiting
    with app.db.read() as conn:
        got = conn.execute(
            sa.select(w.c.user_id, w.c.since, w.c.reason)
            .where(w.c.account_id == acct)
            .order_by(w.c.user_id)
        ).all()
    assert [tuple(r) for r in got] == [
        (uids[0], days[0], "capacity"),
        (uids[1], days[1], "pending"),
        (uids[2], days[2], "pending"),
    ]


@pytest.mark.postgres
def test_a_table_is_analyzed_when_never_analyzed_or_a_run_wrote_a_large_share_of_it(
    postgres_url: str,
) -> None:
    """Issue 12 item 9 (fresh statistics after a bulk load) without re-analyzing a fleet's large
    shared tables after every small run: autovacuum's threshold, 50 rows + 10% of the table."""
    app = App(postgres_url, clock=FixedClock(AT))
    try:
        app.accounts.create("acme", "US")

        def load(n: int, start: int) -> None:
            with app.db.write() as conn:
                conn.execute(
                    sa.text(
                        "INSERT INTO integration_users "
                        "(account_id, email, name, active, roles, created_at, updated_at) "
                        "SELECT a.id, 'u' || g || '@acme.example', '', true, '[]', :at, :at "
                        "FROM accounts a, generate_series(CAST(:lo AS integer), CAST(:hi AS integer)) g WHERE a.name = 'acme'"
                    ),
                    {"at": AT, "lo": start, "hi": start + n - 1},
                )

        def analyzed_rows(written: int) -> float:
            with app.db.write() as conn:
                SqlSyncStore(conn).analyze(users=True, agents=False, written=written)
                return float(
                    conn.execute(
                        sa.text(
                            "SELECT reltuples FROM pg_class WHERE oid = 'integration_users'::regclass"
                        )
                    ).scalar_one()
                )

        load(3000, 0)
        assert analyzed_rows(3000) == 3000  # never analyzed: analyzed
        load(260, 3000)
        assert analyzed_rows(260) == 3000  # 260 <= 50 + 300: left to autovacuum
        load(400, 3260)
        assert analyzed_rows(400) == 3660  # 400 > 50 + 300: analyzed
    finally:
        app.close()


def test_lookups_by_array_are_planned_for_their_values_on_postgres(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 12 item 9: a prepared ``= ANY($1)`` may get a generic plan that compares every row
    with every element (130 ms for 1,000 emails among 10,000 users, measured); every statement of
    that kind a sync and its seats issue, and every lookup by array (``bulk.PROBE``), runs
    unprepared, so PostgreSQL plans it for the array's value. Forcing generic plans for the session (the worst the planner can do) changes no
    result."""
    from .conftest import KEY_ENV, memory_config, memory_plugins, setup_account

    app = App(postgres_url, clock=FixedClock(AT), plugins=memory_plugins())
    prepared: list[object] = []

    @sa.event.listens_for(app.db.engine, "connect")
    def _generic(dbapi_conn: Any, _record: Any) -> None:
        with dbapi_conn.cursor() as cursor:
            cursor.execute("SET plan_cache_mode = force_generic_plan")

    @sa.event.listens_for(app.db.engine, "before_cursor_execute")
    def _seen(conn: sa.Connection, _c: Any, statement: str, *_: Any) -> None:
        if "= ANY(" in statement or "= k.v OFFSET 0" in statement:
            prepared.append(conn.connection.driver_connection.prepare_threshold)  # type: ignore[union-attr]

    app.db.engine.dispose()  # the connections made from now on force generic plans
    try:
        from seatgate.core.testing.memory import MemorySandbox

        with MemorySandbox(users=60) as crm:
            monkeypatch.setenv(KEY_ENV, crm.settings()["api_key"])
            setup_account(app, seats=1000)
            app.installs.install(
                "acme", P, memory_config(crm, activated_roles=["Agent"]), "admin@acme.example"
            )
            first = app.sync.full_sync("acme", P)
            # More runs than psycopg's threshold (5) and PostgreSQL's custom plans (5) together.
            again = [app.sync.full_sync("acme", P) for _ in range(11)]
        assert first.created == 60 and first.seated > 0
        assert all(r.created == r.updated == r.deactivated == 0 for r in again)
        assert all(r.outcome == "succeeded" for r in again)
        assert prepared and set(prepared) == {None}
    finally:
        app.db.dispose()


def _account_of_users(app: App, conn: sa.Connection, users: int) -> int:
    """Account ``acme``'s id, made with ``users`` users ``u<n>@acme.example`` named ``U <n>``,
    written in one statement (PostgreSQL)."""
    app.accounts.create("acme", "US")
    account = int(conn.execute(sa.text("SELECT id FROM accounts WHERE name = 'acme'")).scalar_one())
    conn.execute(
        sa.text(
            "INSERT INTO integration_users "
            "(account_id, email, name, active, roles, created_at, updated_at) "
            "SELECT :a, 'u' || g || '@acme.example', 'U ' || g, true, '[]', :at, :at "
            "FROM generate_series(1, :n) g"
        ),
        {"a": account, "at": AT, "n": users},
    )
    return account


def _rows_read(plan: dict[str, Any], relation: str) -> float:
    """Index entries and rows a plan (EXPLAIN ANALYZE's JSON) read of ``relation``: the rows its
    scans returned plus those their filters removed, over every loop."""
    own = 0.0
    if plan.get("Relation Name") == relation:
        loops = plan.get("Actual Loops", 1)
        own = (plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)) * loops
    return own + sum(_rows_read(child, relation) for child in plan.get("Plans", ()))


@pytest.mark.postgres
def test_which_users_hold_a_seat_is_a_probe_per_user_whatever_the_planner_believes(
    postgres_url: str,
) -> None:
    """Issue 12 item 9: an auto install fills ``seats`` as it goes, before any ANALYZE of it, and
    asks per batch which of its users hold a seat already. With ``user_id = ANY(array)`` the
    planner, taking the account's seats for few, filtered every seat of the account (19,000 at
    the middle of a 100,000-user first sync, for 250 users); the lookup reads no more of
    ``seats`` than the users it asks about, on a table never analyzed."""
    from seatgate.core.storage.repositories.seats import SqlSeatStore

    app = App(postgres_url, clock=FixedClock(AT))
    try:
        with app.db.write() as conn:
            account = _account_of_users(app, conn, 5000)
            ids = [r[0] for r in conn.execute(sa.text("SELECT id FROM integration_users"))]
            # Every other user holds a seat; the table is never analyzed.
            conn.execute(
                sa.text(
                    "INSERT INTO seats (account_id, product, user_id, assigned_at, grandfathered) "
                    "SELECT :a, 'salesforce', u, :at, false FROM unnest(CAST(:ids AS integer[])) u"
                ),
                {"a": account, "at": AT, "ids": ids[::2]},
            )
        asked = ids[-250:]
        statements: list[tuple[str, Any]] = []

        @sa.event.listens_for(app.db.engine, "before_cursor_execute")
        def _seen(_conn: Any, _c: Any, statement: str, params: Any, *_: Any) -> None:
            if "FROM seats" in statement:
                statements.append((statement, params))

        with app.db.write() as conn:
            held = SqlSeatStore(conn).seated_ids(account, "salesforce", asked)
            assert held == set(asked[::2]) & set(ids[::2]) and len(held) == 125
            [(statement, params)] = statements
            plan = conn.exec_driver_sql(
                f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", params
            ).scalar_one()
        assert _rows_read(plan[0]["Plan"], "seats") <= len(asked)
    finally:
        app.close()


@pytest.mark.postgres
def test_a_pages_links_are_a_probe_per_external_id_with_fresh_statistics(
    postgres_url: str,
) -> None:
    """Issue 12 item 9: a resync looks up each page's links by external id. With
    ``external_id = ANY(array)`` of a page's ids and the tables analyzed after the first sync,
    the planner scanned every link and every user of the account and hash-joined them: 40 ms a
    page, 4.2 s of a 100,000-user resync. The lookup reads no more links and users than it asks
    about, and finds exactly the asked ids that are linked."""
    from seatgate.core.storage.repositories.sync import SqlSyncStore

    app = App(postgres_url, clock=FixedClock(AT))
    try:
        with app.db.write() as conn:
            account = _account_of_users(app, conn, 20000)
            conn.execute(
                sa.text(
                    "INSERT INTO external_ids (account_id, product, external_id, user_id, active, "
                    "roles) SELECT :a, 'salesforce', 'ext-' || id, id, true, '[\"Agent\"]' "
                    "FROM integration_users"
                ),
                {"a": account},
            )
            conn.execute(sa.text("ANALYZE integration_users, external_ids"))
            ids = [r[0] for r in conn.execute(sa.text("SELECT id FROM integration_users"))]
        # A page: 1,000 ids, 900 of them linked, 100 new.
        asked = [f"ext-{uid}" for uid in ids[5000:5900]] + [f"new-{i}" for i in range(100)]
        statements: list[tuple[str, Any]] = []

        @sa.event.listens_for(app.db.engine, "before_cursor_execute")
        def _seen(_conn: Any, _c: Any, statement: str, params: Any, *_: Any) -> None:
            if "external_ids" in statement and "integration_users" in statement:
                statements.append((statement, params))

        with app.db.write() as conn:
            found = SqlSyncStore(conn).linked(account, "salesforce", asked)
            assert sorted(found) == sorted(asked[:900])
            uid = ids[5000]
            state = found[f"ext-{uid}"]
            assert (state.user_id, state.link_roles, state.active) == (uid, ("Agent",), True)
            assert state.email == f"u{state.name.removeprefix('U ')}@acme.example"
            [(statement, params)] = statements
            plan = conn.exec_driver_sql(
                f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", params
            ).scalar_one()
        read = plan[0]["Plan"]
        assert _rows_read(read, "external_ids") <= len(asked)
        assert _rows_read(read, "integration_users") <= len(asked)
    finally:
        app.close()
