"""The HTTP API's bearer tokens, in SQL: digests only (see :mod:`...services.tokens`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from ...services.ports.tokens import StoredToken
from ..tables import accounts, api_tokens

__all__ = ["SqlTokenStore"]

_COLUMNS = (
    api_tokens.c.id,
    accounts.c.name.label("account"),
    api_tokens.c.role,
    api_tokens.c.actor,
    api_tokens.c.digest,
    api_tokens.c.created_at,
    api_tokens.c.created_by,
    api_tokens.c.revoked_at,
    api_tokens.c.partner,
    api_tokens.c.parent_id,
)
_parent = api_tokens.alias("parent")


def _token(row: Any) -> StoredToken:
    return StoredToken(**row._mapping)


class SqlTokenStore:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def _select(self) -> sa.Select[Any]:
        return (
            sa.select(*_COLUMNS, _parent.c.revoked_at.label("parent_revoked_at"))
            .join(accounts, accounts.c.id == api_tokens.c.account_id)
            .outerjoin(_parent, _parent.c.id == api_tokens.c.parent_id)
        )

    def add(
        self,
        account_id: int,
        *,
        token_id: str,
        role: str,
        actor: str | None,
        digest: str,
        at: dt.datetime,
        created_by: str | None,
        partner: str | None = None,
        parent_id: str | None = None,
    ) -> None:
        self.conn.execute(
            api_tokens.insert().values(
                id=token_id,
                account_id=account_id,
                role=role,
                actor=actor,
                digest=digest,
                created_at=at,
                created_by=created_by,
                partner=partner,
                parent_id=parent_id,
            )
        )

    def by_digest(self, digest: str) -> StoredToken | None:
        row = self.conn.execute(self._select().where(api_tokens.c.digest == digest)).first()
        return None if row is None else _token(row)

    def get(self, token_id: str) -> StoredToken | None:
        row = self.conn.execute(self._select().where(api_tokens.c.id == token_id)).first()
        return None if row is None else _token(row)

    def list(self, account_id: int | None = None) -> list[StoredToken]:
        query = self._select().order_by(api_tokens.c.created_at, api_tokens.c.id)
        if account_id is not None:
            query = query.where(api_tokens.c.account_id == account_id)
        return [_token(r) for r in self.conn.execute(query)]

    def revoke(self, token_id: str, at: dt.datetime) -> bool:
        done = self.conn.execute(
            api_tokens.update()
            .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        self.conn.execute(
            api_tokens.update()
            .where(api_tokens.c.parent_id == token_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return done.rowcount == 1
