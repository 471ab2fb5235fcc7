"""SQLite's multi-row INSERTs come in few shapes (core/storage/bulk.py ``statement_shapes``): each
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
from seatgate.core.storage.bulk import STATEMENT_ROWS, statement_shapes
from seatgate.core.storage.repositories.sync import SqlSyncStore
from seatgate.core.storage.tables import accounts

AT = parse_instant("2026-03-01T09:00:00Z")


def test_the_right_rows_per_statement() -> None:
    assert list(statement_shapes(1300, 512)) == [(512, 512), (512, 512), (276, 512)]
    assert list(statement_shapes(250, 512)) == [(250, 256)]
    assert list(statement_shapes(1024, 512)) == [(512, 512), (512, 512)]
    assert list(statement_shapes(300, 64)) == [(64, 64)] * 4 + [(44, 64)]
    assert list(statement_shapes(1, 512)) == [(1, 1)]
    assert list(statement_shapes(0, 512)) == []


@given(total=st.integers(0, 50_000), power=st.integers(0, 12))
def test_statements_write_every_row_once_in_few_shapes(total: int, power: int) -> None:
    largest = 1 << power
    statements = list(statement_shapes(total, largest))
    assert sum(n for n, _ in statements) == total
    # Full statements, then one padded to the next power of two: as few as can be.
    assert len(statements) == -(-total // largest)
    assert all(0 < n <= shape <= largest and shape & (shape - 1) == 0 for n, shape in statements)
    assert all(n == largest for n, _ in statements[:-1])
    assert all(shape < 2 * n for n, shape in statements)  # padding: less than the rows


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
