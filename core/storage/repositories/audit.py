"""The append-only audit log, in SQL: every admin action and every denied check. Rows are
inserted, never updated or deleted (the database refuses it: see the core migration)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from ..tables import audit_log

__all__ = ["SqlAuditLog"]


class SqlAuditLog:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def record(
        self,
        *,
        at: dt.datetime,
        action: str,
        outcome: str,
        account: str | None = None,
        actor: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        self.conn.execute(
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

    def record_many(self, entries: Sequence[Mapping[str, Any]]) -> None:
        if entries:
            self.conn.execute(audit_log.insert(), [dict(e) for e in entries])

    def entries(self, account: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if account is not None:
            query = query.where(audit_log.c.account == account)
        return [dict(row._mapping) for row in self.conn.execute(query)]
