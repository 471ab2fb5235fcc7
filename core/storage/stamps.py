"""SQLite's change stamp of an account's users (migration ``core_0003``; PostgreSQL stamps them
with the writing transaction's id instead).

A user row written on SQLite is stamped with the sum of its account's contracts' entitlement
versions: every write a cached decision depends on moves one of them, so a snapshot read when
the sum was N sees every row stamped below N, and re-reads those stamped N or more. The insert
trigger computes it in SQL; a bulk insert that writes the stamp itself (the sync's) and a
snapshot's cursor read it here.
"""

from __future__ import annotations

import sqlalchemy as sa

from .tables import contracts

__all__ = ["sqlite_change_stamp"]


def sqlite_change_stamp(conn: sa.Connection, account_id: int) -> int:
    """The stamp a user row of ``account_id`` written now in ``conn``'s transaction gets."""
    total = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(contracts.c.entitlement_version), 0)).where(
            contracts.c.account_id == account_id
        )
    ).scalar()
    return int(total or 0)
