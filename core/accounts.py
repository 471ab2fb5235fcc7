"""Accounts, their regions, purchasing authority (Install / Manage), and integration users."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

import sqlalchemy as sa

from . import audit
from .domain import PERMISSIONS, REGIONS, Account, check_choice, normalize_email
from .errors import BadInput, Conflict, NotAuthorized, NotFound
from .storage.tables import accounts, contracts, integration_users, permissions

_NAME_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def create_account(conn: sa.Connection, name: str, region: str, at: dt.datetime) -> Account:
    if not name or len(name) > 100 or not set(name) <= _NAME_OK:
        raise BadInput("account name", name, "1-100 letters, digits, '-', '_' or '.'")
    region = check_choice("region", region.upper(), REGIONS)
    if conn.execute(sa.select(accounts.c.id).where(accounts.c.name == name)).first():
        raise Conflict(f"account {name!r} already exists")
    new_id = conn.execute(
        accounts.insert().values(name=name, region=region, created_at=at)
    ).inserted_primary_key[0]  # type: ignore[index]
    audit.record(
        conn, at=at, action="account.create", outcome="ok", account=name, detail={"region": region}
    )
    return Account(id=new_id, name=name, region=region)


def get_account(conn: sa.Connection, name: str) -> Account:
    row = conn.execute(sa.select(accounts).where(accounts.c.name == name)).first()
    if row is None:
        raise NotFound("account", name, "create it with `seatgate account create`")
    return Account(id=row.id, name=row.name, region=row.region)


def grant(
    conn: sa.Connection,
    account: str,
    email: str,
    permission: str,
    at: dt.datetime,
    actor: str | None = None,
) -> None:
    """Delegate purchasing authority (seed 002) to ``email``. Idempotent."""
    acct = get_account(conn, account)
    permission = check_choice("permission", permission, PERMISSIONS)
    email = normalize_email(email)
    exists = conn.execute(
        sa.select(permissions.c.email).where(
            permissions.c.account_id == acct.id,
            permissions.c.email == email,
            permissions.c.permission == permission,
        )
    ).first()
    if not exists:
        conn.execute(
            permissions.insert().values(
                account_id=acct.id,
                email=email,
                permission=permission,
                granted_at=at,
                granted_by=actor,
            )
        )
    audit.record(
        conn,
        at=at,
        action="account.grant",
        outcome="ok" if not exists else "unchanged",
        account=account,
        actor=actor,
        detail={"email": email, "permission": permission},
    )


def permissions_of(conn: sa.Connection, account_id: int, email: str | None) -> set[str]:
    if not email:
        return set()
    rows = conn.execute(
        sa.select(permissions.c.permission).where(
            permissions.c.account_id == account_id,
            permissions.c.email == email.strip().lower(),
        )
    )
    return {r[0] for r in rows}


def require_purchasing_authority(
    conn: sa.Connection,
    acct: Account,
    actor: str | None,
    action: str,
    at: dt.datetime,
    detail: Mapping[str, object] | None = None,
) -> str:
    """Seed 002: only users holding Install or Manage may install, change plans or add users.

    Raises :class:`NotAuthorized` carrying the audit entry; :meth:`App.write` commits that entry
    in a transaction of its own, since the refused action's transaction is rolled back.
    """
    held = permissions_of(conn, acct.id, actor)
    if held & set(PERMISSIONS):
        return (actor or "").strip().lower()
    who = repr(actor) if actor else "no actor (give --actor EMAIL or set SEATGATE_ACTOR)"
    raise NotAuthorized(
        f"{who} does not hold the install or manage permission in account {acct.name!r}; "
        "an admin can grant it with `seatgate account grant`",
        audit_entry={
            "at": at,
            "action": action,
            "outcome": "not_authorized",
            "account": acct.name,
            "actor": actor,
            "detail": dict(detail or {}),
        },
    )


def add_users(
    conn: sa.Connection,
    account: str,
    emails: Sequence[str],
    at: dt.datetime,
    roles: Iterable[str] = (),
    actor: str | None = None,
    name: str = "",
) -> tuple[list[str], list[str]]:
    """Make users known to the account before any CRM sync. Returns (added, already known)."""
    acct = get_account(conn, account)
    normalized = [normalize_email(e) for e in emails]  # all validated before anything is written
    role_list = sorted(set(roles))
    known = {
        r[0]
        for r in conn.execute(
            sa.select(integration_users.c.email).where(
                integration_users.c.account_id == acct.id,
                integration_users.c.email.in_(normalized),
            )
        )
    }
    added = [e for e in dict.fromkeys(normalized) if e not in known]
    if added:
        conn.execute(
            integration_users.insert(),
            [
                {
                    "account_id": acct.id,
                    "email": e,
                    "name": name,
                    "active": True,
                    "roles": role_list,
                    "created_at": at,
                    "updated_at": at,
                }
                for e in added
            ],
        )
        bump_account_versions(conn, acct.id)
    audit.record(
        conn,
        at=at,
        action="users.add",
        outcome="ok",
        account=account,
        actor=actor,
        detail={"added": len(added), "known": len(known)},
    )
    return added, sorted(known)


def bump_account_versions(conn: sa.Connection, account_id: int) -> None:
    """Users changed (added, renamed, deactivated): every product's cached decisions are stale."""
    conn.execute(
        contracts.update()
        .where(contracts.c.account_id == account_id)
        .values(entitlement_version=contracts.c.entitlement_version + 1)
    )
