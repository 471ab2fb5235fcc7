"""The dialect-specific statements storage needs (``INSERT … ON CONFLICT``), chosen by the
connection's dialect. SQLAlchemy's dialect modules are imported on first use: importing the
PostgreSQL dialect costs tens of milliseconds, which ``seatgate check`` on SQLite never pays."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

__all__ = ["dialect_insert"]


def dialect_insert(conn: sa.Connection) -> Any:
    """The ``insert`` construct of ``conn``'s dialect (PostgreSQL's or SQLite's), the one that
    offers ``on_conflict_do_nothing`` / ``on_conflict_do_update``."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert
