"""The database: engine, transactions, and migrations on first use.

SQLite (a file, WAL) by default; PostgreSQL by URL. Write transactions on SQLite start with
``BEGIN IMMEDIATE`` so that a capacity check and the write that follows it cannot interleave with
another writer (the default deferred BEGIN would let two transactions both read "9 of 10 seats" and
both write). On PostgreSQL the seat pool's contract row is locked ``FOR UPDATE`` instead.

A database that cannot be used is one line, never a traceback (:class:`DatabaseUnusable`, naming
the database with its password masked, and a remedy code): a server that does not answer, a
database or a directory that does not exist, a file that is not writable or not a database.
seatgate changes nothing in a database it did not create: one that holds tables but not seatgate's
schema marker (an ``alembic_version`` of seatgate's revisions) is refused before any statement
that changes it — on SQLite, before the file is even switched to WAL. A write waiting behind
another writer waits ``SEATGATE_BUSY_TIMEOUT`` seconds (default 30), then fails with
:class:`DatabaseBusy` (exit 75), nothing written.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import BadInput, DatabaseBusy, DatabaseUnusable

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
        # Named by its scheme only: the rest may hold a user and password.
        scheme = url.partition("://")[0] if "://" in url else url.partition(":")[0]
        raise BadInput(
            "database URL scheme",
            f"{scheme[:40]}://" if "://" in url else scheme[:40],
            "sqlite (sqlite:///PATH), postgresql or postgres (postgresql://USER@HOST/DB), "
            "postgresql+psycopg",
        )
    return url


BUSY_TIMEOUT_ENV = "SEATGATE_BUSY_TIMEOUT"
DEFAULT_BUSY_TIMEOUT = 30.0  # seconds a write waits behind another writer
_SQLITE_HEADER = b"SQLite format 3\x00"


def busy_timeout_from_env() -> float:
    """``SEATGATE_BUSY_TIMEOUT`` (seconds, more than 0 and at most 3600), else 30."""
    raw = os.environ.get(BUSY_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_BUSY_TIMEOUT
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 3600:
        raise BadInput(BUSY_TIMEOUT_ENV, raw, "seconds, more than 0 and at most 3600")
    return seconds


def shown_url(url: str) -> str:
    """The URL as messages show it: the password (in the URL or its query) as ``***``."""
    parsed = sa.engine.make_url(url)
    query = {k: ("***" if "password" in k.lower() else v) for k, v in parsed.query.items()}
    return str(parsed.set(query=query).render_as_string(hide_password=True))


def make_engine(url: str, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": busy_timeout})

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Take transaction control away from the sqlite3 module so BEGIN is ours.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: sa.Connection) -> None:
            readonly = conn.get_execution_options().get("seatgate_readonly", False)
            conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

        return engine
    connect_args = {} if "connect_timeout" in url else {"connect_timeout": 10}
    engine = sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)

    @sa.event.listens_for(engine, "connect")
    def _on_pg_connect(dbapi_conn: Any, _record: Any) -> None:
        # A lock waited for (a row FOR UPDATE, the billing run's advisory lock) is waited for
        # this long, then 55P03 lock_not_available: DatabaseBusy.
        dbapi_conn.autocommit = True
        with dbapi_conn.cursor() as cur:
            cur.execute(f"SET lock_timeout = {int(busy_timeout * 1000)}")
        dbapi_conn.autocommit = False

    return engine


def _unusable(shown: str, what: str, remedy: str, busy: bool = False) -> DatabaseUnusable:
    error = DatabaseBusy if busy else DatabaseUnusable
    return error(f"{what}", remedy=remedy, context={"database": shown})


def describe_error(exc: BaseException, shown: str, busy_timeout: float) -> DatabaseUnusable | None:
    """The :class:`DatabaseUnusable` a DBAPI error means (``exc`` is the driver's exception), or
    None for an error that is no property of the database (a constraint, a bug)."""
    message = str(exc).strip()
    text = message.lower()
    if isinstance(exc, sqlite3.Error):
        if "database is locked" in text or "database table is locked" in text:
            return _unusable(
                shown,
                f"{shown} is busy: another writer held it for more than {busy_timeout:g} s; "
                "nothing was written",
                "retry_busy",
                busy=True,
            )
        if "readonly database" in text:
            return _unusable(shown, f"{shown} is not writable", "writable_database")
        if "unable to open database file" in text:
            return _unusable(
                shown,
                f"cannot open {shown}: its directory is missing or not writable",
                "database_path",
            )
        if "not a database" in text:
            return _unusable(shown, f"{shown} is not a SQLite database file", "other_database")
        if "disk i/o error" in text or "malformed" in text:
            return _unusable(shown, f"cannot use {shown}: {message}", "writable_database")
        return None
    if not type(exc).__module__.startswith("psycopg"):
        return None
    state = getattr(exc, "sqlstate", None)
    if state == "55P03":
        return _unusable(
            shown,
            f"{shown} is busy: a lock was held by another writer for more than "
            f"{busy_timeout:g} s; nothing was written",
            "retry_busy",
            busy=True,
        )
    if state in ("40P01", "40001"):  # deadlock_detected, serialization_failure
        # Two writers crossed (a seat change and a sync batch locking the same users in another
        # order, say): PostgreSQL rolled this one back whole.
        return _unusable(
            shown,
            f"{shown} is busy: this change crossed another writer's and was rolled back; "
            "nothing was written",
            "retry_busy",
            busy=True,
        )
    if state == "25006":
        return _unusable(shown, f"{shown} is read-only (a standby?)", "writable_database")
    if state == "42501":
        return _unusable(shown, f"{shown}: permission denied ({message})", "writable_database")
    if state is None and type(exc).__name__ == "OperationalError":  # the connection failed
        if "does not exist" in text and "database" in text:
            name = sa.engine.make_url(shown).database or "NAME"
            return DatabaseUnusable(
                f"the database {shown} does not exist",
                remedy="create_database",
                context={"database": shown, "name": name},
            )
        if "authentication failed" in text or "no password supplied" in text:
            return _unusable(shown, f"{shown} refused the credentials", "database_credentials")
        reason = "connection refused" if "refused" in text else message.splitlines()[0]
        return _unusable(shown, f"cannot connect to {shown}: {reason}", "start_database")
    return None


def known_revisions() -> frozenset[str]:
    """Every revision of seatgate's migrations, on all branches: the schema marker (read off the
    migration files, without importing alembic)."""
    return _migration_graph()[0]


def _some(names: set[str]) -> str:
    listed = sorted(names)
    return ", ".join(listed[:3]) + (", ..." if len(listed) > 3 else "")


def require_seatgate_schema(tables: set[str], revisions: set[str], shown: str) -> None:
    """Refuse a database that holds tables but not seatgate's schema marker (before anything in
    it is changed). An empty database is a new one: seatgate may create its schema there."""
    if not tables:
        return
    unknown = sorted(revisions - known_revisions())
    if not revisions or unknown:
        why = (
            f"its schema revision {', '.join(unknown)} is not seatgate's (another program's, or "
            "a newer seatgate's)"
            if unknown
            else f"it holds tables ({_some(tables)}) but no seatgate schema marker"
        )
        raise _unusable(
            shown,
            f"{shown} is not a seatgate database: {why}; nothing in it was changed",
            "other_database",
        )


def check_sqlite_file(url: str, shown: str, busy_timeout: float) -> None:
    """Before SQLAlchemy opens a SQLite file (and switches it to WAL): the path is a file in a
    directory that exists, a SQLite database, empty or seatgate's. Read through a read-only
    connection, so nothing in the file changes."""
    parsed = sa.engine.make_url(url)
    database = parsed.database
    if not database or database == ":memory:" or parsed.query.get("uri"):
        return
    path = Path(database)
    try:
        is_dir, exists = path.is_dir(), path.exists()
    except OSError as exc:  # a directory on the way that this user may not enter
        raise _unusable(
            shown, f"cannot read {shown}: {exc.strerror}", "writable_database"
        ) from None
    if is_dir:
        raise _unusable(shown, f"{shown} is a directory, not a database file", "database_path")
    if not exists:
        parent = path.parent
        if not parent.is_dir():
            raise _unusable(
                shown,
                f"cannot create {shown}: the directory {parent} does not exist",
                "database_path",
            )
        if not os.access(parent, os.W_OK):
            raise _unusable(
                shown,
                f"cannot create {shown}: the directory {parent} is not writable",
                "writable_database",
            )
        return
    try:
        with path.open("rb") as f:
            header = f.read(len(_SQLITE_HEADER))
    except OSError as exc:
        raise _unusable(
            shown, f"cannot read {shown}: {exc.strerror}", "writable_database"
        ) from None
    if not header:
        return  # an empty file is an empty database
    if header != _SQLITE_HEADER:
        raise _unusable(shown, f"{shown} is not a SQLite database file", "other_database")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=busy_timeout)
        try:
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            revisions: set[str] = set()
            if "alembic_version" in tables:
                revisions = {r[0] for r in conn.execute("SELECT version_num FROM alembic_version")}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        problem = describe_error(exc, shown, busy_timeout)
        raise problem or _unusable(shown, f"cannot read {shown}: {exc}", "other_database") from None
    require_seatgate_schema(tables, revisions, shown)


class Database:
    """One database. ``write()`` and ``read()`` give a connection inside a transaction."""

    def __init__(
        self, url: str | None = None, *, migrate: bool = True, busy_timeout: float | None = None
    ) -> None:
        """Raises :class:`DatabaseUnusable` (one line: the database, password masked, and a
        remedy code) when the database cannot be used; :class:`BadInput` for a bad URL.

        :param busy_timeout: seconds a write waits behind another writer (default
            ``SEATGATE_BUSY_TIMEOUT``, else 30).
        """
        self.url = resolve_url(url)
        self.shown = shown_url(self.url)
        self.busy_timeout = busy_timeout if busy_timeout is not None else busy_timeout_from_env()
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            check_sqlite_file(self.url, self.shown, self.busy_timeout)
        self.engine = make_engine(self.url, self.busy_timeout)
        shown, timeout = self.shown, self.busy_timeout

        @sa.event.listens_for(self.engine, "handle_error")
        def _translate(context: sa.engine.ExceptionContext) -> None:
            if context.is_pre_ping:  # the pool reconnects on its own
                return
            problem = describe_error(context.original_exception, shown, timeout)
            if problem is not None:
                raise problem from context.original_exception

        if migrate:
            try:
                self.upgrade(only_if_needed=True)
            except BaseException:
                self.engine.dispose()  # no connection is left open behind the error
                raise

    def __repr__(self) -> str:
        return f"Database({self.shown!r})"

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

        cfg = self.alembic_config()
        with self.engine.begin() as conn:
            if not self.is_sqlite:
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
                )
            current = set(MigrationContext.configure(conn).get_current_heads())
            if current != expected_heads():
                require_seatgate_schema(
                    set(sa.inspect(conn).get_table_names()), current, self.shown
                )
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "heads")
        return sorted(self.current())

    def dispose(self) -> None:
        self.engine.dispose()

    def discard_connections(self) -> None:
        """Close the pooled connections; those checked out are closed when checked in, so the
        next transaction connects anew. An exception raised inside the driver (a signal's
        ``SystemExit``) can leave a connection broken without the pool knowing: psycopg in the
        middle of a protocol exchange, or holding its connection lock. An in-memory SQLite
        database lives in its one connection and is kept."""
        if isinstance(self.engine.pool, sa.pool.SingletonThreadPool | sa.pool.StaticPool):
            return
        self.engine.dispose()


_REVISION = re.compile(r"^revision\s*=\s*[\"']([^\"']+)[\"']", re.M)
_PARENTS = re.compile(r"^(?:down_revision|depends_on)\s*=\s*(.+)$", re.M)


@functools.cache
def _migration_graph() -> tuple[frozenset[str], frozenset[str]]:
    """(every revision, every revision another names as its down_revision or depends_on), read
    off the migration files."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        found = _REVISION.search(text)
        if found:
            revisions.add(found.group(1))
        for line in _PARENTS.findall(text):
            parents.update(re.findall(r"[\"']([^\"']+)[\"']", line))
    return frozenset(revisions), frozenset(parents)


def expected_heads() -> set[str]:
    """What ``alembic_version`` holds once every migration shipped is applied: the revisions no
    other revision names as its ``down_revision`` or ``depends_on`` (alembic keeps a revision
    another one depends on out of the version table). Read off the files without importing
    alembic; a test holds it equal to the table of a freshly migrated database."""
    revisions, parents = _migration_graph()
    return set(revisions - parents)
