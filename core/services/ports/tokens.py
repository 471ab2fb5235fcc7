"""The store of the HTTP API's bearer tokens (storage implements it over SQL)."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

import attrs

__all__ = ["StoredToken", "TokenStore"]


@attrs.frozen
class StoredToken:
    """A token as stored: never the token itself, only its SHA-256 digest (hex)."""

    id: str
    account: str
    role: str
    actor: str | None
    digest: str = attrs.field(repr=False)
    created_at: dt.datetime
    created_by: str | None
    revoked_at: dt.datetime | None
    partner: str | None = None  # partner tokens: the partner they act for
    parent_id: str | None = None  # a console session's token: the token it was signed in with
    # When that parent token was revoked (None: live, or no parent): the session is revoked too.
    parent_revoked_at: dt.datetime | None = None


class TokenStore(Protocol):
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
    ) -> None: ...

    def by_digest(self, digest: str) -> StoredToken | None: ...

    def get(self, token_id: str) -> StoredToken | None: ...

    def list(self, account_id: int | None = None) -> list[StoredToken]:
        """Tokens of one account (or all), oldest first."""
        ...

    def revoke(self, token_id: str, at: dt.datetime) -> bool:
        """Revoke the token and every live token derived from it (its console sessions); True
        when the token itself was live."""
        ...
