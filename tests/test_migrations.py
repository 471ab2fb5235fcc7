"""The migrations build exactly the schema of ``core/storage/tables.py`` (on SQLite and
PostgreSQL), and a database whose schema is current is opened without loading alembic."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

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
