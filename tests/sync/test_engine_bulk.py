"""The engine's bulk writes on SQLite: rows are sent as multi-row INSERTs, as many rows per
statement as the connection's variable limit allows. Split into many statements, they must write
exactly what fewer, larger statements write."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock, parse_instant
from seatgate.core.storage.bulk import STATEMENT_ROWS
from seatgate.core.storage.tables import (
    agent_directory,
    auto_install_waiting,
    external_ids,
    integration_users,
    seats,
)
from seatgate.core.testing.memory import MemorySandbox

from .conftest import ACCOUNT, ADMIN, KEY_ENV, memory_config, memory_plugins, setup_account

P = "memory"
# The sync's inserts of users write every column of the table (its change stamp too).
USER_COLUMNS = len(integration_users.columns)
TABLES = (integration_users, external_ids, seats, agent_directory, auto_install_waiting)


def _contents(app: App) -> dict[str, list[Any]]:
    with app.db.read() as conn:
        return {
            t.name: conn.execute(sa.select(t).order_by(*t.primary_key.columns)).all()
            for t in TABLES
        }


def _scenario(
    url: str, variable_limit: int | None, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """Two runs over 300 users (one page): a first sync with auto install beyond capacity, then a
    full sync after changes, additions and removals in the CRM."""
    clock = FixedClock(parse_instant("2026-02-01T12:00:00Z"))  # transition: all are agents
    app = App(url, clock=clock, plugins=memory_plugins())
    inserts: list[tuple[int, int]] = []  # (rows, shape) per INSERT of users

    @sa.event.listens_for(app.db.engine, "before_cursor_execute")
    def _count(conn: Any, cursor: Any, statement: str, params: Any, *_args: Any) -> None:
        if statement.startswith("INSERT INTO integration_users"):
            # Its rows are its LIMIT, its last parameter; the rest pads it to its shape.
            inserts.append((params[-1], (len(params) - 1) // USER_COLUMNS))

    if variable_limit is not None:

        @sa.event.listens_for(app.db.engine, "connect")
        def _limit(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, variable_limit)

        app.db.engine.dispose()  # connections from now on have the limit
    try:
        with MemorySandbox(users=300) as crm:
            monkeypatch.setenv(KEY_ENV, crm.settings()["api_key"])
            setup_account(app, seats=100)
            app.installs.install(ACCOUNT, P, memory_config(crm, activated_roles=["Agent"]), ADMIN)
            first = app.sync.sync(ACCOUNT, P).as_dict()
            crm.store.change(range(1, 40), last_name="Renamed")
            crm.store.deactivate(range(40, 60))
            crm.store.users = crm.store.users[10:]
            crm.store.add(150)
            clock.advance(hours=1)
            second = app.sync.sync(ACCOUNT, P, full=True, force=True).as_dict()
            return {"first": first, "second": second, "inserts": inserts, **_contents(app)}
    finally:
        app.db.dispose()


def test_statements_split_by_the_variable_limit_write_the_same_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 999 (SQLite's default before 3.32): 111 users, 166 links, 111 agents per statement.
    small = _scenario(f"sqlite:///{tmp_path}/small.db", 999, monkeypatch)
    large = _scenario(f"sqlite:///{tmp_path}/large.db", None, monkeypatch)
    for outcome in (small["first"], small["second"]):
        outcome.pop("seconds")
    for outcome in (large["first"], large["second"]):
        outcome.pop("seconds")
    assert small["first"]["created"] == 300 and small["second"]["created"] == 150
    assert small["second"]["deactivated"] == 10 and small["second"]["updated"] == 59
    assert len(small["agent_directory"]) > 111 and len(small["auto_install_waiting"]) > 0
    # 450 users in statements of at most 64 rows with the small limit (111 rows' variables: the
    # largest power of two below), 512 with the large one; each statement's shape a power of two
    # (few shapes: bulk.statement_shapes).
    for got, most in ((small.pop("inserts"), 64), (large.pop("inserts"), STATEMENT_ROWS)):
        assert sum(n for n, _ in got) == 450 and max(shape for _, shape in got) <= most
        assert all(n <= shape and shape & (shape - 1) == 0 for n, shape in got)
    assert small == large


def test_a_user_row_ends_with_its_change_stamp_whatever_its_insert_wrote(sqlite_url: str) -> None:
    # Migration core_0005: the insert trigger leaves a row that holds the stamp already (the
    # sync's bulk insert writes it) and stamps every other row, as core_0003's did.
    at = parse_instant("2026-02-01T12:00:00Z")
    app = App(sqlite_url, clock=FixedClock(at), plugins=memory_plugins())
    try:
        setup_account(app, seats=10)
        app.accounts.add_users(ACCOUNT, ["a@example.com"])
        app.assign(ACCOUNT, P, ["a@example.com"], ADMIN)  # moves the contract's version
        with app.db.write() as conn:
            stamp = conn.exec_driver_sql(
                "SELECT sum(entitlement_version) FROM contracts WHERE account_id = 1"
            ).scalar_one()
            assert stamp > 0
            for email, given in (("b@example.com", None), ("c@example.com", stamp - 1)):
                conn.execute(
                    integration_users.insert().values(
                        account_id=1,
                        email=email,
                        name="",
                        active=True,
                        roles=[],
                        created_at=at,
                        updated_at=at,
                        **({} if given is None else {"change_seq": given}),
                    )
                )
            iu = integration_users.c
            stamps = {e: s for e, s in conn.execute(sa.select(iu.email, iu.change_seq))}
        assert stamps["b@example.com"] == stamps["c@example.com"] == stamp
    finally:
        app.db.dispose()
