"""The one bulk reader and writer of seatgate: statements sent straight to the driver.

A sync writes a row per pulled user and an admin may assign 100,000 seats at once; SQLAlchemy's
per-row parameter processing and its expanding ``IN`` would be most of that work. So:

- :class:`BulkInsert` writes rows whose values arrive in one flat list, row after row, already in
  the driver's form (:func:`bind` converts a constant once with the column type's own processor):
  multi-row INSERTs on SQLite (up to 512 rows a statement, :func:`statement_shapes`); on
  PostgreSQL one ``INSERT ... SELECT * FROM unnest(%s::type[], ...)`` per call, an array
  parameter per column (:func:`unnest`); optionally ``ON CONFLICT (...) DO UPDATE`` and
  ``RETURNING``;
- :func:`select_any` reads rows by key: on PostgreSQL one array, an index probe per value
  (:data:`PROBE`); :func:`execute_any` updates and deletes them: one ``= ANY`` array, planned
  for its value each time; chunked ``IN`` lists elsewhere;
- :func:`select_in` reads the rows of a ``SELECT ... IN`` for many values, chunked under every
  database's parameter limit, as the driver's own tuples (:func:`rows`).

Why few statements on SQLite (issue 12 item 7): each statement lets go of the interpreter while
SQLite runs it, and takes it back only when no other thread of the process holds it; one that
does (a server's checks refreshing a snapshot during the sync: 200-400 ms of Python) keeps it for
up to a switch interval, 5 ms. A write transaction of the sync then lasts about 5 ms a statement,
whatever the statement's size: of 26 statements (a batch of auto install), 136 ms. So a batch's
rows go to a table in as few statements as the shapes allow (:func:`statement_shapes`), and ``IN``
lists on SQLite hold up to :data:`SQLITE_IN_VALUES` values.

Why arrays on PostgreSQL (issue 12 item 9): a batch is then one statement and one round trip
whatever its size, its text never changes (psycopg prepares it on the server after a few runs, so
it is parsed and planned once), and no statement carries thousands of parameters. ``executemany``
of one row per statement, even pipelined, and SQLAlchemy's multi-row VALUES with ``RETURNING``
cost several times more per row on the server and in the driver.

The SQL is plain enough to be the same on SQLite and PostgreSQL; table and column names are the
schema's identifiers, never user input.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa

__all__ = [
    "CHUNK",
    "PROBE",
    "BulkInsert",
    "bind",
    "chunks",
    "execute_any",
    "mark",
    "rows",
    "select_any",
    "select_in",
    "statement_shapes",
    "unnest",
]

CHUNK = 500  # keeps IN (...) lists under every database's parameter limit
ANY_CHUNK = 50_000  # values per ``= ANY(array)`` statement on PostgreSQL
#: Values of the largest ``IN`` list on SQLite (within the connection's variable limit): a
#: sync's batch of up to 1,000 users is one lookup. Lists come in powers of two, the last value
#: repeated (which changes nothing an ``IN`` matches), so a few compiled statements serve them.
SQLITE_IN_VALUES = 1024

#: Rows of the largest multi-row INSERT on SQLite. Each statement shape (a row count) is compiled
#: once and stays in sqlite3's statement cache, so the shapes are few and small: powers of two up
#: to this many rows, at most ten per table whatever the callers' batch sizes (a sync sizing its
#: batches by time had made one shape of up to 4,000 rows per batch, 70 MB of cached statements).
STATEMENT_ROWS = 512


def mark(conn: sa.Connection) -> str:
    """The driver's parameter marker."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def bind(conn: sa.Connection, column: sa.Column[Any], value: Any) -> Any:
    """``value`` as the driver must receive it for ``column`` (the column type's own processor)."""
    dialect = conn.dialect
    # The dialect's own type: a TypeDecorator's generic impl (DateTime) would hand SQLite a
    # datetime, which sqlite3's default adapter stores in another text form than SQLAlchemy.
    proc = column.type.dialect_impl(dialect).bind_processor(dialect)
    return value if proc is None else proc(value)


def statement_shapes(total: int, largest: int) -> Iterator[tuple[int, int]]:
    """(rows, shape) of the statements that write ``total`` rows: ``largest`` (a power of two)
    rows while more are left, then the rest in one statement of the next power of two, padded
    (``statement_shapes(1300, 512)``: (512, 512), (512, 512), (276, 512)). One statement per
    ``largest`` rows begun, of at most ``log2(largest) + 1`` shapes."""
    left = total
    while left > largest:
        yield largest, largest
        left -= largest
    if left:
        yield left, _power_from(left)


def _power_from(n: int) -> int:
    """The least power of two >= ``n`` (n >= 1)."""
    return 1 << (n - 1).bit_length()


def _power_within(n: int, largest: int) -> int:
    """The greatest power of two <= ``n`` (at least 1), at most ``largest``."""
    return min(largest, 1 << (max(1, n).bit_length() - 1))


def _sqlite_variables(conn: sa.Connection) -> int:
    """Parameters a statement may carry on this SQLite connection (its variable limit, at most
    SQLite's default)."""
    limit = conn.connection.dbapi_connection.getlimit(  # type: ignore[union-attr]
        sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER
    )
    return min(int(limit), 32766)


def _in_lists(
    conn: sa.Connection, params: int, values: Sequence[Any], size: int | None
) -> Iterator[tuple[int, Sequence[Any]]]:
    """(markers, values) of the ``IN`` lists that hold ``values``: chunks of ``size`` (default:
    :data:`CHUNK`; on SQLite up to :data:`SQLITE_IN_VALUES`, each list a power of two
    long, within the connection's variable limit, its last value repeated to fill it)."""
    if size is not None or conn.dialect.name != "sqlite":
        for chunk in chunks(values, size or CHUNK):
            yield len(chunk), chunk
        return
    largest = _power_within(_sqlite_variables(conn) - params, SQLITE_IN_VALUES)
    for chunk in chunks(values, largest):
        shape = min(_power_from(len(chunk)), largest)
        yield shape, [*chunk, *[chunk[-1]] * (shape - len(chunk))]


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def rows(conn: sa.Connection, sql: str, params: Sequence[Any]) -> Sequence[Any]:
    """Rows of ``sql``, sent straight to the driver, as the driver's own tuples: booleans may be
    0/1 (SQLite), JSON is text. On 100,000-row reads SQLAlchemy's Row objects would cost as much
    as the fetch itself."""
    result = conn.exec_driver_sql(sql, tuple(params))
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


def select_in(
    conn: sa.Connection,
    sql: str,
    params: Sequence[Any],
    values: Sequence[Any],
    size: int | None = None,
) -> Iterator[Sequence[Any]]:
    """Rows of ``sql`` (a SELECT whose last condition is ``... IN``) for ``values``, chunked:
    ``size`` values a list, by default as :func:`_in_lists` chunks them."""
    m = mark(conn)
    for n, chunk in _in_lists(conn, len(params), values, size):
        yield from rows(conn, f"{sql} ({', '.join([m] * n)})", (*params, *chunk))


#: PostgreSQL: ``sql`` once per value of an array, ``{sql} = k.v`` in a LATERAL subquery
#: (issue 12 item 9: "the lookups stay fast whatever the planner believes"). With ``<column> =
#: ANY(array)`` the planner weighs the array against what it believes of the table: a table it
#: believes small (never analyzed after a bulk load) was filtered row by row against the array,
#: and with fresh statistics after a first sync it took a page's 1,000 external ids for enough to
#: scan every link and user of the account and hash-join them (40 ms a page, 4.2 s of a
#: 100,000-user resync, pg_stat_statements, 2026-12-01). A LATERAL subquery with an ``OFFSET`` is
#: never flattened into a join: it is a nested loop, its inner side run for each value with an
#: equality on the column, an index probe whatever the statistics say.
PROBE = "SELECT x.* FROM unnest(%b) AS k(v) CROSS JOIN LATERAL ({sql} = k.v OFFSET 0) AS x"


def select_any(
    conn: sa.Connection, sql: str, params: Sequence[Any], values: Sequence[Any]
) -> Iterator[Sequence[Any]]:
    """Rows of ``sql`` (a ``SELECT ... WHERE ... AND <column>``) for every value: on PostgreSQL
    one array, each value a probe (:data:`PROBE`), planned each time (:func:`_unprepared`);
    chunked ``IN`` lists elsewhere (:func:`select_in`)."""
    if not values:
        return
    if conn.dialect.name == "postgresql":
        for chunk in chunks(values, ANY_CHUNK):
            yield from _unprepared(conn, PROBE.format(sql=sql), (list(chunk), *params), fetch=True)
        return
    yield from select_in(conn, f"{sql} IN", params, values)


def execute_any(
    conn: sa.Connection, sql: str, params: Sequence[Any], values: Sequence[Any]
) -> None:
    """Run ``sql`` (an UPDATE or DELETE ending in ``... <column>``) for every value, as
    :func:`select_any` reads."""
    if not values:
        return
    if conn.dialect.name == "postgresql":
        for chunk in chunks(values, ANY_CHUNK):
            _unprepared(conn, f"{sql} = ANY(%b)", (*params, list(chunk)), fetch=False)
        return
    m = mark(conn)
    for n, chunk in _in_lists(conn, len(params), values, None):
        conn.exec_driver_sql(f"{sql} IN ({', '.join([m] * n)})", (*params, *chunk))


def _unprepared(
    conn: sa.Connection, sql: str, params: Sequence[Any], *, fetch: bool
) -> Sequence[Any]:
    """PostgreSQL: ``sql`` run as every statement is (SQLAlchemy's errors, their translation),
    but never prepared: psycopg's ``prepare_threshold`` is off on the connection meanwhile.

    Why (issue 12 item 9, "fast whatever the planner believes"): psycopg prepares a statement
    run five times, and after five more PostgreSQL may keep a generic plan, made without the
    array's value. In such a plan ``= ANY($n)`` is never hashed (PostgreSQL hashes only a
    constant array) and, where the planner believes the table small (never analyzed after a bulk
    load), it scans the table comparing each row with every element: measured, a lookup of 1,000
    emails among 10,000 users took 130 ms, not 2.5 ms, from its eleventh run on. Unprepared, each
    run is planned with the array as a constant: an index probe per value or a hashed filter."""
    driver = conn.connection.driver_connection
    threshold = driver.prepare_threshold  # type: ignore[union-attr]
    driver.prepare_threshold = None  # type: ignore[union-attr]
    try:
        result = conn.exec_driver_sql(sql, tuple(params))
    finally:
        driver.prepare_threshold = threshold  # type: ignore[union-attr]
    try:
        return result.cursor.fetchall() if fetch else ()
    finally:
        result.close()


def _sql_type(conn: sa.Connection, column: sa.Column[Any]) -> str:
    return column.type.compile(dialect=conn.dialect)


def unnest(conn: sa.Connection, table: sa.Table, columns: Sequence[str]) -> str:
    """PostgreSQL: ``unnest(%s::type[], ...) AS v(column, ...)``, one array parameter per column
    of ``table`` (cast to its SQL type, so the arrays need no type inference): a row source."""
    casts = ", ".join(f"%b::{_sql_type(conn, table.c[c])}[]" for c in columns)
    return f"unnest({casts}) AS v({', '.join(columns)})"


class BulkInsert:
    """An INSERT (or upsert) of many rows, sent straight to the driver (see the module docstring).

    ``conflict`` names the key of ``ON CONFLICT (...) DO UPDATE SET`` every other column (or the
    columns ``update`` names; none: ``DO NOTHING``). ``returning`` (PostgreSQL only) names the
    columns :meth:`run` returns of the rows it inserted (not of those a conflict skipped).
    ``fixed`` names columns that usually hold one value in every row of a :meth:`run` (the
    account, a timestamp): PostgreSQL then receives that value once, not an array of copies.
    """

    def __init__(
        self,
        conn: sa.Connection,
        table: sa.Table,
        columns: Sequence[str],
        conflict: Sequence[str] = (),
        update: Sequence[str] | None = None,
        returning: Sequence[str] = (),
        fixed: Sequence[str] = (),
    ) -> None:
        self.conn = conn
        self.table = table
        self.width = len(columns)
        self._head = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES "
        self._row = f"({', '.join([mark(conn)] * len(columns))})"
        self._tail = ""
        updates: Sequence[str] = ()
        if conflict:
            updates = [c for c in columns if c not in conflict] if update is None else update
            self._tail = f" ON CONFLICT ({', '.join(conflict)}) " + (
                "DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in updates)
                if updates
                else "DO NOTHING"
            )
        self.sql = self._head + self._row + self._tail
        # Where the conflict key sits in a row, when a repeated key would update a row twice.
        self._key_at = [columns.index(c) for c in conflict] if updates else []
        self._pg = conn.dialect.name == "postgresql"
        self._returning = bool(returning)
        self._fixed_at = [columns.index(c) for c in fixed]
        self._varying_at = [i for i in range(self.width) if i not in self._fixed_at]
        self._arrays = self._fixed = ""
        if self._pg:
            tail = self._tail + (f" RETURNING {', '.join(returning)}" if returning else "")
            into = f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT "
            self._arrays = f"{into}* FROM {unnest(conn, table, columns)}{tail}"
            varying = [c for c in columns if c not in fixed]
            picks = (
                f"%s::{_sql_type(conn, table.c[c])}" if c in fixed else f"v.{c}" for c in columns
            )
            self._fixed = f"{into}{', '.join(picks)} FROM {unnest(conn, table, varying)}{tail}"
        elif returning:
            raise ValueError(f"RETURNING is for PostgreSQL only, not {conn.dialect.name}")
        self._json: dict[tuple[str, ...], Any] = {}
        self._multi: dict[int, str] = {}  # shape -> the multi-row statement (SQLite)
        self._rows_per = 0
        self._pad: list[Any] = []
        if conn.dialect.name == "sqlite":
            # The largest power of two of rows the connection's variable limit allows (and the
            # LIMIT's parameter), at most STATEMENT_ROWS.
            fits = (_sqlite_variables(conn) - 1) // len(columns)
            self._rows_per = _power_within(fits, STATEMENT_ROWS)
            self._pad = [None] * len(columns)
            # Rows pass through a VALUES list whose padding the LIMIT leaves out; the WHERE
            # keeps an upsert's ON from being read as a join's (SQLite's documented ambiguity).
            self._select = f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM (VALUES "
            self._limit = ") WHERE true LIMIT ?" + self._tail

    def value(self, column: str, value: Any) -> Any:
        """``value`` as the driver must receive it for ``column``."""
        return bind(self.conn, self.table.c[column], value)

    def roles(self, roles: tuple[str, ...]) -> Any:
        """A role list in the driver's form for the ``roles`` column, converted once per set."""
        out = self._json.get(roles)
        if out is None:
            out = self._json[roles] = self.value("roles", list(roles))
        return out

    def run(self, values: list[Any]) -> list[Any]:
        """Write the rows whose values, row after row, are ``values``; the ``returning`` columns
        of the rows inserted (PostgreSQL), else ``[]``."""
        if not values:
            return []
        if self._pg:
            return self._run_pg(values)
        # SQLite: one multi-row INSERT per 512 rows begun. sqlite3's executemany binds and steps
        # row by row, releasing the GIL at every step: slower alone, and much slower while
        # another thread holds the GIL (each step may wait a switch interval). The last
        # statement is padded to its shape with rows of NULLs that its LIMIT leaves out (as
        # fast as the same rows unpadded), not split into powers of two: a batch of 1,000 rows
        # is two statements, not six.
        width = self.width
        start = 0
        for n, shape in statement_shapes(len(values) // width, self._rows_per):
            end = start + n * width
            sql = self._multi.get(shape)
            if sql is None:
                sql = self._multi[shape] = (
                    self._select + ", ".join([self._row] * shape) + self._limit
                )
            self.conn.exec_driver_sql(sql, (*values[start:end], *self._pad * (shape - n), n))
            start = end
        return []

    def _run_pg(self, values: list[Any]) -> list[Any]:
        width = self.width
        if self._key_at and self._repeats_key(values):
            # One INSERT may not update a row twice (PostgreSQL refuses): row by row, the later
            # row updating what the earlier one wrote, as SQLite's statements do.
            self.conn.exec_driver_sql(self.sql, list(zip(*[iter(values)] * width, strict=True)))
            return []
        columns = [values[i::width] for i in range(width)]
        sql, params = self._arrays, columns
        if self._fixed_at and all(
            columns[i].count(columns[i][0]) == len(columns[i]) for i in self._fixed_at
        ):
            sql = self._fixed
            params = [columns[i][0] for i in self._fixed_at] + [
                columns[i] for i in self._varying_at
            ]
        if self._returning:
            return list(rows(self.conn, sql, params))
        self.conn.exec_driver_sql(sql, tuple(params))
        return []

    def _repeats_key(self, values: list[Any]) -> bool:
        width, at = self.width, self._key_at
        keys = {tuple(values[i + k] for k in at) for i in range(0, len(values), width)}
        return len(keys) * width != len(values)

    def rows(self, rows: Sequence[Sequence[Any]]) -> None:
        """Write ``rows`` (each a sequence of driver values)."""
        flat: list[Any] = []
        for row in rows:
            flat.extend(row)
        self.run(flat)
