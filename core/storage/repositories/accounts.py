"""Accounts, purchasing authority (permissions) and integration users, in SQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa

from ...domain.model import Account
from ...domain.vocabulary import email_key
from ...errors import Conflict, NotFound
from ..bulk import chunks
from ..tables import accounts, contracts, integration_users, permissions
from .contracts import bumped

__all__ = ["SqlAccountStore"]


class SqlAccountStore:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def create(self, name: str, region: str, at: dt.datetime) -> Account:
        if self.find(name) is not None:
            raise Conflict(f"account {name!r} already exists", field="account")
        # Names are kept as spelled but unique whatever their case (tester item 12): `c` and `C`
        # would be two tenants told apart only by case in invoice numbers, file names (on
        # case-insensitive file systems) and commands.
        same = self.conn.execute(
            sa.select(accounts.c.name).where(sa.func.lower(accounts.c.name) == name.lower())
        ).scalar()
        if same is not None:
            raise Conflict(
                f"account {name!r} differs from the existing {same!r} only in case; "
                "account names are unique whatever their case",
                field="account",
            )
        try:
            new_id = self.conn.execute(
                accounts.insert().values(name=name, region=region, created_at=at)
            ).inserted_primary_key[0]  # type: ignore[index]
        except sa.exc.IntegrityError as exc:
            # Another transaction created the same name (in any case) after the checks above read
            # the table: the unique index on lower(name) (accounts_0001) refuses the second one.
            raise Conflict(
                f"account {name!r} was created at the same moment by another request "
                "(account names are unique whatever their case)",
                field="account",
            ) from exc
        return Account(id=new_id, name=name, region=region)

    def find(self, name: str) -> Account | None:
        row = self.conn.execute(
            sa.select(accounts.c.id, accounts.c.name, accounts.c.region).where(
                accounts.c.name == name
            )
        ).first()
        return None if row is None else Account(id=row.id, name=row.name, region=row.region)

    def get(self, name: str) -> Account:
        found = self.find(name)
        if found is None:
            raise NotFound("account", name, remedy="create_account", context={"account": name})
        return found

    def grant(
        self, account_id: int, email: str, permission: str, at: dt.datetime, actor: str | None
    ) -> bool:
        exists = self.conn.execute(
            sa.select(permissions.c.email).where(
                permissions.c.account_id == account_id,
                permissions.c.email == email,
                permissions.c.permission == permission,
            )
        ).first()
        if exists:
            return False
        self.conn.execute(
            permissions.insert().values(
                account_id=account_id,
                email=email,
                permission=permission,
                granted_at=at,
                granted_by=actor,
            )
        )
        return True

    def revoke(self, account_id: int, email: str, permission: str) -> bool:
        done = self.conn.execute(
            permissions.delete().where(
                permissions.c.account_id == account_id,
                permissions.c.email == email,
                permissions.c.permission == permission,
            )
        )
        return bool(done.rowcount)

    def permissions_of(self, account_id: int, email: str | None) -> set[str]:
        if not email:
            return set()
        rows = self.conn.execute(
            sa.select(permissions.c.permission).where(
                permissions.c.account_id == account_id,
                permissions.c.email == email_key(email),
            )
        )
        return {r[0] for r in rows}

    def holders(self, account_id: int) -> list[tuple[str, str]]:
        rows = self.conn.execute(
            sa.select(permissions.c.email, permissions.c.permission)
            .where(permissions.c.account_id == account_id)
            .order_by(permissions.c.email, permissions.c.permission)
        )
        return [(r[0], r[1]) for r in rows]

    def has_holders(self, account_id: int) -> bool:
        return (
            self.conn.execute(
                sa.select(permissions.c.email).where(permissions.c.account_id == account_id)
            ).first()
            is not None
        )

    def known_emails(self, account_id: int, emails: Sequence[str]) -> set[str]:
        out: set[str] = set()
        for chunk in chunks(list(emails)):
            out.update(
                r[0]
                for r in self.conn.execute(
                    sa.select(integration_users.c.email).where(
                        integration_users.c.account_id == account_id,
                        integration_users.c.email.in_(chunk),
                    )
                )
            )
        return out

    def add_users(
        self,
        account_id: int,
        emails: Sequence[str],
        *,
        name: str,
        roles: Sequence[str],
        at: dt.datetime,
    ) -> None:
        if not emails:
            return
        role_list = sorted(set(roles))
        self.conn.execute(
            integration_users.insert(),
            [
                {
                    "account_id": account_id,
                    "email": e,
                    "name": name,
                    "active": True,
                    "roles": role_list,
                    "created_at": at,
                    "updated_at": at,
                }
                for e in emails
            ],
        )

    def bump_versions(self, account_id: int, *, strict: bool = True) -> None:
        self.conn.execute(
            contracts.update().where(contracts.c.account_id == account_id).values(**bumped(strict))
        )
