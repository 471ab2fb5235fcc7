"""The sync engine's store: runs and their leases, cursors, links, quarantine, the auto-install
waiting list and the agent directory. Storage implements it over SQL
(:mod:`seatgate.core.storage.repositories.sync`); the rules that decide what to write are in
:mod:`seatgate.core.domain.sync`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Protocol

import attrs

from ...domain.sync import Known, LinkState, Quarantined, Staged

__all__ = ["AgentRow", "CursorState", "RunCounts", "RunLease", "SyncStore"]


@attrs.frozen
class CursorState:
    """Where a connector's incremental pulls resume."""

    cursor: dt.datetime | None
    runs_since_full: int
    last_full_at: dt.datetime | None


@attrs.frozen
class RunLease:
    """A running run's lease: ``owner`` renews it (``heartbeat_at``) until the run ends; once
    ``expires_at`` has passed without renewal the run's process is taken for dead."""

    run_id: int
    owner: str
    started_at: dt.datetime
    heartbeat_at: dt.datetime | None
    expires_at: dt.datetime | None


@attrs.define
class RunCounts:
    """What a run did, as ``sync_runs`` keeps it."""

    pulled: int = 0
    created: int = 0
    updated: int = 0
    deactivated: int = 0
    quarantined: int = 0
    seated: int = 0
    waiting: int = 0
    gated: int = 0
    agents_synced: int = 0
    reasons: dict[str, int] = attrs.field(factory=dict)


@attrs.frozen(slots=True)
class AgentRow:
    """A user the gate decides on: this connector's external id, the user's email and name, and
    whether the record is active."""

    email: str
    name: str
    ext: str
    active: bool


class SyncStore(Protocol):
    # -- runs and leases ---------------------------------------------------------------------------
    def cursor(self, account_id: int, product: str) -> CursorState | None: ...

    def save_cursor(
        self, account_id: int, product: str, state: CursorState, at: dt.datetime
    ) -> None: ...

    def expire_leases(
        self, account_id: int, product: str, now: dt.datetime, *, owned_by: str | None = None
    ) -> list[RunLease]:
        """Mark the connector's running runs whose lease expired by ``now`` — and, with
        ``owned_by``, every running run whose owner starts with it, live lease or not — as
        ``interrupted``; returns them."""
        ...

    def live_run(self, account_id: int, product: str, now: dt.datetime) -> RunLease | None:
        """A running run of the connector whose lease is still live at ``now``."""
        ...

    def start_run(
        self,
        account_id: int,
        product: str,
        *,
        started: dt.datetime,
        full: bool,
        forced: bool,
        owner: str,
        lease_until: dt.datetime,
        message: str = "",
    ) -> int:
        """Record a run as ``running`` with its lease; returns its id."""
        ...

    def renew_lease(self, run_id: int, owner: str, at: dt.datetime, until: dt.datetime) -> bool:
        """Renew the lease while ``owner`` still holds it; False when it no longer runs."""
        ...

    def finish_run(
        self,
        run_id: int,
        *,
        outcome: str,
        full: bool,
        counts: RunCounts,
        requests: int,
        retries: int,
        seconds: float,
        message: str,
        only_running: bool = False,
    ) -> None:
        """Record how the run ended and free its lease. ``only_running``: unless it was recorded
        ended already (a stop that lands after the run's own record committed changes nothing)."""
        ...

    def runs(self, account_id: int, product: str | None, limit: int) -> list[dict[str, Any]]: ...

    def last_starts(self) -> dict[tuple[int, str], dt.datetime]:
        """(account id, product) -> when its latest run started."""
        ...

    # -- what is known -----------------------------------------------------------------------------
    def has_links(self, account_id: int, product: str) -> bool: ...

    def has_users(self, account_id: int) -> bool: ...

    def count_active_linked(self, account_id: int, product: str) -> int:
        """Active users linked to the connector."""
        ...

    def linked(self, account_id: int, product: str, exts: Sequence[str]) -> dict[str, LinkState]:
        """The connector's links among ``exts``."""
        ...

    def known(self, account_id: int, product: str, emails: Sequence[str]) -> dict[str, Known]:
        """The account's users among ``emails``, each with the connector's link to it."""
        ...

    # -- writes of the reconcile -------------------------------------------------------------------
    def insert_users(
        self, account_id: int, product: str, records: Sequence[Staged], at: dt.datetime
    ) -> list[int]:
        """Create users and link them to their records; returns their ids, in order. An email
        another connector of the account created meanwhile is linked to that user, not created
        again (two CRMs of one account may sync at once)."""
        ...

    def link(
        self, account_id: int, product: str, links: Sequence[tuple[str, int, bool, Any]]
    ) -> None:
        """New links: (external id, user id, active, roles)."""
        ...

    def unlink(self, account_id: int, product: str, exts: Sequence[str]) -> None: ...

    def update_users(self, updates: Sequence[tuple[int, Staged]], at: dt.datetime) -> None: ...

    def rename_users(self, updates: Sequence[tuple[int, Staged]], at: dt.datetime) -> None:
        """Update users whose emails change, in any order among themselves: two may trade their
        emails (a swap) without meeting the account's unique email."""
        ...

    def update_links(
        self,
        account_id: int,
        product: str,
        updates: Sequence[tuple[str, bool, tuple[str, ...]]],
    ) -> None: ...

    def quarantine(
        self,
        run_id: int,
        account_id: int,
        product: str,
        rows: Sequence[Quarantined],
        at: dt.datetime,
    ) -> None: ...

    def active_links(self, account_id: int, product: str) -> list[tuple[str, int]]:
        """(external id, user id) of the connector's links to active users."""
        ...

    def linked_elsewhere(self, account_id: int, product: str, user_ids: Sequence[int]) -> set[int]:
        """Those of ``user_ids`` that another connector of the account also links."""
        ...

    def deactivate(
        self,
        account_id: int,
        product: str,
        gone: Sequence[int],
        exclusive: Sequence[int],
        at: dt.datetime,
    ) -> None:
        """The connector's links of ``gone`` users go inactive (and they leave its waiting list);
        ``exclusive`` users (no other connector vouches for them) go inactive."""
        ...

    def analyze(self, *, users: bool = True, agents: bool = True, written: int) -> None:
        """Fresh planner statistics after a run wrote ``written`` rows (PostgreSQL; nothing
        elsewhere): of the users and their links (``users``), of the seats and the agent
        directory (``agents``) — each table only when it was never analyzed or the run wrote a
        large share of it, so a fleet's small runs do not re-analyze large shared tables."""
        ...

    def analyze_grown_users(self, inserted: int) -> bool:
        """While a run inserts users: ANALYZE the user table (PostgreSQL; nothing elsewhere) when
        the ``inserted`` users since its statistics were taken outnumber the rows they counted
        (it never was analyzed, or it at least doubled). Returns whether it did."""
        ...

    # -- auto install ------------------------------------------------------------------------------
    def anyone_waiting(self, account_id: int, product: str) -> bool:
        """Whether the connector's waiting list holds anyone."""
        ...

    def waiting(
        self, account_id: int, product: str
    ) -> list[tuple[int, str, bool, tuple[str, ...], dt.datetime, str]]:
        """The waiting list, longest first: (user id, email, record active, record roles, since,
        reason)."""
        ...

    def leave_waiting(self, account_id: int, product: str, user_ids: Sequence[int]) -> None: ...

    def join_waiting(
        self,
        account_id: int,
        product: str,
        rows: Sequence[tuple[int, dt.datetime, str]],
    ) -> None:
        """(user id, since, reason); a user already waiting keeps their ``since``."""
        ...

    # -- the gate and the agent directory ----------------------------------------------------------
    def agent_users(
        self, account_id: int, product: str, user_ids: Sequence[int]
    ) -> dict[int, AgentRow]:
        """Users the run did not pull but whose agent row may change, with this connector's id."""
        ...

    def enabled(self, account_id: int, product: str) -> bool | None: ...

    def seated_among(
        self, account_id: int, product: str, user_ids: Sequence[int], everyone: bool
    ) -> set[int]:
        """Those of ``user_ids`` holding a seat (``everyone``: read every seat at once)."""
        ...

    def agent_count(self, account_id: int, product: str) -> int: ...

    def agents_among(
        self, account_id: int, product: str, user_ids: Sequence[int], everyone: bool
    ) -> dict[int, bool]:
        """Directory rows (user id -> active) among ``user_ids``."""
        ...

    def write_agents(
        self,
        account_id: int,
        product: str,
        rows: Sequence[tuple[int, AgentRow, bool]],
        at: dt.datetime,
        run_id: int,
    ) -> None:
        """Upsert directory rows: (user id, the user, is an agent)."""
        ...

    def agents(self, account_id: int, product: str) -> list[dict[str, Any]]: ...

    def agents_of_run(
        self, account_id: int, product: str, run_id: int, after: int, limit: int
    ) -> list[tuple[int, AgentRow]]: ...

    def quarantined(self, run_id: int) -> list[dict[str, Any]]: ...
