"""The append-only audit log: every admin action and every denied check.

Rows are inserted, never updated or deleted (the database refuses it: see the core migration).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from .storage.tables import audit_log


def record(
    conn: sa.Connection,
    *,
    at: dt.datetime,
    action: str,
    outcome: str,
    account: str | None = None,
    actor: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Write one audit row in the caller's transaction (so it commits or rolls back with the act)."""
    conn.execute(
        audit_log.insert(),
        {
            "at": at,
            "account": account,
            "actor": actor,
            "action": action,
            "outcome": outcome,
            "detail": dict(detail or {}),
        },
    )


def entries(
    conn: sa.Connection, account: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if account is not None:
        query = query.where(audit_log.c.account == account)
    return [dict(row._mapping) for row in conn.execute(query)]
