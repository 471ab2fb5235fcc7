"""The sync engine: one run per (account, connector), the steps of DESIGN.md "One sync run" in order.

    pull (streamed pages)            AdapterHooks.pull_users, incremental from the cursor when the
                                     adapter has one; full on demand, on the first run, every
                                     ``full_every`` runs
    validate and quarantine          missing / bad id, missing / bad email, an id or an email seen
                                     twice in the run: the record goes to ``sync_quarantine`` with
                                     its reason and the run goes on
    reconcile                        insert / update ``integration_users`` and ``external_ids`` in
                                     bulk, page by page; deactivation only from a full pull
    deletion guard                   a full pull that would deactivate more than ``guard_share`` of
                                     the connector's active users (and at least ``guard_min``)
                                     stops before anything is written, unless forced
    auto install                     users gaining an activated role get a seat
                                     (``seats.assign(authorize=False, reason="auto_install")``); in
                                     hard_cap only up to capacity: the rest wait and are reported
    gate ``agent_sync``              ``entitlement.decide`` on a snapshot read in the run's own
                                     transaction; in overage no new agent is added (seed 000)
    write agents                     ``agent_directory`` (and, after commit, ``agents_written``)
    report activations               ``activation_reported`` after commit
    record the run, commit cursor    in the same transaction as the reconcile

Everything from the first page to the cursor is **one write transaction**: a failure anywhere (the
CRM, a daily quota, a crash) rolls it all back, so a failed pull removes nothing, the cursor stays
where it was, and a rerun converges. The failed run is then recorded in a transaction of its own.
Listeners are called only after the commit: they must never see (or bill) what was rolled back, and
a listener that writes to the database would otherwise wait on the run's own lock (SQLite).

The cost of one transaction is that, on SQLite, other writers wait while a pull is under way
(``busy_timeout`` is 60 s); deployments with slow CRMs and many writers run on PostgreSQL, where the
run only holds the rows it touches.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ..domain import entitlement
from ..domain.events import SyncFinished
from ..domain.model import Account
from ..domain.records import AgentRecord, ExternalUser, SyncSummary
from ..domain.seats import SeatCount
from ..domain.vocabulary import QuarantineReason, normalize_email
from ..errors import BadInput, Conflict, SeatgateError
from ..storage.bulk import CHUNK as _CHUNK
from ..storage.bulk import BulkInsert as _Bulk
from ..storage.bulk import chunks as _chunks
from ..storage.bulk import mark as _mark
from ..storage.bulk import rows as _rows
from ..storage.bulk import select_in as _select_in
from ..storage.tables import (
    agent_directory,
    auto_install_waiting,
    external_ids,
    installations,
    integration_users,
    sync_cursors,
    sync_quarantine,
    sync_runs,
)
from .base import deliver_pending, read
from .commitments import AUTO_INSTALL_ACTOR
from .installs import InstallService, require_installation
from .ports import ConnectorAdapter, Ports, RequestStats, UnitOfWork
from .ports.stores import Installation
from .seats import SeatResult, assign_seats

__all__ = ["QUARANTINE_REASONS", "DueResult", "SyncResult", "SyncService"]

logger = logging.getLogger("seatgate.sync")

QUARANTINE_REASONS: tuple[str, ...] = tuple(QuarantineReason)

_NAME_MAX = 200


@attrs.define
class SyncResult:
    """What one run did. ``summary`` is what listeners get and ``--json`` prints."""

    summary: SyncSummary
    run_id: int | None
    waiting: int = 0
    dry_run: bool = False
    quarantine_reasons: dict[str, int] = attrs.field(factory=dict)

    @property
    def remedy(self) -> str | None:
        """What to do next: ``force`` after the deletion guard halted the run."""
        return "force" if self.summary.outcome == "halted" else None

    @property
    def outcome(self) -> str:
        return self.summary.outcome

    def as_dict(self) -> dict[str, Any]:
        """The issue's ``--json`` document, exactly."""
        s = self.summary
        return {
            "outcome": s.outcome,
            "pulled": s.pulled,
            "created": s.created,
            "updated": s.updated,
            "deactivated": s.deactivated,
            "quarantined": s.quarantined,
            "seated": s.seated,
            "gated": s.gated,
            "agents_synced": s.agents_synced,
            "requests": s.requests,
            "retries": s.retries,
            "seconds": round(s.seconds, 3),
        }


class _Halted(Exception):
    """The deletion guard tripped: roll back everything the run wrote."""


class _DryRun(Exception):
    """A dry run reached its end: roll back everything the run wrote."""


@attrs.define
class _Counts:
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


def _upsert(conn: sa.Connection, table: sa.Table) -> Any:
    # Both dialects spell ON CONFLICT the same way in SQLAlchemy; pick the one we run on.
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


class _Run:
    """One run's work inside its transaction. Holds the run's working set: the ids and emails seen
    (the reconcile of a full pull needs them), the ids of the users it touched, and the users who
    gained an activated role; never the pulled records themselves beyond one page."""

    def __init__(
        self,
        ports: Ports,
        uow: UnitOfWork,
        acct: Account,
        inst: Installation,
        hooks: ConnectorAdapter,
        settings: Mapping[str, Any],
        ctx: RequestStats,
        *,
        full: bool,
        force: bool,
        started: dt.datetime,
        on_page: Callable[[int], None] | None,
    ) -> None:
        self.ports = ports
        self.uow = uow
        conn = self.conn = uow.connection
        self.acct = acct
        self.inst = inst
        self.product = inst.product
        self.hooks = hooks
        self.settings = settings
        self.ctx = ctx
        self.full = full
        self.force = force
        self.started = started
        self.on_page = on_page
        self.counts = _Counts()
        self.seen_ids: set[str] = set()
        self.seen_emails: set[str] = set()
        # The users this run pulled: id -> (email, name, external id, active), for the gate.
        self.users: dict[int, tuple[str, str, str, bool]] = {}
        self.extra: set[int] = set()  # touched but not pulled: deactivated, seated from waiting
        self.gained: dict[str, int] = {}  # email -> user id, in pull order
        self.next_id: int | None = None  # SQLite: ids handed out under the run's write lock
        self.bulk_users = _Bulk(
            conn,
            integration_users,
            ("id", "account_id", "email", "name", "active", "roles", "created_at", "updated_at"),
        )
        self.bulk_links = _Bulk(
            conn, external_ids, ("account_id", "product", "external_id", "user_id")
        )
        self.bulk_agents = _Bulk(
            conn,
            agent_directory,
            (
                "account_id",
                "product",
                "user_id",
                "external_id",
                "email",
                "name",
                "active",
                "updated_at",
                "run_id",
            ),
            conflict=("account_id", "product", "user_id"),
        )
        self.at_value = self.bulk_users.value("created_at", started)
        self.newly_seated: list[str] = []
        self.max_stamp: dt.datetime | None = None
        self.activated = frozenset(inst.connector.activated_roles)
        self.run_id = 0
        self.users_changed = False
        self.gone: set[int] = set()  # users a full pull no longer returns
        self.had_links = True  # the connector had linked users when the run began
        self.had_users = True  # the account had users when the run began
        self._roles_text: dict[str | None, tuple[str, ...]] = {}
        self._norm_roles: dict[tuple[str, ...], tuple[str, ...]] = {}

    def _stored_roles(self, text: str | None) -> tuple[str, ...]:
        """A user's stored roles (JSON text as the driver returns it), parsed once per distinct
        text: a run sees a handful of role sets, not one per user."""
        out = self._roles_text.get(text)
        if out is None:
            out = self._roles_text[text] = tuple(json.loads(text)) if text else ()
        return out

    # -- the steps -----------------------------------------------------------------------------------
    def execute(self, since: dt.datetime | None, cursor_row: Any) -> None:
        conn = self.conn
        self.run_id = conn.execute(
            sync_runs.insert().values(
                account_id=self.acct.id,
                product=self.product,
                started_at=self.started,
                outcome="running",
                full=self.full,
                forced=self.force,
            )
        ).inserted_primary_key[0]
        active_before = self._count_active_linked() if self.full else 0
        self.had_links = self._has_links()
        self.had_users = self._has_users()
        pages = self.hooks.pull_users(
            self.product, self.settings, since, self.ctx, activated_roles=self.activated
        )
        for page in pages:
            self._page(page.users)
            if self.on_page is not None:
                self.on_page(self.counts.pulled)
        if self.full:
            self._deactivate_missing(active_before)
        if self.users_changed:
            self.uow.accounts.bump_versions(self.acct.id)
        self._auto_install()
        self._gate_and_write_agents()
        self._commit_cursor(cursor_row)

    def _has_links(self) -> bool:
        return (
            self.conn.execute(
                sa.select(external_ids.c.user_id)
                .where(
                    external_ids.c.account_id == self.acct.id,
                    external_ids.c.product == self.product,
                )
                .limit(1)
            ).first()
            is not None
        )

    def _has_users(self) -> bool:
        return (
            self.conn.execute(
                sa.select(integration_users.c.id)
                .where(integration_users.c.account_id == self.acct.id)
                .limit(1)
            ).first()
            is not None
        )

    def _count_active_linked(self) -> int:
        return int(
            self.conn.execute(
                sa.select(sa.func.count(sa.distinct(external_ids.c.user_id)))
                .join(integration_users, integration_users.c.id == external_ids.c.user_id)
                .where(
                    external_ids.c.account_id == self.acct.id,
                    external_ids.c.product == self.product,
                    integration_users.c.active.is_(True),
                )
            ).scalar_one()
        )

    def _quarantine(self, rows: list[dict[str, Any]], user: ExternalUser, reason: str) -> None:
        ext = user.external_id if isinstance(user.external_id, str) else ""
        email = user.email if isinstance(user.email, str) else ""
        rows.append(
            {
                "run_id": self.run_id,
                "account_id": self.acct.id,
                "product": self.product,
                "external_id": ext[:100],
                "email": email[:254],
                "reason": reason,
                "at": self.started,
            }
        )
        self.counts.quarantined += 1
        self.counts.reasons[reason] = self.counts.reasons.get(reason, 0) + 1

    def _page(self, users: Iterable[ExternalUser]) -> None:
        """Validate one page, then reconcile it in bulk."""
        quarantined: list[dict[str, Any]] = []
        valid: list[tuple[str, str, ExternalUser]] = []
        seen_ids, seen_emails = self.seen_ids, self.seen_emails
        max_stamp = self.max_stamp
        for user in users:
            self.counts.pulled += 1
            if not self.counts.pulled % 256:
                # An adapter's read-ahead thread (core.readahead) needs the GIL after each socket
                # read of the next page; without a turn now and then it waits a switch interval.
                time.sleep(0)
            stamp = user.modified_at
            if stamp is not None and (max_stamp is None or stamp > max_stamp):
                max_stamp = stamp
            ext = user.external_id
            if not isinstance(ext, str) or not ext.strip():
                self._quarantine(quarantined, user, "missing_id" if not ext else "bad_id")
                continue
            if len(ext) > 100:
                self._quarantine(quarantined, user, "bad_id")
                continue
            if ext in seen_ids:
                self._quarantine(quarantined, user, "duplicate_id")
                continue
            # Seen even if quarantined below: a bad record never makes its user look deleted.
            seen_ids.add(ext)
            raw = user.email
            if not raw or not isinstance(raw, str):
                self._quarantine(quarantined, user, "missing_email")
                continue
            try:
                email = normalize_email(raw)
            except BadInput:
                self._quarantine(quarantined, user, "bad_email")
                continue
            if len(email) > 254:
                self._quarantine(quarantined, user, "bad_email")
                continue
            if email in seen_emails:
                self._quarantine(quarantined, user, "duplicate_email")
                continue
            seen_emails.add(email)
            valid.append((ext, email, user))
        self.max_stamp = max_stamp
        if valid:
            self._reconcile(valid, quarantined)
        if quarantined:
            self.conn.execute(sync_quarantine.insert(), quarantined)

    def _reconcile(
        self, valid: list[tuple[str, str, ExternalUser]], quarantined: list[dict[str, Any]]
    ) -> None:
        conn, acct_id, product, at = self.conn, self.acct.id, self.product, self.started
        iu = integration_users
        mark = _mark(conn)
        roles_of = self._stored_roles
        linked: dict[str, tuple[int, str, str, bool, tuple[str, ...]]] = {}
        # With no link of this connector before the run, no pulled id can be linked: the run's own
        # links are to ids it has seen, and a seen id comes back only as a duplicate.
        if self.had_links:
            for ext, uid, cur_email, cur_name, cur_active, cur_roles in _select_in(
                conn,
                "SELECT external_ids.external_id, integration_users.id, integration_users.email, "
                "integration_users.name, integration_users.active, integration_users.roles "
                "FROM external_ids JOIN integration_users "
                "ON integration_users.id = external_ids.user_id "
                f"WHERE external_ids.account_id = {mark} AND external_ids.product = {mark} "
                "AND external_ids.external_id IN",
                (acct_id, product),
                [v[0] for v in valid],
            ):
                linked[ext] = (uid, cur_email, cur_name, bool(cur_active), roles_of(cur_roles))
        # Users the account already knows by email (added by an admin, or another CRM's), for ids
        # not linked yet and for linked users whose email changed. With no user in the account
        # before the run there is none: the run's own users have emails it has seen.
        wanted = (
            [
                email
                for ext, email, _ in valid
                if (found := linked.get(ext)) is None or found[1] != email
            ]
            if self.had_users
            else []
        )
        by_email: dict[str, tuple[int, str, bool, tuple[str, ...]]] = {}
        for email, uid, cur_name, cur_active, cur_roles in _select_in(
            conn,
            "SELECT email, id, name, active, roles FROM integration_users "
            f"WHERE account_id = {mark} AND email IN",
            (acct_id,),
            wanted,
        ):
            by_email[email] = (uid, cur_name, bool(cur_active), roles_of(cur_roles))

        activated = self.activated
        users, gained = self.users, self.gained
        # ext, email, name, active, roles, gains an activated role
        inserts: list[tuple[str, str, str, bool, tuple[str, ...], bool]] = []
        links: list[Any] = []  # account, product, external id, user id; row after row
        updates: list[dict[str, Any]] = []
        norm_roles = self._norm_roles
        for ext, email, user in valid:
            name = (user.name or "")[:_NAME_MAX]
            try:
                roles = norm_roles[user.roles]
            except KeyError:
                roles = norm_roles[user.roles] = tuple(sorted(set(user.roles)))
            except TypeError:  # an adapter handed a list: not a key, normalise it each time
                roles = tuple(sorted(set(user.roles)))
            active = bool(user.active)
            found = linked.get(ext)
            if found is not None:
                uid, cur_email, cur_name, cur_active, cur_roles = found
                if cur_email != email and email in by_email:
                    self._quarantine(quarantined, user, "email_taken")
                    users[uid] = (cur_email, cur_name, ext, bool(cur_active))  # as it was
                    continue
            else:
                other = by_email.get(email)
                if other is None:
                    gains = active and bool(activated) and bool(activated.intersection(roles))
                    if gains:
                        gained[email] = 0  # keeps the pull order; the id comes with the insert
                    inserts.append((ext, email, name, active, roles, gains))
                    continue
                uid, cur_name, cur_active, cur_roles = other
                cur_email = email
                links.extend((acct_id, product, ext, uid))
            users[uid] = (email, name, ext, active)
            had_role = cur_active and bool(activated.intersection(cur_roles))
            if active and not had_role and activated.intersection(roles):
                gained[email] = uid
            if (
                cur_email != email
                or cur_name != name
                or bool(cur_active) != active
                or cur_roles != roles
                or found is None
            ):
                updates.append(
                    {
                        "b_id": uid,
                        "b_email": email,
                        "b_name": name,
                        "b_active": active,
                        "b_roles": list(roles),
                        "b_at": at,
                    }
                )
        if inserts:
            new_ids: Sequence[int]
            if conn.dialect.name == "sqlite":
                # The run holds SQLite's write lock (BEGIN IMMEDIATE) from its first page, so it
                # can hand out ids itself and skip RETURNING, the costliest part of a bulk insert.
                if self.next_id is None:
                    self.next_id = int(conn.execute(sa.select(sa.func.max(iu.c.id))).scalar() or 0)
                new_ids = range(self.next_id + 1, self.next_id + 1 + len(inserts))
                self.next_id += len(inserts)
                bulk, at_value = self.bulk_users, self.at_value
                as_json = bulk.roles
                values: list[Any] = []
                add = values.extend
                for uid, (_ext, email, name, active, roles, _gains) in zip(
                    new_ids, inserts, strict=True
                ):
                    add((uid, acct_id, email, name, active, as_json(roles), at_value, at_value))
                bulk.run(values)
            else:
                created = conn.execute(
                    iu.insert().returning(iu.c.id, sort_by_parameter_order=True),
                    [
                        {
                            "account_id": acct_id,
                            "email": email,
                            "name": name,
                            "active": active,
                            "roles": list(roles),
                            "created_at": at,
                            "updated_at": at,
                        }
                        for _ext, email, name, active, roles, _gains in inserts
                    ],
                )
                new_ids = [uid for (uid,) in created]
            for uid, (ext, email, name, active, _roles, gains) in zip(
                new_ids, inserts, strict=True
            ):
                users[uid] = (email, name, ext, active)
                links.extend((acct_id, product, ext, uid))
                if gains:
                    gained[email] = uid
            self.counts.created += len(inserts)
        self.bulk_links.run(links)
        if updates:
            conn.execute(
                iu.update()
                .where(iu.c.id == sa.bindparam("b_id"))
                .values(
                    email=sa.bindparam("b_email"),
                    name=sa.bindparam("b_name"),
                    active=sa.bindparam("b_active"),
                    roles=sa.bindparam("b_roles", type_=iu.c.roles.type),
                    updated_at=sa.bindparam("b_at", type_=iu.c.updated_at.type),
                ),
                updates,
            )
            self.counts.updated += len(updates)
        if inserts or updates:
            self.users_changed = True

    def _deactivate_missing(self, active_before: int) -> None:
        """A full pull is the only basis for deactivation: active users of this connector none of
        whose external ids came back. Users also linked to another CRM stay active for the account
        (that CRM still vouches for them); only this connector's agent row goes inactive."""
        if not active_before:
            # Every active linked user now was made active by this run's pull, so none is gone.
            return
        conn, acct_id, product = self.conn, self.acct.id, self.product
        mark = _mark(conn)
        rows = _rows(
            conn,
            "SELECT external_ids.external_id, external_ids.user_id "
            "FROM external_ids JOIN integration_users "
            "ON integration_users.id = external_ids.user_id "
            f"WHERE external_ids.account_id = {mark} AND external_ids.product = {mark} "
            f"AND integration_users.active = {mark}",
            (acct_id, product, True),
        )
        seen = self.seen_ids
        absent = {uid for ext, uid in rows if ext not in seen}
        if absent:
            absent.difference_update([uid for ext, uid in rows if ext in seen])
        gone = sorted(absent)
        guard = self.inst.connector
        if (
            gone
            and not self.force
            and len(gone) >= guard.guard_min
            and len(gone) > guard.guard_share * active_before
        ):
            share = len(gone) / active_before  # > 0: with none active before, nothing is gone
            raise _Halted(
                f"deletion guard: the full pull would deactivate {len(gone)} of {active_before} "
                f"active users ({share:.0%} > {guard.guard_share:.0%}); nothing was written"
            )
        if not gone:
            return
        shared: set[int] = set()
        for chunk in _chunks(gone):
            shared.update(
                r[0]
                for r in conn.execute(
                    sa.select(external_ids.c.user_id).where(
                        external_ids.c.account_id == acct_id,
                        external_ids.c.product != product,
                        external_ids.c.user_id.in_(chunk),
                    )
                )
            )
        exclusive = [uid for uid in gone if uid not in shared]
        for chunk in _chunks(exclusive):
            conn.execute(
                integration_users.update()
                .where(integration_users.c.id.in_(chunk))
                .values(active=False, updated_at=self.started)
            )
        for chunk in _chunks(gone):
            conn.execute(
                auto_install_waiting.delete().where(
                    auto_install_waiting.c.account_id == acct_id,
                    auto_install_waiting.c.product == product,
                    auto_install_waiting.c.user_id.in_(chunk),
                )
            )
        self.gone = set(gone)
        self.extra.update(gone)
        self.counts.deactivated = len(gone)
        if exclusive:
            self.users_changed = True

    def _auto_install(self) -> None:
        """Seed 002 auto install: users gaining an activated role get a seat, in hard_cap only up
        to capacity; the rest wait (``auto_install_waiting``) and get theirs in a later run."""
        conn, acct_id, product = self.conn, self.acct.id, self.product
        waiting_rows = conn.execute(
            sa.select(
                auto_install_waiting.c.user_id,
                integration_users.c.email,
                integration_users.c.active,
                integration_users.c.roles,
                auto_install_waiting.c.since,
            )
            .join(integration_users, integration_users.c.id == auto_install_waiting.c.user_id)
            .where(
                auto_install_waiting.c.account_id == acct_id,
                auto_install_waiting.c.product == product,
            )
            .order_by(auto_install_waiting.c.since, auto_install_waiting.c.user_id)
        ).all()
        activated = self.activated
        candidates: dict[str, int] = {}  # email -> user id; the waiting first, longest first
        waiting_ids: set[int] = set()
        dropped: list[int] = []
        since: dict[str, dt.datetime] = {}
        for uid, email, active, roles, waited_since in waiting_rows:
            waiting_ids.add(uid)
            if active and activated.intersection(roles or ()):
                candidates[email] = uid
                since[email] = waited_since
            else:
                dropped.append(uid)  # lost the role or was deactivated: no longer waiting
        for email, uid in self.gained.items():
            candidates.setdefault(email, uid)
        if not candidates and not dropped:
            return
        result = (
            assign_seats(
                self.uow,
                self.acct,
                product,
                list(candidates),
                actor=AUTO_INSTALL_ACTOR,
                at=self.started,
                reason="auto_install",
                catalog=self.ports.catalog(),
            )
            if candidates
            else SeatResult(self.acct.name, product)
        )
        self.newly_seated = result.newly_assigned
        self.counts.seated = len(result.newly_assigned)
        refused = {r["email"]: r["reason"] for r in result.refused}
        self.counts.waiting = len(refused)
        # Seated (now or before) and dropped users leave the waiting list; the refused stay/join.
        leave = [candidates[e] for e in result.assigned if candidates[e] in waiting_ids]
        for chunk in _chunks(leave + dropped):
            conn.execute(
                auto_install_waiting.delete().where(
                    auto_install_waiting.c.account_id == acct_id,
                    auto_install_waiting.c.product == product,
                    auto_install_waiting.c.user_id.in_(chunk),
                )
            )
        join = [
            {
                "account_id": acct_id,
                "product": product,
                "user_id": candidates[e],
                "since": since.get(e, self.started),
                "reason": reason,
            }
            for e, reason in refused.items()
        ]
        if join:
            stmt = _upsert(conn, auto_install_waiting)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["account_id", "product", "user_id"],
                    set_={"reason": stmt.excluded.reason},
                ),
                join,
            )
        for email in result.newly_assigned:
            uid = candidates[email]
            if uid not in self.users:
                self.extra.add(uid)  # seated from the waiting list: their agent row changes too

    def _load_extra(self) -> None:
        """Users the gate must see that this run did not pull (deactivated, seated from the
        waiting list): read them, with this connector's external id."""
        conn, iu = self.conn, integration_users
        wanted = sorted(self.extra - self.users.keys())
        for chunk in _chunks(wanted):
            rows = conn.execute(
                sa.select(
                    iu.c.id,
                    iu.c.email,
                    iu.c.name,
                    iu.c.active,
                    sa.func.min(external_ids.c.external_id),
                )
                .join(external_ids, external_ids.c.user_id == iu.c.id)
                .where(
                    iu.c.id.in_(chunk),
                    external_ids.c.account_id == self.acct.id,
                    external_ids.c.product == self.product,
                )
                .group_by(iu.c.id, iu.c.email, iu.c.name, iu.c.active)
            )
            for uid, email, name, active, ext in rows:
                self.users[uid] = (email, name, ext, bool(active))

    def _gate_and_write_agents(self) -> None:
        """Gate ``agent_sync`` for every user the run touched and write the directory rows.

        The decision is :func:`entitlement.decide`, the check's own rule, on a snapshot of the
        account read in the run's transaction (seats as auto install left them). It depends on a
        user only through (active, seated), so it is made once per pair, not once per user.
        """
        conn, acct_id, product, at = self.conn, self.acct.id, self.product, self.started
        self._load_extra()
        if not self.users:
            return
        contract = self.uow.contracts.find(self.acct, product)
        assigned = self.uow.seats.count_assigned(acct_id, product)
        enabled = conn.execute(
            sa.select(installations.c.enabled).where(
                installations.c.account_id == acct_id, installations.c.product == product
            )
        ).scalar()
        base = entitlement.Snapshot(
            account=self.acct.name,
            region=self.acct.region,
            version=0,
            has_contract=contract is not None,
            contracted=0 if contract is None else contract.quantity,
            enabled=enabled is None or bool(enabled),
            users={},
            assigned=assigned,
        )
        # Seed 000: in overage "no user can be added ... as a new agent in a sync"; agents already
        # in the directory go on being synced through the transition.
        in_overage = contract is not None and (
            SeatCount(contract.quantity, assigned, contract.mode).in_overage
        )
        timeline = self.ports.timeline
        gated_features = self.ports.adapters.gated_features(product)
        pre_enablement = timeline.phase_at(self.acct.region, at).phase == "pre_enablement"
        decisions: dict[tuple[bool, bool], bool] = {}
        bulk = self.bulk_agents
        at_value, run_id = self.at_value, self.run_id
        users, gone = self.users, self.gone
        gated = synced = 0
        mark = _mark(conn)
        seats_sql = (
            f"SELECT user_id FROM seats WHERE account_id = {mark} AND product = {mark} "
            "AND user_id IN"
        )
        agents_sql = (
            "SELECT user_id, active FROM agent_directory "
            f"WHERE account_id = {mark} AND product = {mark} AND user_id IN"
        )
        # Per chunk of users, their seats and directory rows are looked up by id; when the
        # connector has no more such rows than the run has users (a full sync), one read of them
        # all costs less than as many lookups.
        agent_count = conn.execute(
            sa.select(sa.func.count())
            .select_from(agent_directory)
            .where(agent_directory.c.account_id == acct_id, agent_directory.c.product == product)
        ).scalar_one()
        all_seated: set[int] | None = None
        if assigned <= len(users):
            all_seated = {
                r[0]
                for r in _rows(
                    conn,
                    f"SELECT user_id FROM seats WHERE account_id = {mark} AND product = {mark}",
                    (acct_id, product),
                )
            }
        all_agents: dict[int, bool] | None = None
        if agent_count <= len(users):
            all_agents = {
                r[0]: bool(r[1])
                for r in _rows(
                    conn,
                    "SELECT user_id, active FROM agent_directory "
                    f"WHERE account_id = {mark} AND product = {mark}",
                    (acct_id, product),
                )
            }
        for chunk in _chunks(sorted(users), 1000):
            seated_ids = (
                all_seated
                if all_seated is not None
                else {r[0] for r in _select_in(conn, seats_sql, (acct_id, product), chunk, _CHUNK)}
            )
            agent_rows = (
                all_agents
                if all_agents is not None
                else {
                    r[0]: bool(r[1])
                    for r in _select_in(conn, agents_sql, (acct_id, product), chunk, _CHUNK)
                }
            )
            writes: list[Any] = []
            write = writes.extend
            for uid in chunk:
                email, name, ext, active = users[uid]
                seated = uid in seated_ids
                key = (active, seated)
                allowed = decisions.get(key)
                if allowed is None:
                    snap = attrs.evolve(base, users={email: key})
                    allowed = entitlement.decide(
                        snap, product, email, "agent_sync", at, timeline, gated_features
                    ).allowed
                    decisions[key] = allowed
                was_agent = agent_rows.get(uid, False)
                if allowed and in_overage and not seated and not was_agent and not pre_enablement:
                    allowed = False  # a new agent while the account is in overage
                # A user this connector dropped stays active for the account if another CRM
                # still has them, but is no longer this connector's agent.
                dropped = uid in gone
                is_agent = active and allowed and not dropped
                if active and not allowed and not dropped:
                    gated += 1
                if is_agent:
                    synced += 1
                elif uid not in agent_rows:
                    continue  # never an agent: nothing to take back
                write((acct_id, product, uid, ext, email, name, is_agent, at_value, run_id))
            bulk.run(writes)
        self.counts.gated += gated
        self.counts.agents_synced += synced

    def _commit_cursor(self, cursor_row: Any) -> None:
        conn = self.conn
        old = cursor_row.cursor if cursor_row is not None else None
        new = old
        if self.max_stamp is not None:
            # Never past the run's start: a change stamped later than that (clock skew, a change
            # during the run) would otherwise be skipped by the next incremental pull.
            stamp = min(self.max_stamp, self.started)
            new = stamp if old is None or stamp > old else old
        runs_since_full = 0 if self.full else (cursor_row.runs_since_full + 1 if cursor_row else 1)
        values = {
            "cursor": new,
            "runs_since_full": runs_since_full,
            "last_full_at": self.started if self.full else (cursor_row and cursor_row.last_full_at),
            "updated_at": self.started,
        }
        if cursor_row is None:
            conn.execute(
                sync_cursors.insert().values(
                    account_id=self.acct.id, product=self.product, **values
                )
            )
        else:
            conn.execute(
                sync_cursors.update()
                .where(
                    sync_cursors.c.account_id == self.acct.id,
                    sync_cursors.c.product == self.product,
                )
                .values(**values)
            )

    def record(self, outcome: str, seconds: float, message: str) -> None:
        c = self.counts
        self.conn.execute(
            sync_runs.update()
            .where(sync_runs.c.id == self.run_id)
            .values(
                outcome=outcome,
                pulled=c.pulled,
                created=c.created,
                updated=c.updated,
                deactivated=c.deactivated,
                quarantined=c.quarantined,
                seated=c.seated,
                waiting=c.waiting,
                gated=c.gated,
                agents_synced=c.agents_synced,
                requests=self.ctx.requests,
                retries=self.ctx.retries,
                seconds=seconds,
                message=message[:500],
            )
        )


def _message(exc: BaseException, scrub: Callable[[str], str]) -> str:
    if isinstance(exc, SeatgateError):
        return scrub(f"{exc.code}: {exc}")
    return scrub(f"{type(exc).__name__}: {exc}")


# -- scheduling ---------------------------------------------------------------------------------------
@attrs.frozen
class DueResult:
    account: str
    product: str
    outcome: str  # succeeded | failed | halted | error
    message: str = ""
    result: SyncResult | None = None


class SyncService:
    """Sync runs (one per account and connector), the schedule of due runs, and what runs wrote."""

    def __init__(self, ports: Ports) -> None:
        self.ports = ports

    def sync(
        self,
        account: str,
        product: str,
        *,
        full: bool = False,
        dry_run: bool = False,
        force: bool = False,
        retry: Any = None,
        on_page: Callable[[int], None] | None = None,
    ) -> SyncResult:
        """Run one sync of ``product`` for ``account``. Returns the run's result; a failure of the
        CRM is a ``failed`` outcome (recorded), not an exception. Raises for what the caller got
        wrong: an unknown account, no installation, a disabled connector (:class:`Conflict`,
        remedy ``enable``)."""
        ports = self.ports
        started = ports.now()
        t0 = time.perf_counter()
        hooks = ports.adapters.adapter(product)
        info = hooks.adapter_info()
        with read(ports) as uow:
            acct = uow.accounts.get(account)
            inst = require_installation(uow, account, product)
            cursor_row = uow.connection.execute(
                sa.select(sync_cursors).where(
                    sync_cursors.c.account_id == acct.id, sync_cursors.c.product == product
                )
            ).first()
        if not inst.enabled:
            raise Conflict(
                f"{product} is disabled on account {account!r}: syncs do not run",
                remedy="enable",
                context={"account": account, "product": product},
            )
        settings = ports.adapters.validate_settings(product, inst.stored)
        is_full = (
            full
            or not info.supports_cursor
            or cursor_row is None
            or cursor_row.cursor is None
            or cursor_row.runs_since_full + 1 >= inst.connector.full_every
        )
        since = None if is_full or cursor_row is None else cursor_row.cursor
        ctx = ports.adapters.request_context(retry)
        run: _Run | None = None
        outcome, message = "succeeded", ""
        try:
            with ports.db.write() as uow:
                run = _Run(
                    ports,
                    uow,
                    acct,
                    inst,
                    hooks,
                    settings,
                    ctx,
                    full=is_full,
                    force=force,
                    started=started,
                    on_page=on_page,
                )
                run.execute(since, cursor_row)
                if run.counts.waiting:
                    waiting = run.counts.waiting
                    message = (
                        "1 user waits for a seat (auto install)"
                        if waiting == 1
                        else f"{waiting} users wait for a seat (auto install)"
                    )
                run.record(outcome, time.perf_counter() - t0, message)
                if dry_run:
                    raise _DryRun()
                uow.record(_finished(run, outcome, is_full, started, t0, ctx, message))
        except _DryRun:
            pass
        except _Halted as exc:
            outcome, message = "halted", str(exc)
        except Exception as exc:
            outcome = "failed"
            message = _message(exc, lambda text: ports.adapters.scrub(text, settings))
            logger.error("sync of %s for %s failed: %s", product, account, message)
        counts = run.counts if run is not None else _Counts()
        if outcome != "succeeded":
            # Rolled back: nothing of the run was written; say what was pulled and why it stopped.
            counts = _Counts(
                pulled=counts.pulled, quarantined=counts.quarantined, reasons=counts.reasons
            )
        seconds = time.perf_counter() - t0
        run_id: int | None = None
        if dry_run:
            pass
        elif outcome == "succeeded":
            assert run is not None
            run_id = run.run_id
        else:
            with ports.db.write() as uow:
                run_id = uow.connection.execute(
                    sync_runs.insert().values(
                        account_id=acct.id,
                        product=product,
                        started_at=started,
                        outcome=outcome,
                        full=is_full,
                        forced=force,
                        pulled=counts.pulled,
                        quarantined=counts.quarantined,
                        requests=ctx.requests,
                        retries=ctx.retries,
                        seconds=seconds,
                        message=message[:500],
                    )
                ).inserted_primary_key[0]
                uow.audit.record(
                    at=started,
                    action="sync.run",
                    outcome=outcome,
                    account=account,
                    detail={"product": product, "run": run_id, "message": message},
                )
                uow.record(
                    SyncFinished(
                        account=account,
                        product=product,
                        at=started,
                        run_id=run_id,
                        outcome=outcome,
                        full=is_full,
                        seconds=seconds,
                        pulled=counts.pulled,
                        quarantined=counts.quarantined,
                        requests=ctx.requests,
                        retries=ctx.retries,
                        message=message,
                    )
                )
        summary = SyncSummary(
            account=account,
            product=product,
            outcome=outcome,
            full=is_full,
            started_at=started,
            seconds=seconds,
            pulled=counts.pulled,
            created=counts.created,
            updated=counts.updated,
            deactivated=counts.deactivated,
            quarantined=counts.quarantined,
            seated=counts.seated,
            gated=counts.gated,
            agents_synced=counts.agents_synced,
            requests=ctx.requests,
            retries=ctx.retries,
            message=message,
        )
        result = SyncResult(summary, run_id, counts.waiting, dry_run, dict(counts.reasons))
        if not dry_run:
            self._after_commit(result, run)
        return result

    def _after_commit(self, result: SyncResult, run: _Run | None) -> None:
        """The run's events were written with it; deliver them, then stream its agents to the
        ``agents_written`` listeners (read back by run id: a run may write 100,000)."""
        ports = self.ports
        deliver_pending(ports)
        s = result.summary
        if s.outcome == "succeeded" and run is not None and ports.publisher.wants_agents():
            for batch in self._agents_of_run(run.acct.id, s.product, run.run_id):
                ports.publisher.agents_written(s.account, s.product, batch, s.started_at)

    def _agents_of_run(
        self, account_id: int, product: str, run_id: int
    ) -> Iterator[list[AgentRecord]]:
        ad = agent_directory
        last = 0
        while True:
            with read(self.ports) as uow:
                rows = uow.connection.execute(
                    sa.select(ad.c.user_id, ad.c.email, ad.c.name, ad.c.external_id, ad.c.active)
                    .where(
                        ad.c.account_id == account_id,
                        ad.c.product == product,
                        ad.c.run_id == run_id,
                        ad.c.user_id > last,
                    )
                    .order_by(ad.c.user_id)
                    .limit(1000)
                ).all()
            if not rows:
                return
            last = rows[-1][0]
            yield [AgentRecord(r.email, r.name, r.external_id, bool(r.active)) for r in rows]

    def full_sync(self, account: str, product: str) -> SyncSummary:
        """A forced full sync, for benchmarks and demos: the whole pipeline, no deletion guard."""
        return self.sync(account, product, full=True, force=True).summary

    def due_connectors(self) -> list[Installation]:
        """Enabled connectors whose interval has passed since their last run started (or never
        ran)."""
        now = self.ports.now()
        with read(self.ports) as uow:
            last = {
                (r.account_id, r.product): r.last
                for r in uow.connection.execute(
                    sa.select(
                        sync_runs.c.account_id,
                        sync_runs.c.product,
                        sa.func.max(sync_runs.c.started_at).label("last"),
                    ).group_by(sync_runs.c.account_id, sync_runs.c.product)
                )
            }
            installed = uow.installs.list()
        due = []
        for inst in installed:
            if not inst.enabled or inst.uninstalled_at is not None:
                continue
            previous = last.get((inst.account_id, inst.product))
            interval = dt.timedelta(minutes=inst.connector.interval_minutes)
            if previous is not None and now - previous < interval:
                continue
            due.append(inst)
        return due

    def run_due(
        self,
        *,
        retry: Any = None,
        on_start: Callable[[Installation], None] | None = None,
    ) -> list[DueResult]:
        """Run the due uninstalls, then every due connector. One failure does not stop the rest."""
        out: list[DueResult] = []
        deliver_pending(self.ports)  # events a crashed process left undelivered
        for u in InstallService(self.ports).run_due_uninstalls():
            if not u.ok:
                out.append(DueResult(u.account, u.product, "error", f"uninstall hook: {u.error}"))
        for inst in self.due_connectors():
            if on_start is not None:
                on_start(inst)
            try:
                result = self.sync(inst.account, inst.product, retry=retry)
            except SeatgateError as exc:
                out.append(DueResult(inst.account, inst.product, "error", str(exc)))
                continue
            except Exception as exc:  # a bug in one connector must not stop the others
                logger.exception("sync of %s for %s raised", inst.product, inst.account)
                out.append(DueResult(inst.account, inst.product, "error", type(exc).__name__))
                continue
            out.append(
                DueResult(
                    inst.account, inst.product, result.outcome, result.summary.message, result
                )
            )
        return out

    def runs(
        self, account: str, product: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        with read(self.ports) as uow:
            acct = uow.accounts.get(account)
            query = (
                sa.select(sync_runs)
                .where(sync_runs.c.account_id == acct.id, sync_runs.c.outcome != "running")
                .order_by(sync_runs.c.id.desc())
                .limit(limit)
            )
            if product is not None:
                query = query.where(sync_runs.c.product == product)
            out = []
            for r in uow.connection.execute(query):
                row = dict(r._mapping)
                row.pop("account_id")
                row["account"] = account
                out.append(row)
            return out

    def quarantined(self, run_id: int) -> list[dict[str, Any]]:
        q = sync_quarantine
        with read(self.ports) as uow:
            rows = uow.connection.execute(
                sa.select(q.c.external_id, q.c.email, q.c.reason)
                .where(q.c.run_id == run_id)
                .order_by(q.c.id)
            )
            return [dict(r._mapping) for r in rows]

    def agents(self, account: str, product: str) -> list[dict[str, Any]]:
        ad = agent_directory
        with read(self.ports) as uow:
            acct = uow.accounts.get(account)
            rows = uow.connection.execute(
                sa.select(ad.c.email, ad.c.name, ad.c.external_id, ad.c.active)
                .where(ad.c.account_id == acct.id, ad.c.product == product)
                .order_by(ad.c.email)
            )
            return [dict(r._mapping) for r in rows]


def _finished(
    run: _Run,
    outcome: str,
    full: bool,
    started: dt.datetime,
    t0: float,
    ctx: RequestStats,
    message: str,
) -> SyncFinished:
    c = run.counts
    return SyncFinished(
        account=run.acct.name,
        product=run.product,
        at=started,
        run_id=run.run_id,
        outcome=outcome,
        full=full,
        seconds=time.perf_counter() - t0,
        pulled=c.pulled,
        created=c.created,
        updated=c.updated,
        deactivated=c.deactivated,
        quarantined=c.quarantined,
        seated=c.seated,
        gated=c.gated,
        agents_synced=c.agents_synced,
        requests=ctx.requests,
        retries=ctx.retries,
        message=message,
    )
