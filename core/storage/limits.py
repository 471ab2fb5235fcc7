"""Bounds on every wait a server's database work can meet: a statement, a lock, a connection
from the pool, SQLite's busy wait. Applied by long-running servers (``seatgate serve``), not by
the CLI, whose bulk commands may rightly run for minutes."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from .db import Database

__all__ = ["bound_waits"]


def bound_waits(database: Database, *, seconds: float) -> None:
    """From now on, a statement (PostgreSQL ``statement_timeout``), a lock (``lock_timeout``),
    SQLite's busy wait and a pool checkout each give up after ``seconds``. Connections already
    pooled are closed so that every connection gets the settings."""
    millis = max(1, int(seconds * 1000))
    engine = database.engine

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        if database.is_sqlite:
            cur.execute(f"PRAGMA busy_timeout={millis}")
        else:
            cur.execute(f"SET statement_timeout = {millis}")
            cur.execute(f"SET lock_timeout = {millis}")
            dbapi_conn.commit()
        cur.close()

    pool = engine.pool
    if hasattr(pool, "_timeout"):
        pool._timeout = seconds  # the pool checkout wait (QueuePool's timeout)
    engine.dispose()
