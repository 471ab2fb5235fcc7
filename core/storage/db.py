"""The database: engine, transactions, and migrations on first use.

SQLite (a file, WAL) by default; PostgreSQL by URL. Write transactions on SQLite start with
``BEGIN IMMEDIATE`` so that a capacity check and the write that follows it cannot interleave with
another writer (the default deferred BEGIN would let two transactions both read "9 of 10 seats" and
both write). On PostgreSQL the seat pool's contract row is locked ``FOR UPDATE`` instead.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import BadInput

if TYPE_CHECKING:
    from alembic.config import Config

DEFAULT_URL = "sqlite:///seatgate.db"
MIGRATIONS = Path(__file__).with_name("migrations")
_MIGRATION_LOCK = 0x5EA7_6A7E  # any constant; names the advisory lock migrations take


def resolve_url(url: str | None) -> str:
    """``--db`` wins, then ``SEATGATE_DATABASE_URL``, then ``./seatgate.db``."""
    url = url or os.environ.get("SEATGATE_DATABASE_URL") or DEFAULT_URL
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    elif url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgres://")
    if not (url.startswith("sqlite") or url.startswith("postgresql+psycopg")):
        raise BadInput("database URL", url.split("@")[-1], "sqlite:///PATH or postgresql://...")
    return url


def make_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 60})

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Take transaction control away from the sqlite3 module so BEGIN is ours.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: sa.Connection) -> None:
            readonly = conn.get_execution_options().get("seatgate_readonly", False)
            conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


class Database:
    """One database. ``write()`` and ``read()`` give a connection inside a transaction."""

    def __init__(self, url: str | None = None, *, migrate: bool = True) -> None:
        self.url = resolve_url(url)
        self.engine = make_engine(self.url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        if migrate:
            self.upgrade(only_if_needed=True)

    def __repr__(self) -> str:
        return f"Database({self.engine.url.render_as_string(hide_password=True)!r})"

    @contextlib.contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """A write transaction: committed on success, rolled back on any exception."""
        with self.engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[sa.Connection]:
        with self.engine.connect().execution_options(seatgate_readonly=True) as conn, conn.begin():
            yield conn

    # -- migrations ---------------------------------------------------------------------------------
    def alembic_config(self) -> Config:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        return cfg

    def heads(self) -> set[str]:
        """The newest revision of every migration branch (alembic's own answer)."""
        from alembic.script import ScriptDirectory

        return set(ScriptDirectory.from_config(self.alembic_config()).get_heads())

    def current(self) -> set[str]:
        """The revisions the database is at: read from ``alembic_version`` directly, so checking
        that the schema is current costs one query and no import of alembic."""
        with self.engine.connect().execution_options(seatgate_readonly=True) as conn:
            try:
                rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
            except sa.exc.DBAPIError:  # no such table: a new database
                return set()
            return {r[0] for r in rows}

    def upgrade(self, *, only_if_needed: bool = False) -> list[str]:
        """Apply every migration branch up to its head; returns the heads now current.

        Several processes may open a new database at once (workers, tests): the migration runs
        under a lock — SQLite's write lock (BEGIN IMMEDIATE), a transaction-level advisory lock on
        PostgreSQL — and whoever gets it second finds the schema current and does nothing.
        """
        if only_if_needed:
            # Most runs find the schema current: compare with what the migration files say the
            # version table holds once all are applied, and load alembic only when it does not.
            current = self.current()
            if current == expected_heads():
                return sorted(current)
        from alembic import command
        from alembic.runtime.migration import MigrationContext

        heads = self.heads()
        cfg = self.alembic_config()
        with self.engine.begin() as conn:
            if not self.is_sqlite:
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
                )
            if set(MigrationContext.configure(conn).get_current_heads()) != heads:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "heads")
        return sorted(self.current())

    def dispose(self) -> None:
        self.engine.dispose()


_REVISION = re.compile(r"^revision\s*=\s*[\"']([^\"']+)[\"']", re.M)
_PARENTS = re.compile(r"^(?:down_revision|depends_on)\s*=\s*(.+)$", re.M)
_heads_cache: set[str] | None = None


def expected_heads() -> set[str]:
    """What ``alembic_version`` holds once every migration shipped is applied: the revisions no
    other revision names as its ``down_revision`` or ``depends_on`` (alembic keeps a revision
    another one depends on out of the version table). Read off the files without importing
    alembic; a test holds it equal to the table of a freshly migrated database."""
    global _heads_cache
    if _heads_cache is None:
        revisions: set[str] = set()
        parents: set[str] = set()
        for path in (MIGRATIONS / "versions").glob("*.py"):
            text = path.read_text(encoding="utf-8")
            found = _REVISION.search(text)
            if found:
                revisions.add(found.group(1))
            for line in _PARENTS.findall(text):
                parents.update(re.findall(r"[\"']([^\"']+)[\"']", line))
        _heads_cache = revisions - parents
    return set(_heads_cache)
