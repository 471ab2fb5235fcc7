"""Bearer tokens of the HTTP API: made for one account and one role, shown once, kept as a
SHA-256 digest, listed, revoked.

Roles and what they reach (the HTTP API names the scope of each route):

- ``check``   — the entitlement check only; anything else is refused (it changes nothing);
- ``billing`` — billing: previews, invoices, tickets, the purchase summary, buying seats and plan
  changes (acts still need the token's actor to hold Install or Manage, seed 002);
- ``admin``   — everything of its account: users and seats, installations, syncs, quarantine, and
  what ``billing`` and ``check`` reach; acts still need the actor's authority.
- ``partner`` — a partner acting in the account (seed 002: add-on plans "will be activated in your
  Account by the Partner, based on contracted terms"): the token names the partner (one the
  catalog lists as a product's publisher) and reaches the add-ons of the products that partner
  publishes, nothing else; the actor, if any, is the partner's person, recorded beside it.

A token is a random 256-bit secret (``sgt_`` + 43 URL-safe characters), so a plain SHA-256 digest
stored with a unique index is enough to find it and cannot be reversed; the secret itself is
returned once by :meth:`TokenService.create` and never stored, logged or shown again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from enum import StrEnum
from typing import Any

import attrs

from ..domain.vocabulary import check_choice, normalize_email
from ..errors import BadInput, NotFound
from .base import read, transaction
from .ports import Ports
from .ports.tokens import StoredToken

__all__ = [
    "PREFIX",
    "ROLE_SCOPES",
    "IssuedToken",
    "Principal",
    "Role",
    "Scope",
    "TokenInfo",
    "TokenService",
    "digest_of",
]

PREFIX = "sgt_"
_SECRET_MAX = 200  # characters: anything longer is no token of ours and is not hashed


class Role(StrEnum):
    CHECK = "check"
    ADMIN = "admin"
    BILLING = "billing"
    PARTNER = "partner"


class Scope(StrEnum):
    """What a route of the HTTP API does, for :data:`ROLE_SCOPES`."""

    CHECK = "check"
    BILLING = "billing"
    ADMIN = "admin"
    PARTNER = "partner"  # add-on plans of the products the token's partner publishes


ROLE_SCOPES: dict[str, frozenset[str]] = {
    Role.CHECK: frozenset({Scope.CHECK}),
    Role.BILLING: frozenset({Scope.BILLING}),
    Role.ADMIN: frozenset({Scope.CHECK, Scope.BILLING, Scope.ADMIN}),
    Role.PARTNER: frozenset({Scope.PARTNER}),
}


def digest_of(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@attrs.frozen
class TokenInfo:
    """A token as listed: never its secret."""

    id: str
    account: str
    role: str
    actor: str | None
    created_at: dt.datetime
    created_by: str | None
    revoked_at: dt.datetime | None
    partner: str | None = None
    parent: str | None = None  # a console session's token: the token it was signed in with

    @classmethod
    def of(cls, stored: StoredToken) -> TokenInfo:
        return cls(
            stored.id,
            stored.account,
            stored.role,
            stored.actor,
            stored.created_at,
            stored.created_by,
            stored.revoked_at,
            stored.partner,
            stored.parent_id,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "account": self.account,
            "role": self.role,
            "actor": self.actor,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "revoked_at": self.revoked_at,
            "partner": self.partner,
            "parent": self.parent,
        }


@attrs.frozen
class IssuedToken:
    """A token just made: ``secret`` is shown this once."""

    info: TokenInfo
    secret: str = attrs.field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {**self.info.as_dict(), "token": self.secret}


@attrs.frozen
class Principal:
    """Who a request is: the token's id, account, role and actor (and when the token was made:
    the console ends a session token older than its session's length), and a ``partner``
    token's partner."""

    token_id: str
    account: str
    role: str
    actor: str | None
    created_at: dt.datetime | None = None
    partner: str | None = None

    def may(self, scope: str) -> bool:
        return scope in ROLE_SCOPES[self.role]


class TokenService:
    def __init__(self, ports: Ports) -> None:
        self.ports = ports

    def create(
        self,
        account: str,
        role: str,
        actor: str | None = None,
        created_by: str | None = None,
        *,
        partner: str | None = None,
        parent: str | None = None,
    ) -> IssuedToken:
        """Make a token of ``role`` for ``account``. ``actor`` (an email) is whose purchasing
        authority the token's admin and billing acts use; without one those acts are refused
        (remedy ``name_actor``). A ``partner`` token names ``partner``, one the catalog in
        force lists as a product's publisher (its ``actor``: the partner's person); no other
        role takes one. ``parent`` (a token id) makes a token derived from that live token of
        the same account — a console session from the admin token it was signed in with —
        which is revoked with it and refused once it is. Raises :class:`BadInput` (role, actor,
        partner, parent) and :class:`NotFound` (account)."""
        check_choice("role", role, Role)
        who = None if actor is None else normalize_email(actor)
        now = self.ports.now()
        partner = self._partner(role, partner, now.date())
        secret = PREFIX + secrets.token_urlsafe(32)
        token_id = "tok_" + secrets.token_hex(6)
        with transaction(self.ports) as uow:
            acct = uow.accounts.get(account)
            if parent is not None:
                self._live_parent(uow.tokens.get(parent), parent, account)
            uow.tokens.add(
                acct.id,
                token_id=token_id,
                role=role,
                actor=who,
                digest=digest_of(secret),
                at=now,
                created_by=created_by,
                partner=partner,
                parent_id=parent,
            )
            detail = {"token": token_id, "role": role, "token_actor": who}
            if partner is not None:
                detail["partner"] = partner
            if parent is not None:
                detail["parent"] = parent
            uow.audit.record(
                at=now,
                action="token.create",
                outcome="ok",
                account=account,
                actor=created_by,
                detail=detail,
            )
        info = TokenInfo(token_id, account, role, who, now, created_by, None, partner, parent)
        return IssuedToken(info, secret)

    @staticmethod
    def _live_parent(found: StoredToken | None, parent: str, account: str) -> None:
        """Refuse a parent that is not a live token of ``account`` (one revoked meanwhile: a
        session signed in with it must not outlive it). Raises :class:`BadInput`."""
        if (
            found is None
            or found.account != account
            or found.revoked_at is not None
            or found.parent_revoked_at is not None
        ):
            raise BadInput("parent", parent, f"a live token of account {account!r}")

    def _partner(self, role: str, partner: str | None, day: dt.date) -> str | None:
        """The partner a ``partner`` token acts for: one the catalog in force on ``day`` names
        as a product's publisher. Raises :class:`BadInput`."""
        if role != Role.PARTNER:
            if partner is not None:
                raise BadInput("partner", partner, "no partner: only a partner token names one")
            return None
        known = sorted(self.ports.catalog().partners(day))
        named = (partner or "").strip().lower()
        if named not in known:
            raise BadInput(
                "partner",
                partner or "none",
                f"a partner the catalog lists: {', '.join(known) or 'none listed'}",
            )
        return named

    def list(self, account: str | None = None) -> list[TokenInfo]:
        """Tokens of ``account`` (or of every account), revoked ones included, oldest first, as
        of now: a token made later is not listed, one revoked later is shown live."""
        now = self.ports.now()
        with read(self.ports) as uow:
            account_id = None if account is None else uow.accounts.get(account).id
            listed = [TokenInfo.of(t) for t in uow.tokens.list(account_id)]
        return [
            t if t.revoked_at is None or t.revoked_at <= now else attrs.evolve(t, revoked_at=None)
            for t in listed
            if t.created_at <= now
        ]

    def revoke(self, token_id: str, by: str | None = None) -> tuple[TokenInfo, bool]:
        """Revoke a token at once (every server process stops accepting it); returns it and
        whether it was live. Raises :class:`NotFound`."""
        now = self.ports.now()
        with transaction(self.ports) as uow:
            found = uow.tokens.get(token_id)
            if found is None:
                raise NotFound("token", token_id, "see the token list for the ids")
            changed = uow.tokens.revoke(token_id, now)
            uow.audit.record(
                at=now,
                action="token.revoke",
                outcome="ok" if changed else "unchanged",
                account=found.account,
                actor=by,
                detail={"token": token_id},
            )
            stored = uow.tokens.get(token_id)
        assert stored is not None
        return TokenInfo.of(stored), changed

    def authenticate(self, secret: str) -> Principal | None:
        """The principal of a live token, or None (unknown, malformed or revoked)."""
        if not secret.startswith(PREFIX) or len(secret) > _SECRET_MAX:
            return None
        with read(self.ports) as uow:
            found = uow.tokens.by_digest(digest_of(secret))
        if found is None or found.revoked_at is not None or found.parent_revoked_at is not None:
            return None  # revoked, or a session of a revoked token
        return Principal(
            found.id, found.account, found.role, found.actor, found.created_at, found.partner
        )
