"""The migrations build exactly the schema of ``core/storage/tables.py`` (on SQLite and
PostgreSQL), and a database whose schema is current is opened without loading alembic."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from seatgate.core.storage.db import Database, expected_heads
from seatgate.core.storage.tables import metadata


def test_the_migrations_build_the_declared_schema(db_url: str) -> None:
    database = Database(db_url)
    try:
        with database.engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diffs == []
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
