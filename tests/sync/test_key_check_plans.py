"""A sync's key checks stay one index entry each on PostgreSQL, whatever plans its connections kept.

PostgreSQL keeps, per session, the plan of each foreign key's check and re-plans it only when the
referenced table's statistics change. A connection that checked a seat's key while the user table
was one page long kept a plan that finds the account's users by ``(account_id, change_seq)`` and
filters them by id; a sync through it then read every user of the account once per link, seat
and agent it wrote: for 20,000 users 92 million index entries and 15 s (3 s now), for 100,000
more than ten minutes. The run analyzes the user table each time it doubles
(``SyncStore.analyze_grown_users``), which re-plans every session's statements on it.

Measured by what the server counts: the index entries of ``integration_users`` read during the
setup and the run (old code: 312,500 for 3,000 users; now about 11,500).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock
from seatgate.core.storage.repositories.sync import SqlSyncStore
from seatgate.core.testing.memory import MemorySandbox
from seatgate.core.testing.setup import account_with_contract

from .conftest import ACCOUNT, ADMIN, KEY_ENV, memory_config, memory_plugins, setup_account

USERS = 3000
APP_NAME = "seatgate-key-check-plans"


@pytest.fixture
def crm() -> Iterator[MemorySandbox]:
    with MemorySandbox(users=USERS) as sandbox:
        yield sandbox


def _read_by_index(conn: sa.Connection) -> dict[str, int]:
    """Index entries of the schema's user table read so far, per index."""
    return dict(
        conn.exec_driver_sql(
            "SELECT indexrelname, idx_tup_read FROM pg_stat_user_indexes "
            "WHERE relid = CAST('integration_users' AS regclass)"
        ).all()
    )


def _gone(probe: sa.Engine) -> None:
    """Wait until the app's sessions have ended: a session flushes its counts as it ends, before
    it leaves pg_stat_activity."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with probe.connect() as conn:
            left = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (APP_NAME,)
            ).scalar_one()
        if not left:
            return
        time.sleep(0.05)  # a server process's exit, not a clock the test could move
    raise AssertionError("the app's PostgreSQL sessions did not end")


def test_key_checks_planned_on_a_one_page_user_table_read_one_entry_each_during_a_sync(
    postgres_url: str,
    crm: MemorySandbox,
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(KEY_ENV, crm.settings()["api_key"])
    url = f"{postgres_url}&application_name={quote(APP_NAME)}"
    probe = sa.create_engine(postgres_url)
    app = App(url, clock=clock, plugins=memory_plugins())
    try:
        setup_account(app, seats=USERS + 10)
        app.installs.install(
            ACCOUNT, "memory", memory_config(crm, activated_roles=["Agent"]), ADMIN
        )
        # Another account's person gets a seat while the user table is one page long: the
        # connection plans the seats' key check then, and the sync's batches use it after.
        account_with_contract(app, "other", "memory", admin=ADMIN, seats=10)
        app.accounts.add_users("other", ["seated@other.example", "unseated@other.example"])
        app.assign("other", "memory", ["seated@other.example"], ADMIN)
        result = app.sync.sync(ACCOUNT, "memory", full=True, force=True)
        assert result.summary.outcome == "succeeded"
        assert result.summary.seated > USERS // 10  # links, seats and agents were all written
        app.db.dispose()
        _gone(probe)
        with probe.connect() as conn:
            read = _read_by_index(conn)
    finally:
        app.db.dispose()
        probe.dispose()
    # A key check reads one entry (links, seats, agents: some 7,000 checks); a plan that finds
    # the account's users by another index and filters them reads the account's every user.
    assert sum(read.values()) < 10 * USERS, read


def test_the_runs_analyze_never_waits_for_another_session_on_the_user_table(
    postgres_url: str, clock: FixedClock
) -> None:
    """A fleet's other run analyzing the table, or autovacuum, holds its lock: the run skips its
    analyze (False: the next batch tries again) rather than wait, and takes it once free."""
    app = App(postgres_url, clock=clock, plugins=memory_plugins())
    other = sa.create_engine(postgres_url)
    try:
        setup_account(app)  # the schema and one user table, never analyzed
        with other.connect() as holder:
            holder.exec_driver_sql("SET lock_timeout = '1ms'")
            holder.exec_driver_sql(
                "LOCK TABLE integration_users IN SHARE UPDATE EXCLUSIVE MODE"
            )  # what ANALYZE and VACUUM take
            with app.db.engine.begin() as conn:
                conn.exec_driver_sql("SET LOCAL lock_timeout = '5s'")
                assert not SqlSyncStore(conn).analyze_grown_users(1000)
            holder.rollback()
        with app.db.engine.begin() as conn:
            store = SqlSyncStore(conn)
            assert store.analyze_grown_users(1000)
            assert not store.analyze_grown_users(10)  # few rows: no analyze
    finally:
        app.db.dispose()
        other.dispose()
