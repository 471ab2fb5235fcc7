"""Accounts, purchasing authority (Install / Manage, seed 002) and integration users."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

import attrs

from ..domain import bounds
from ..domain.model import Account
from ..domain.timeline import check_region
from ..domain.vocabulary import Permission, check_choice, normalize_email
from ..errors import Conflict
from .base import read, require_manage, transaction
from .ports import Ports

__all__ = ["AccountService", "AddedUsers", "Enablement", "Grant", "PhaseView"]


@attrs.frozen
class Grant:
    account: str
    email: str
    permission: str
    changed: bool

    def as_dict(self) -> dict[str, object]:
        return {"account": self.account, "email": self.email, "permission": self.permission}


@attrs.frozen
class Enablement:
    """When Manage Seats is enabled for a region (seed 000), by the policy revision in force.

    :param listed: whether the revision names the region; one it does not name is enabled on the
        revision's latest enablement date.
    """

    region: str
    day: dt.date | None
    listed: bool
    revision: str | None

    def as_dict(self) -> dict[str, object]:
        return {
            "region": self.region,
            "enabled_on": self.day.isoformat() if self.day else None,
            "listed": self.listed,
            "policy_revision": self.revision,
        }

    @property
    def note(self) -> str:
        if self.day is None:
            return "no policy revision is published yet"
        if self.listed:
            return f"Manage Seats is enabled in {self.region} on {self.day}"
        return (
            f"region {self.region} is not in the enablement schedule of policy revision "
            f"{self.revision}: Manage Seats is enabled on its latest enablement date, {self.day}"
        )


@attrs.frozen
class PhaseView:
    """An account's enforcement phase now (seed 000), with the dates of the policy revision that
    decided it. Dates are days (UTC); every field but ``phase`` is None before any revision."""

    account: str
    region: str
    phase: str
    revision: str | None
    published: dt.date | None
    enabled_on: dt.date | None
    restrictions_begin: dt.date | None
    overage_billing_begins: dt.date | None

    def as_dict(self) -> dict[str, object]:
        def day(d: dt.date | None) -> str | None:
            return None if d is None else d.isoformat()

        return {
            "account": self.account,
            "region": self.region,
            "phase": self.phase,
            "policy_revision": self.revision,
            "published": day(self.published),
            "enabled_on": day(self.enabled_on),
            "restrictions_begin": day(self.restrictions_begin),
            "overage_billing_begins": day(self.overage_billing_begins),
        }


@attrs.frozen
class AddedUsers:
    added: list[str]
    already_known: list[str]

    def as_dict(self) -> dict[str, object]:
        return {"added": self.added, "already_known": self.already_known}


class AccountService:
    def __init__(self, ports: Ports) -> None:
        self.ports = ports

    def create(
        self, name: str, region: str, *, admin: str | None = None, actor: str | None = None
    ) -> Account:
        """A new account in ``region`` (a two-letter code; its Manage Seats enablement date comes
        from the policy, :meth:`enablement`). ``admin`` is the account's first holder of the
        ``manage`` permission (seed 002 "Purchasing Authority").

        Raises :class:`BadInput` for a bad name, region or admin address, :class:`Conflict` for a
        taken name.
        """
        bounds.account_name(name)
        region = check_region(region)
        first = None if admin is None else normalize_email(admin)
        at = self.ports.now()
        with transaction(self.ports) as uow:
            acct = uow.accounts.create(name, region, at)
            uow.audit.record(
                at=at,
                action="account.create",
                outcome="ok",
                account=name,
                actor=actor,
                detail={"region": region, **({"admin": first} if first else {})},
            )
            if first is not None:
                uow.accounts.grant(acct.id, first, Permission.MANAGE, at, actor)
                uow.audit.record(
                    at=at,
                    action="account.grant",
                    outcome="ok",
                    account=name,
                    actor=actor,
                    detail={"email": first, "permission": Permission.MANAGE, "first": True},
                )
        return acct

    def enablement(self, region: str) -> Enablement:
        """When Manage Seats is enabled for ``region`` by the policy revision in force now."""
        region = check_region(region)
        revision = self.ports.timeline.revision_at(self.ports.now())
        if revision is None:
            return Enablement(region, None, False, None)
        day, listed = revision.enablement_of(region)
        return Enablement(region, day, listed, revision.id)

    def phase(self, account: str) -> PhaseView:
        """The account's phase now and the dates of the revision in force (what Manage Seats
        shows). Raises :class:`NotFound`."""
        now = self.ports.now()
        with read(self.ports) as uow:
            acct = uow.accounts.get(account)
        found = self.ports.timeline.phase_at(acct.region, now)
        revision = found.revision
        if revision is None:
            return PhaseView(account, acct.region, found.phase, None, None, None, None, None)
        return PhaseView(
            account,
            acct.region,
            found.phase,
            revision.id,
            revision.published,
            revision.enablement_of(acct.region)[0],
            revision.restrictions_begin,
            revision.overage_billing_begins,
        )

    def get(self, name: str) -> Account:
        """Raises :class:`NotFound`."""
        with read(self.ports) as uow:
            return uow.accounts.get(name)

    def grant(self, account: str, email: str, permission: str, actor: str | None) -> Grant:
        """Delegate purchasing authority (seed 002) to ``email``. Idempotent.

        Only a holder of ``manage`` grants; on an account nobody holds a permission in yet, the
        first grant names its first holder. A refusal raises :class:`NotAuthorized` and is
        audited.
        """
        permission = check_choice("permission", permission, Permission)
        email = normalize_email(email)
        at = self.ports.now()
        detail = {"email": email, "permission": permission}
        with transaction(self.ports) as uow:
            acct = uow.accounts.get(account)
            first = not uow.accounts.has_holders(acct.id)
            who = actor
            if not first:
                who = require_manage(uow, acct, actor, "account.grant", at, detail)
            changed = uow.accounts.grant(acct.id, email, permission, at, who)
            uow.audit.record(
                at=at,
                action="account.grant",
                outcome="ok" if changed else "unchanged",
                account=account,
                actor=who,
                detail={**detail, **({"first": True} if first else {})},
            )
        return Grant(account, email, permission, changed)

    def revoke(self, account: str, email: str, permission: str, actor: str | None) -> Grant:
        """Take purchasing authority back from ``email``. Only a holder of ``manage`` revokes
        (refusals audited); the account's last ``manage`` holder cannot be revoked (nobody could
        grant again). Idempotent: revoking what is not held changes nothing."""
        permission = check_choice("permission", permission, Permission)
        email = normalize_email(email)
        at = self.ports.now()
        detail = {"email": email, "permission": permission}
        with transaction(self.ports) as uow:
            acct = uow.accounts.get(account)
            who = require_manage(uow, acct, actor, "account.revoke", at, detail)
            managers = {e for e, p in uow.accounts.holders(acct.id) if p == Permission.MANAGE}
            if permission == Permission.MANAGE and managers == {email}:
                raise Conflict(
                    f"{email} is the last holder of manage in account {account!r}: grant manage "
                    "to someone else first",
                    field="email",
                )
            changed = uow.accounts.revoke(acct.id, email, permission)
            uow.audit.record(
                at=at,
                action="account.revoke",
                outcome="ok" if changed else "unchanged",
                account=account,
                actor=who,
                detail=detail,
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
