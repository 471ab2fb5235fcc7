"""The migrations build exactly the schema of ``core/storage/tables.py`` (on SQLite and
PostgreSQL), and a database whose schema is current is opened without loading alembic."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from seatgate.core.storage.db import Database, expected_heads
from seatgate.core.storage.tables import metadata


def test_the_migrations_build_the_declared_schema(db_url: str) -> None:
    database = Database(db_url)
    try:
        with database.engine.connect() as conn, warnings.catch_warnings():
            # SQLite's reflection skips an index on an expression (with this warning), so the
            # comparison cannot see lower(name)'s: the test below reads it off the catalog.
            warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression")
            warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression")
            diffs = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diffs == []
    finally:
        database.dispose()


def test_the_index_on_an_expression_is_built_as_declared(db_url: str) -> None:
    database = Database(db_url)
    try:
        with database.engine.connect() as conn:
            if database.is_sqlite:
                found = conn.exec_driver_sql(
                    "SELECT sql FROM sqlite_master WHERE name = 'ux_accounts_name_lower'"
                ).scalar()
            else:
                found = conn.exec_driver_sql(
                    "SELECT indexdef FROM pg_indexes WHERE indexname = 'ux_accounts_name_lower'"
                ).scalar()
        assert found is not None
        shown = found.lower().replace("(name)::text", "name")  # PostgreSQL shows the cast
        assert "unique" in shown and "lower(name)" in shown
    finally:
        database.dispose()


def test_the_heads_read_off_the_files_are_what_a_migrated_database_holds(db_url: str) -> None:
    database = Database(db_url)
    try:
        assert database.current() == expected_heads()
        assert expected_heads() <= database.heads()  # each is a head alembic knows
    finally:
        database.dispose()


def test_a_current_database_opens_without_alembic(sqlite_url: str) -> None:
    Database(sqlite_url).dispose()  # created and migrated
    code = textwrap.dedent(
        f"""
        import sys
        from seatgate.core.storage.db import Database
        Database({sqlite_url!r}).dispose()
        assert "alembic" not in sys.modules, "alembic was loaded for a current schema"
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_new_database_is_migrated_on_first_use(sqlite_url: str) -> None:
    database = Database(sqlite_url)
    try:
        names = set(sa.inspect(database.engine).get_table_names())
        assert {"accounts", "contracts", "seats", "event_outbox", "sync_runs"} <= names
    finally:
        database.dispose()


def test_account_names_are_unique_whatever_their_case_in_the_database_too(db_url: str) -> None:
    """Two concurrent creates of "Acme" and "acme" both pass the repository's check (neither
    insert is visible to the other); the unique index on lower(name) refuses the second."""
    import threading

    from seatgate.core.bootstrap import App
    from seatgate.core.errors import Conflict

    app = App(db_url)
    other = App(db_url)
    try:
        holding = threading.Event()
        release = threading.Event()
        outcome: list[BaseException | None] = []

        def second() -> None:
            holding.wait(10)
            try:
                other.accounts.create("acme", "US")
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)
            release.set()

        thread = threading.Thread(target=second)
        thread.start()
        with app.uow.write() as uow:
            uow.accounts.create("Acme", "US", app.now())
            holding.set()
            # PostgreSQL: the second insert waits on the index for this transaction; SQLite: the
            # second transaction waits for the write lock. Either way it is refused once this
            # one commits.
            release.wait(0.5)
        thread.join(30)
        assert len(outcome) == 1 and isinstance(outcome[0], Conflict), outcome
        assert "whatever their case" in str(outcome[0])
        with app.uow.read() as uow:
            assert [a for a in ("Acme", "acme") if uow.accounts.find(a) is not None] == ["Acme"]
    finally:
        app.close()
        other.close()


_USER_ROWS = {
    # table: the columns besides account_id and user_id
    "external_ids": {"product": "salesforce", "external_id": "X1"},
    "seats": {
        "product": "salesforce",
        "assigned_at": "2026-02-01 12:00:00",
        "grandfathered": False,
    },
    "seat_ledger": {
        "product": "salesforce",
        "email": "a@example.com",
        "action": "assign",
        "actor": "t",
        "at": "2026-02-01 12:00:00",
        "reason": "admin",
        "assigned_after": 1,
    },
    "auto_install_waiting": {
        "product": "salesforce",
        "since": "2026-02-01 12:00:00",
        "reason": "hard_cap",
    },
    "agent_directory": {
        "product": "salesforce",
        "external_id": "X1",
        "email": "a@example.com",
        "name": "A",
        "active": True,
        "updated_at": "2026-02-01 12:00:00",
        "run_id": 1,
    },
}


def test_a_users_rows_name_a_user_of_their_own_account(db_url: str) -> None:
    """core_0006 / sync_0003: a link, seat, ledger row, waiting row or directory row points at
    (account, user) with one key, which refuses a user of another account (the two keys it
    replaced took any account and any user); the user of the row's account is taken."""
    database = Database(db_url)
    try:
        with database.engine.begin() as conn:
            ids = [
                conn.exec_driver_sql(
                    "INSERT INTO accounts (name, region, created_at) "
                    f"VALUES ('{name}', 'US', '2026-01-01 00:00:00') RETURNING id"
                ).scalar_one()
                for name in ("keys-a", "keys-b")
            ]
            user = conn.exec_driver_sql(
                "INSERT INTO integration_users (account_id, email, name, active, roles, "
                f"created_at, updated_at) VALUES ({ids[0]}, 'a@example.com', 'A', TRUE, '[]', "
                "'2026-01-01 00:00:00', '2026-01-01 00:00:00') RETURNING id"
            ).scalar_one()
        for table, columns in _USER_ROWS.items():
            for account, refused in ((ids[1], True), (ids[0], False)):
                row = {"account_id": account, "user_id": user, **columns}
                names = ", ".join(row)
                marks = ", ".join(f":{c}" for c in row)
                insert = sa.text(f"INSERT INTO {table} ({names}) VALUES ({marks})")
                with database.engine.connect() as conn:
                    if refused:
                        with pytest.raises(sa.exc.IntegrityError, match=r"(?i)foreign key"):
                            conn.execute(insert, row)
                    else:
                        conn.execute(insert, row)
                    conn.rollback()
    finally:
        database.dispose()


def _user_keys(conn: sa.Connection) -> dict[str, set[tuple[tuple[str, ...], str]]]:
    inspector = sa.inspect(conn)
    return {
        table: {
            (tuple(fk["constrained_columns"]), fk["referred_table"])
            for fk in inspector.get_foreign_keys(table)
        }
        for table in _USER_ROWS
    }


def _triggers(conn: sa.Connection) -> set[str]:
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'trigger'")
    else:
        # This schema's only: the database is shared with other tests' schemas.
        rows = conn.exec_driver_sql(
            "SELECT t.tgname || ' ' || c.relname FROM pg_trigger AS t "
            "JOIN pg_class AS c ON c.oid = t.tgrelid "
            "WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace"
        )
    return {r[0] for r in rows}


def test_the_user_keys_migrate_down_and_up_again(db_url: str) -> None:
    """core_0006 and sync_0003 go down to the two keys per table and up again to exactly the
    declared schema; the tables SQLite rebuilds keep their triggers (the seats' stamps, the
    ledger's append-only guard) both ways."""
    from alembic import command

    database = Database(db_url)
    try:
        cfg = database.alembic_config()
        with database.engine.connect() as conn:
            triggers = _triggers(conn)
        assert any("seats_stamp_insert" in t for t in triggers)
        with database.engine.begin() as conn, warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression")
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "sync_0002")
            command.downgrade(cfg, "core_0005")
            keys = _user_keys(conn)
            assert _triggers(conn) == triggers
        for found in keys.values():
            assert found == {(("account_id",), "accounts"), (("user_id",), "integration_users")}
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression")
            assert database.upgrade() == sorted(expected_heads())
        with database.engine.connect() as conn, warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression")
            warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression")
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
            for found in _user_keys(conn).values():
                assert found == {(("account_id", "user_id"), "integration_users")}
            assert _triggers(conn) == triggers
    finally:
        database.dispose()


def _seat_written_twice(conn: sa.Connection, email: str, *, stamped_before: bool) -> bool:
    """In one transaction of ``conn``: a user (inserted by an earlier transaction when
    ``stamped_before``), then a seat for them. Whether the seat's trigger wrote the user's row
    again (a new row version: another ``ctid``); the user's stamp must end as the transaction's
    id either way. Rolled back."""
    with conn.begin():
        account = conn.exec_driver_sql("SELECT id FROM accounts WHERE name = 'stamps'").scalar()
    insert_user = (
        "INSERT INTO integration_users (account_id, email, name, active, roles, created_at, "
        f"updated_at) VALUES ({account}, '{email}', 'A', TRUE, '[]', '2026-01-01 00:00:00', "
        "'2026-01-01 00:00:00') RETURNING id"
    )
    if stamped_before:
        with conn.begin():
            user = conn.exec_driver_sql(insert_user).scalar_one()
    with conn.begin() as tx:
        if not stamped_before:
            user = conn.exec_driver_sql(insert_user).scalar_one()
        me, where = conn.exec_driver_sql(
            "SELECT pg_current_xact_id()::text::bigint, ctid::text FROM integration_users "
            f"WHERE id = {user}"
        ).one()
        conn.exec_driver_sql(
            "INSERT INTO seats (account_id, product, user_id, assigned_at, grandfathered) "
            f"VALUES ({account}, 'memory', {user}, '2026-01-01 00:00:00', FALSE)"
        )
        stamp, after = conn.exec_driver_sql(
            f"SELECT change_seq, ctid::text FROM integration_users WHERE id = {user}"
        ).one()
        tx.rollback()
    assert stamp == me
    return bool(after != where)


def _planned_each_time(conn: sa.Connection) -> set[bool]:
    """Whether each of the seats' stamp functions plans its statements at every run."""
    rows = conn.exec_driver_sql(
        "SELECT proconfig FROM pg_proc WHERE proname IN ('seatgate_stamp_seats_insert', "
        "'seatgate_stamp_seats_delete', 'seatgate_stamp_seats_update') "
        "AND pronamespace = current_schema()::regnamespace"
    ).scalars()
    return {"plan_cache_mode=force_custom_plan" in (config or []) for config in rows}


@pytest.mark.postgres
def test_a_seat_written_with_its_user_leaves_the_user_row_alone(postgres_url: str) -> None:
    """core_0007: the seats' stamp trigger skips a user whose stamp is the writing transaction's
    id (written with the user) and stamps the others as before; down to core_0006 it writes
    every user again, and up again it skips them again."""
    from alembic import command

    database = Database(postgres_url)
    try:
        cfg = database.alembic_config()
        with database.engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO accounts (name, region, created_at) "
                "VALUES ('stamps', 'US', '2026-01-01 00:00:00')"
            )
        with database.engine.connect() as conn:
            assert not _seat_written_twice(conn, "new@example.com", stamped_before=False)
            assert _seat_written_twice(conn, "old@example.com", stamped_before=True)
            assert _planned_each_time(conn) == {True}
        with database.engine.begin() as conn, warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression")
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "core_0006")
        with database.engine.connect() as conn:
            assert _seat_written_twice(conn, "new2@example.com", stamped_before=False)
            assert _planned_each_time(conn) == {False}
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression")
            assert database.upgrade() == sorted(expected_heads())
        with database.engine.connect() as conn:
            assert not _seat_written_twice(conn, "new3@example.com", stamped_before=False)
            assert _seat_written_twice(conn, "old3@example.com", stamped_before=True)
            assert _planned_each_time(conn) == {True}
    finally:
        database.dispose()


_NOTIFY_FUNCTIONS = ("seatgate_channel", "seatgate_notify_entitlements", "seatgate_notify_tokens")


def _notify_functions(database: Database) -> dict[str, tuple[object, ...]]:
    """This schema's functions of the notifications: name -> (source, volatility, settings)."""
    with database.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT proname, prosrc, provolatile, proconfig FROM pg_proc "
            "WHERE proname = ANY(%(names)s) AND pronamespace = current_schema()::regnamespace",
            {"names": list(_NOTIFY_FUNCTIONS)},
        ).all()
    return {name: tuple(rest) for name, *rest in rows}


def _heard(database: Database, channels: tuple[str, ...]) -> dict[str, set[str]]:
    """The payloads each of ``channels`` carries while a new account of this schema gets a
    contract (``e:<account>``) and a token (``t``); returns them with the account's name."""
    import datetime as dt
    import uuid
    from decimal import Decimal

    import psycopg
    from psycopg import sql

    from seatgate.core.bootstrap import App

    name = f"ch-{uuid.uuid4().hex[:8]}"
    dsn = database.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    heard: dict[str, set[str]] = {channel: set() for channel in channels}
    app = App(database)  # not its URL: a new Database would migrate the schema up again
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for channel in channels:
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            app.accounts.create(name, "US")
            app.contracts.create(
                name,
                "salesforce",
                seats=3,
                plan="standard",
                frequency="monthly",
                start=dt.date(2026, 1, 1),
                months=12,
                unit_price=Decimal("10"),
            )
            app.tokens.create(name, "check")
            for note in conn.notifies(timeout=1.0):  # all were committed: they are queued
                heard[note.channel].add(note.payload)
    finally:
        app.close()
    return {"account": {name}, **heard}


@pytest.mark.postgres
def test_the_channel_per_schema_migrates_down_and_up_again(
    postgres_url: str, other_postgres_url: str
) -> None:
    """access_0003: the triggers notify on their schema's channel, ``seatgate_channel(schema)``,
    and nothing on ``seatgate_changes``; down to access_0002 the notification functions are
    exactly those of a schema migrated to access_0002 alone (no ``seatgate_channel``) and notify
    on ``seatgate_changes`` again; up again they are as before the downgrade.

    ``seatgate_changes`` is the whole database's: other processes (an older checkout's tests)
    may send ``t`` on it meanwhile, so what it carries is checked by this schema's account."""
    from alembic import command

    old = "seatgate_changes"
    reference = Database(other_postgres_url, migrate=False)
    database = Database(postgres_url)
    try:
        with reference.engine.begin() as conn:
            cfg = reference.alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "access_0002")
        before = _notify_functions(reference)
        assert set(before) == {"seatgate_notify_entitlements", "seatgate_notify_tokens"}

        current = _notify_functions(database)
        assert set(current) == set(_NOTIFY_FUNCTIONS)
        with database.engine.connect() as conn:
            channel = conn.exec_driver_sql("SELECT seatgate_channel(current_schema())").scalar()
        assert isinstance(channel, str) and channel != old
        heard = _heard(database, (channel, old))
        (account,) = heard["account"]
        assert heard[channel] == {f"e:{account}", "t"}
        assert not any(account in payload for payload in heard[old])

        with database.engine.begin() as conn, warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression")
            cfg = database.alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "access_0002")
        assert _notify_functions(database) == before
        heard = _heard(database, (channel, old))
        (account,) = heard["account"]
        assert heard[channel] == set()
        assert {f"e:{account}", "t"} <= heard[old]

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression")
            assert database.upgrade() == sorted(expected_heads())
        assert _notify_functions(database) == current
        heard = _heard(database, (channel, old))
        (account,) = heard["account"]
        assert heard[channel] == {f"e:{account}", "t"}
        assert not any(account in payload for payload in heard[old])
    finally:
        database.dispose()
        reference.dispose()
