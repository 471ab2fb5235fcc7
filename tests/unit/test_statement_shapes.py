"""SQLite's multi-row INSERTs come in few shapes (core/storage/bulk.py ``statement_rows``): each
shape is a statement compiled once and kept in sqlite3's statement cache, so batches of any size
must reuse a handful of them, not compile one of thousands of rows per batch size."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock, parse_instant
from seatgate.core.domain.sync import Staged
from seatgate.core.storage.bulk import STATEMENT_ROWS, statement_rows
from seatgate.core.storage.repositories.sync import SqlSyncStore
from seatgate.core.storage.tables import accounts

AT = parse_instant("2026-03-01T09:00:00Z")


def test_the_right_rows_per_statement() -> None:
    assert list(statement_rows(1300, 512)) == [512, 512, 256, 16, 4]
    assert list(statement_rows(250, 512)) == [128, 64, 32, 16, 8, 2]
    assert list(statement_rows(300, 124)) == [124, 124, 32, 16, 4]
    assert list(statement_rows(0, 512)) == []


@given(total=st.integers(0, 50_000), largest=st.integers(1, 5000))
def test_statements_write_every_row_once_in_few_shapes(total: int, largest: int) -> None:
    counts = list(statement_rows(total, largest))
    assert sum(counts) == total
    assert all(0 < n <= largest for n in counts)
    assert counts == sorted(counts, reverse=True)
    # The full size, and below it at most one statement per power of two.
    rest = [n for n in counts if n != largest]
    assert len(rest) == len(set(rest)) and all(n & (n - 1) == 0 for n in rest)
    assert len(set(counts)) <= largest.bit_length() + 1


def test_batches_of_every_size_reuse_a_few_statements(tmp_path: Path) -> None:
    app = App(f"sqlite:///{tmp_path}/db.sqlite", clock=FixedClock(AT))
    shapes: set[str] = set()

    @sa.event.listens_for(app.db.engine, "before_cursor_execute")
    def _shape(conn: object, cursor: object, statement: str, *_args: object) -> None:
        if statement.startswith("INSERT INTO integration_users"):
            shapes.add(statement)

    try:
        with app.db.write() as conn:
            acct = conn.execute(
                accounts.insert().values(name="acme", region="US", created_at=AT)
            ).inserted_primary_key[0]
        n = 0
        for size in (1, 7, 250, 499, 500, 1013, 2048, 3999, 4000, 333, 77):
            records = [
                Staged(f"e{n + i}", f"u{n + i}@example.com", "U", True, ()) for i in range(size)
            ]
            n += size
            with app.db.write() as conn:
                assert len(SqlSyncStore(conn).insert_users(acct, "memory", records, AT)) == size
    finally:
        app.db.dispose()
    assert len(shapes) <= STATEMENT_ROWS.bit_length()  # 512 and the powers of two below it
