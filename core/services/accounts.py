"""Accounts, purchasing authority (Install / Manage, seed 002) and integration users."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

from ..domain import bounds
from ..domain.model import Account
from ..domain.timeline import REGIONS
from ..domain.vocabulary import Permission, check_choice, normalize_email
from .base import read, transaction
from .ports import Ports

__all__ = ["AccountService", "AddedUsers", "Grant"]


@attrs.frozen
class Grant:
    account: str
    email: str
    permission: str
    changed: bool

    def as_dict(self) -> dict[str, object]:
        return {"account": self.account, "email": self.email, "permission": self.permission}


@attrs.frozen
class AddedUsers:
    added: list[str]
    already_known: list[str]

    def as_dict(self) -> dict[str, object]:
        return {"added": self.added, "already_known": self.already_known}


class AccountService:
    def __init__(self, ports: Ports) -> None:
        self.ports = ports

    def create(self, name: str, region: str) -> Account:
        """A new account in ``region`` (its Manage Seats enablement date, seed 000).

        Raises :class:`BadInput` for a bad name or region, :class:`Conflict` for a taken name.
        """
        bounds.account_name(name)
        region = check_choice("region", region.upper(), REGIONS)
        at = self.ports.now()
        with transaction(self.ports) as uow:
            acct = uow.accounts.create(name, region, at)
            uow.audit.record(
                at=at,
                action="account.create",
                outcome="ok",
                account=name,
                detail={"region": region},
            )
        return acct

    def get(self, name: str) -> Account:
        """Raises :class:`NotFound`."""
        with read(self.ports) as uow:
            return uow.accounts.get(name)

    def grant(self, account: str, email: str, permission: str, actor: str | None) -> Grant:
        """Delegate purchasing authority (seed 002) to ``email``. Idempotent."""
        permission = check_choice("permission", permission, Permission)
        email = normalize_email(email)
        at = self.ports.now()
        with transaction(self.ports) as uow:
            acct = uow.accounts.get(account)
            changed = uow.accounts.grant(acct.id, email, permission, at, actor)
            uow.audit.record(
                at=at,
                action="account.grant",
                outcome="ok" if changed else "unchanged",
                account=account,
                actor=actor,
                detail={"email": email, "permission": permission},
            )
        return Grant(account, email, permission, changed)

    def add_users(
        self,
        account: str,
        emails: Sequence[str],
        *,
        roles: Iterable[str] = (),
        name: str = "",
        actor: str | None = None,
    ) -> AddedUsers:
        """Make users known to the account before any CRM sync. Every address is validated
        before anything is written."""
        normalized = [normalize_email(e) for e in emails]
        at = self.ports.now()
        with transaction(self.ports) as uow:
            acct = uow.accounts.get(account)
            known = uow.accounts.known_emails(acct.id, normalized)
            added = [e for e in dict.fromkeys(normalized) if e not in known]
            if added:
                uow.accounts.add_users(acct.id, added, name=name, roles=list(roles), at=at)
                uow.accounts.bump_versions(acct.id)
            uow.audit.record(
                at=at,
                action="users.add",
                outcome="ok",
                account=account,
                actor=actor,
                detail={"added": len(added), "known": len(known)},
            )
        return AddedUsers(added, sorted(known))
