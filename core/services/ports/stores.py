"""The stores of the core's aggregates: accounts, contracts, seats, the audit log, entitlement
snapshots and installations. Storage implements each over SQL (``seatgate.core.storage``).

Billing and sync declare theirs in :mod:`.billing` and :mod:`.sync`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import attrs

from ...domain.connectors import ConnectorSettings
from ...domain.entitlement import Snapshot
from ...domain.model import Account, Contract

__all__ = [
    "AccountStore",
    "AuditLog",
    "ConnectorSettings",
    "ContractStore",
    "InstallStore",
    "Installation",
    "SeatRow",
    "SeatStore",
    "SnapshotStore",
]


class AccountStore(Protocol):
    def create(self, name: str, region: str, at: dt.datetime) -> Account:
        """Raises :class:`Conflict` when the name is taken, in any case (``C`` when ``c``
        exists: names are kept as spelled, unique whatever their case)."""
        ...

    def get(self, name: str) -> Account:
        """Raises :class:`NotFound`."""
        ...

    def find(self, name: str) -> Account | None: ...

    def grant(
        self, account_id: int, email: str, permission: str, at: dt.datetime, actor: str | None
    ) -> bool:
        """True when the permission was new."""
        ...

    def revoke(self, account_id: int, email: str, permission: str) -> bool: ...

    def permissions_of(self, account_id: int, email: str | None) -> set[str]: ...

    def holders(self, account_id: int) -> list[tuple[str, str]]:
        """(email, permission) of every holder, by email."""
        ...

    def has_holders(self, account_id: int) -> bool:
        """Whether anyone holds a permission in the account."""
        ...

    def known_emails(self, account_id: int, emails: Sequence[str]) -> set[str]: ...

    def add_users(
        self,
        account_id: int,
        emails: Sequence[str],
        *,
        name: str,
        roles: Sequence[str],
        at: dt.datetime,
    ) -> None: ...

    def bump_versions(self, account_id: int, *, strict: bool = True) -> None:
        """Users changed: every product's cached decisions of the account are stale. ``strict``
        False: a sync's change, which a server's checks may follow within its ``sync_lag``
        (the entitlement version moves, the strict version does not)."""
        ...


class ContractStore(Protocol):
    def find(
        self,
        account: Account,
        product: str,
        *,
        lock: bool = False,
        created_by: dt.datetime | None = None,
    ) -> Contract | None:
        """``lock`` serialises seat changes (a row lock on PostgreSQL); with ``created_by``, only
        a contract that existed then."""
        ...

    def find_locked(self, account: Account, product: str) -> tuple[Contract, int] | None:
        """The contract locked as by ``find(lock=True)``, with its ``entitlement_version`` read
        under the lock (every seat change bumps it: a writer holding the lock knows whether
        anyone changed the seats since it last wrote them)."""
        ...

    def exists(self, account_id: int, product: str) -> bool: ...

    def create(self, account: Account, values: Mapping[str, Any]) -> Contract: ...

    def set_quantity(self, contract_id: int, quantity: int) -> None: ...

    def bump_version(self, contract_id: int, *, strict: bool = True) -> None:
        """Something an entitlement decision depends on changed (``strict``: as
        :meth:`AccountStore.bump_versions`)."""
        ...

    def mark_grandfathered(self, contract_id: int, at: dt.datetime) -> None: ...

    def list(
        self, account: str | None = None, *, created_by: dt.datetime | None = None
    ) -> list[Contract]: ...


@attrs.frozen
class SeatRow:
    """One seat held, as ``seats list`` shows it."""

    product: str
    email: str
    active: bool
    assigned_at: dt.datetime
    grandfathered: bool


class SeatStore(Protocol):
    def count_assigned(self, account_id: int, product: str) -> int: ...

    def users_by_email(self, account_id: int, emails: Sequence[str]) -> dict[str, tuple[int, bool]]:
        """email -> (user id, active) of the account's users among ``emails``."""
        ...

    def seated_ids(self, account_id: int, product: str, user_ids: Sequence[int]) -> set[int]: ...

    def tally(self, account_id: int, product: str) -> tuple[int, int] | None:
        """(``entitlement_version`` of the product's contract, seats of the product held), read
        by one statement — one snapshot, where a seat change and its version's bump, committed
        together, are both or neither — or None without a contract."""
        ...

    def users_by_id(
        self, account_id: int, product: str, user_ids: Sequence[int]
    ) -> dict[int, tuple[str, bool, bool]]:
        """user id -> (email, active, holds a seat of ``product``) of the account's users among
        ``user_ids``: one lookup for what :meth:`users_by_email` and :meth:`seated_ids` read."""
        ...

    def add(
        self,
        account_id: int,
        product: str,
        rows: Sequence[tuple[int, str, int]],
        *,
        action: str,
        actor: str,
        at: dt.datetime,
        reason: str,
        grandfathered: bool,
    ) -> None:
        """Seats for ``rows`` (user id, email, seats held right after), and their ledger rows."""
        ...

    def remove(
        self,
        account_id: int,
        product: str,
        rows: Sequence[tuple[int, str, int]],
        *,
        actor: str,
        at: dt.datetime,
        reason: str,
    ) -> None: ...

    def grandfather_candidates(
        self, account_id: int, product: str, existed_by: dt.datetime
    ) -> list[tuple[int, str]]:
        """Active users of the product's CRM (or of none yet), known to the account by
        ``existed_by``, without a seat: (id, email)."""
        ...

    def seated_emails(self, account_id: int, product: str) -> list[str]: ...

    def held(
        self, account_id: int, product: str | None, at: dt.datetime
    ) -> dict[tuple[str, int], tuple[dt.datetime, bool]]:
        """(product, user id) -> (since, grandfathered) of the seats held as of ``at``."""
        ...

    def count_held(self, account_id: int, product: str, at: dt.datetime) -> int:
        """Seats of ``product`` held as of ``at`` (only what existed then)."""
        ...

    def list(
        self, account_id: int, product: str | None = None, at: dt.datetime | None = None
    ) -> list[SeatRow]:
        """Seat holders (as of ``at``: only what existed then)."""
        ...


class AuditLog(Protocol):
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
        """One append-only row, in the caller's transaction."""
        ...

    def record_many(self, entries: Sequence[Mapping[str, Any]]) -> None: ...

    def entries(self, account: str | None = None, limit: int = 100) -> list[dict[str, Any]]: ...


class SnapshotStore(Protocol):
    def load(
        self, account: str, product: str, at: dt.datetime, previous: Snapshot | None = None
    ) -> Snapshot:
        """What a decision needs about (account, product) as of ``at`` (only the rows stamped by
        then); raises :class:`NotFound`. ``previous``, an earlier snapshot of the same (account,
        product): only what changed since is re-read when both are current (same result)."""
        ...

    def version(self, account: str, product: str) -> int:
        """The contract's entitlement version; -1 without a contract."""
        ...


@attrs.frozen
class Installation:
    """An adapter installed on an account for one product (a connector)."""

    account: str
    account_id: int
    product: str
    adapter: str
    enabled: bool
    stored: Mapping[str, Any] = attrs.field(repr=False)  # ${ENV} references, never a clear secret
    installed_at: dt.datetime
    installed_by: str
    uninstall_effective: dt.date | None
    connector: ConnectorSettings
    uninstalled_at: dt.datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "product": self.product,
            "adapter": self.adapter,
            "enabled": self.enabled,
            "settings": dict(self.stored),  # references only: safe to show
            "activated_roles": list(self.connector.activated_roles),
            "sync_interval_minutes": self.connector.interval_minutes,
            "full_every": self.connector.full_every,
            "deletion_guard_share": self.connector.guard_share,
            "deletion_guard_min": self.connector.guard_min,
            "installed_at": self.installed_at,
            "installed_by": self.installed_by,
            "uninstall_effective": self.uninstall_effective,
        }


class InstallStore(Protocol):
    def find(self, account: str, product: str) -> Installation | None: ...

    def list(self) -> list[Installation]: ...

    def save(
        self,
        account: Account,
        product: str,
        *,
        adapter: str,
        settings: Mapping[str, Any],
        connector: ConnectorSettings,
        at: dt.datetime,
        actor: str,
    ) -> tuple[bool, tuple[str, ...] | None]:
        """Insert or replace the installation and its connector settings; a reinstall withdraws
        a pending uninstall. Returns (existed before, activated roles before or None)."""
        ...

    def drop_cursor(self, account_id: int, product: str) -> None: ...

    def set_enabled(self, account_id: int, product: str, enabled: bool) -> None: ...

    def set_uninstall_effective(
        self, account_id: int, product: str, effective: dt.date | None
    ) -> None: ...

    def mark_uninstalled(self, account_id: int, product: str, at: dt.datetime) -> None: ...
