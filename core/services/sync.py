"""The sync use case: one run per (account, connector), the steps of DESIGN.md "One sync run".

    record the run                   ``running``, with a lease (owner, heartbeat, expiry) in a
                                     transaction of its own: a run whose process dies shows as
                                     ``interrupted`` once its lease expires, and the next run of
                                     the connector says it found one; a run of a connector whose
                                     lease is live is ``skipped``
    pull and validate (streamed)     AdapterHooks.pull_users outside any write transaction, the
                                     lease renewed between pages; incremental from the cursor less
                                     the adapter's lookback window, full on demand, on the first
                                     run, every ``full_every`` runs. Pages are validated as they
                                     come (:func:`~seatgate.core.domain.sync.validate_page`)
    plan (page by page)              while the adapter fetches the next page, a read of the links
                                     and users the page names, and the decisions no later record
                                     can change (:class:`~seatgate.core.domain.sync.PagePlanner`);
                                     at the end of the pull, the emails left waiting weighed over
                                     the whole pull (:func:`~seatgate.core.domain.sync.plan_changes`:
                                     the duplicate-record rule and the per-product role gain) and
                                     the deletion guard (:func:`~seatgate.core.domain.sync.deletion_guard`),
                                     which halts before anything is written
    apply (short transactions)       the change set (with the seats of users gaining a role,
                                     when nobody waited and the contract seats them all:
                                     ``_Reconcile._plan_inline``), deactivation from a full
                                     pull, auto install, the ``agent_sync`` gate and the agent
                                     directory, each in
                                     batches of users, one transaction per batch, sized to last
                                     about 50 ms on SQLite, 250 ms on PostgreSQL
                                     (:class:`~seatgate.core.services.batching.BatchSizer`;
                                     the first :data:`BATCH` users): a check or an admin's write
                                     never waits long behind a sync
    commit                           the cursor and the run's record, in the last transaction
    after commit                     events (``sync_finished``, seats, activations) and the
                                     ``agents_written`` stream

A failure of the pull (the CRM, a daily quota) happens before any write: nothing of the run is
applied and the cursor stays where it was. A run that dies between two batches of its apply
leaves the cursor where it was too: the next run pulls the same records again and re-applying
what was applied changes nothing, so reruns converge. The run's row then says how it ended. A
dry run does all of it in one transaction and rolls it back. The rules are in
:mod:`seatgate.core.domain.sync`; the SQL in the sync store
(:class:`~seatgate.core.services.ports.sync.SyncStore`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gc
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import attrs

from ..domain import entitlement
from ..domain import sync as rules
from ..domain.catalog import Catalog
from ..domain.events import SyncFinished
from ..domain.model import Account
from ..domain.records import AgentRecord, SyncSummary
from ..domain.seats import SeatCount
from ..domain.vocabulary import QuarantineReason
from ..errors import Conflict, SeatgateError
from . import stopping
from .base import deliver_pending, read
from .batching import MAX_SIZE, sizer
from .commitments import AUTO_INSTALL_ACTOR
from .installs import InstallService, require_installation
from .ports import Ports, RequestStats, UnitOfWork
from .ports.stores import Installation
from .ports.sync import AgentRow, CursorState, RunCounts, RunLease
from .seats import SeatResult, SeatTally, assign_seats, seat_count

__all__ = ["QUARANTINE_REASONS", "DueResult", "SyncResult", "SyncService"]

logger = logging.getLogger("seatgate.sync")

QUARANTINE_REASONS: tuple[str, ...] = tuple(QuarantineReason)
#: Malformed records a run's warning names (the rest are counted).
MALFORMED_SHOWN = 5

#: Seconds a run's lease lasts without a heartbeat; a run renews it every third of that.
LEASE_SECONDS = 120.0


@attrs.define
class SyncResult:
    """What one run did. ``summary`` is what listeners get and ``--json`` prints.

    ``interrupted`` lists the runs of the connector this run found dead (their lease expired):
    ``{"run": id, "started_at": instant}``."""

    summary: SyncSummary
    run_id: int | None
    waiting: int = 0
    dry_run: bool = False
    quarantine_reasons: dict[str, int] = attrs.field(factory=dict)
    interrupted: list[dict[str, Any]] = attrs.field(factory=list)

    @property
    def remedy(self) -> str | None:
        """What to do next: ``force`` after the deletion guard halted the run, ``wait`` when
        another run of the connector is under way."""
        return {"halted": "force", "skipped": "wait"}.get(self.summary.outcome)

    @property
    def outcome(self) -> str:
        return self.summary.outcome

    def as_dict(self) -> dict[str, Any]:
        """The issue's ``--json`` document (with ``interrupted`` when the run found any)."""
        s = self.summary
        out: dict[str, Any] = {
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
        if self.interrupted:
            out["interrupted"] = [
                {"run": i["run"], "started_at": i["started_at"].isoformat()}
                for i in self.interrupted
            ]
        return out


_paused_lock = threading.Lock()
_paused = {"runs": 0, "was_enabled": False}  # runs going on; whether the collector ran before


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while a run goes on (reference counting still
    frees everything else). A run holds a few hundred thousand live objects (the pulled records,
    what the planner read), and every collection of the older generations walks them all, while
    the pull allocates fast (each page parsed from JSON): measured, 3.6 s of a 100,000-user first
    sync and 6.9 s of a resync went to collections that found next to nothing. Runs in threads
    of one process nest: the collector resumes when the last one ends (as it was before)."""
    with _paused_lock:
        if _paused["runs"] == 0:
            _paused["was_enabled"] = gc.isenabled()
            gc.disable()
        _paused["runs"] += 1
    try:
        yield
    finally:
        with _paused_lock:
            _paused["runs"] -= 1
            if _paused["runs"] == 0 and _paused["was_enabled"]:
                gc.enable()


class _Halted(Exception):
    """The deletion guard tripped: roll back everything the run wrote."""


class _DryRun(Exception):
    """A dry run reached its end: roll back everything the run wrote."""


@attrs.define
class _Pulled:
    """What the pull read: how many records usable, the quarantined, every id seen."""

    usable: int = 0
    bad: list[rules.Quarantined] = attrs.field(factory=list)
    seen: set[str] = attrs.field(factory=set)
    newest: dt.datetime | None = None
    read: int = 0


#: Users in the first write transaction of each step of a reconcile; the later ones are sized by
#: the time the earlier took (:func:`~seatgate.core.services.batching.sizer`: about 50 ms each on
#: SQLite, well under the 100 ms issue 12 item 7 allows, so a check or an admin's write never waits
#: long behind a sync; about 250 ms on PostgreSQL, where only writers of the same rows wait).
BATCH = 250

#: The reconcile's kinds of write, each with a batch size of its own (a user costs each a
#: different time).
STEPS = ("users", "quarantine", "deactivate", "seats", "agents")

Tx = Callable[[bool], AbstractContextManager[UnitOfWork]]  # write? -> a unit of work

#: The waiting-list reason of a user whose role gain is written but not yet seated.
PENDING = "pending"


class _Reconcile:
    """One run's reconcile. While the pull goes on, each page's records are looked up (links,
    users: reads, no write transaction) and handed to the domain's
    :class:`~seatgate.core.domain.sync.PagePlanner`, which decides at once those no later record
    can change (issue 12 item 8: that work overlaps the fetch of the next page). At the end of the
    pull the rest is weighed over the whole pull and the deletion guard decides, before anything
    is written; then the store writes the change set in batches, each its own short transaction
    (``tx``). The last transaction — the cursor and the run's record — is the caller's. A dry run
    passes one transaction for all of its writes.

    Nothing is written while the pull goes on: a pull that fails removes nothing and changes
    nothing (DESIGN.md "One sync run"). A run that dies between batches leaves the cursor where
    it was: the next run pulls the same records again and re-applying what was applied changes
    nothing."""

    def __init__(
        self,
        ports: Ports,
        tx: Tx,
        acct: Account,
        inst: Installation,
        pulled: _Pulled,
        *,
        run_id: int,
        full: bool,
        force: bool,
        started: dt.datetime,
        beat: Callable[[], None] = lambda: None,
    ) -> None:
        self.ports, self.tx, self.beat = ports, tx, beat
        self.acct, self.inst, self.product = acct, inst, inst.product
        self.pulled = pulled
        self.run_id, self.full, self.force, self.started = run_id, full, force, started
        self.activated = frozenset(inst.connector.activated_roles)
        self.counts = RunCounts(pulled=pulled.read)
        self.users: dict[int, AgentRow] = {}  # every user whose agent row may change
        self.gone: list[int] = []
        self.gained: dict[str, int] = {}  # in the order seats are offered
        self.newly_seated: list[str] = []
        self.planner = rules.PagePlanner(self.activated)
        self.decided: list[rules.ChangeSet] = []  # the pages' settled changes, in pull order
        self.quarantined: list[rules.Quarantined] = []
        self.updated: set[int] = set()
        self.active_before = 0
        self.has_links = self.has_users = False
        self.waited = False  # anyone on the waiting list before the run
        # Emails of users gaining a role whose seat is written in the transaction that writes
        # their role (_plan_inline), and those so handled (seated, or refused and waiting).
        self.inline: set[str] = set()
        self.inline_done: set[str] = set()
        # The seats held as the run's latest write under the contract's lock left them (or as
        # _plan_inline read them with the contract's version).
        self.tally: SeatTally | None = None
        # Never below BATCH: part of a batch's cost does not grow with its size (a count of the
        # seats, the waiting list's lookups, the commit), so smaller batches would only cost more.
        one_writer = ports.db.one_writer
        self.sizers = {step: sizer(BATCH, one_writer=one_writer) for step in STEPS}
        # Users inserted since the user table's statistics were last taken by this run
        # (SyncStore.analyze_grown_users: fresh plans for the key checks as the table grows).
        self.unanalyzed = 0

    def begin(self) -> None:
        """Before the pull: what the connector holds. (Its links change only by its own runs,
        and the lease lets one run at a time.)"""
        acct_id, product = self.acct.id, self.product
        with self.tx(False) as uow:
            store = uow.sync
            self.active_before = store.count_active_linked(acct_id, product)
            self.has_links = store.has_links(acct_id, product)
            self.has_users = store.has_users(acct_id)
            self.waited = store.anyone_waiting(acct_id, product)
        # A first sync (no link yet) settles each email's first active record at once.
        self.planner = rules.PagePlanner(self.activated, linkless=not self.has_links)

    def take(self, records: Sequence[rules.Staged]) -> None:
        """A page's usable records: look them up and decide what can be decided already."""
        acct_id, product, planner = self.acct.id, self.product, self.planner
        linked: dict[str, rules.LinkState] = {}
        known: dict[str, rules.Known] = {}
        if records and (self.has_links or self.has_users):
            with self.tx(False) as uow:
                store = uow.sync
                if self.has_links:
                    linked = store.linked(acct_id, product, [r.ext for r in records])
                asked = planner.emails_to_look_up(records, linked)
                if self.has_users and asked:
                    known = store.known(acct_id, product, asked)
        else:
            asked = planner.emails_to_look_up(records, linked)
        self.decided.append(planner.add(records, linked, known, asked))

    def prepare(self) -> None:
        """At the end of the pull: weigh what waited over the whole pull; raises
        :class:`_Halted` (nothing written) when the deletion guard says so."""
        acct_id, product, pulled = self.acct.id, self.product, self.pulled
        self.counts.pulled = pulled.read
        rest = self.planner.finish(pulled.seen if self.full else None, self.beat)
        self.decided.append(rest)
        links: list[tuple[str, int]] = []
        if self.full and self.active_before:
            with self.tx(False) as uow:
                links = uow.sync.active_links(acct_id, product)
        if links:
            seen = pulled.seen
            absent = {uid for ext, uid in links if ext not in seen}
            if absent:
                absent.difference_update([uid for ext, uid in links if ext in seen])
            self.gone = sorted(absent)
        guard = self.inst.connector
        halt = rules.deletion_guard(
            removing=len(set(self.gone) | rest.deactivating),
            active_before=self.active_before,
            usable_pulled=pulled.usable,
            full=self.full,
            share=guard.guard_share,
            minimum=guard.guard_min,
            force=self.force,
        )
        if halt is not None:
            raise _Halted(halt)

    @functools.cached_property
    def catalog(self) -> Catalog:
        return self.ports.catalog()

    @property
    def written(self) -> int:
        """Users this run created, updated or deactivated so far."""
        return self.counts.created + self.counts.updated + self.counts.deactivated

    def apply(self) -> None:
        """Write what is left of the change set, deactivate, auto install, gate and write the
        agents."""
        self._plan_inline()
        for plan in self.decided:
            self._write(plan)
        self.decided = []
        self._write_quarantine()
        self._deactivate()
        if self.written >= BATCH:
            # Fresh planner statistics before the steps that read what was just written (a
            # first sync bulk-loads tables the planner still believes empty).
            with self.tx(True) as uow:
                uow.sync.analyze(users=True, agents=False, written=self.written)
        self._auto_install()
        self._gate_and_write_agents()

    def finish(self, uow: UnitOfWork, cursor: CursorState | None) -> None:
        """In the run's last transaction: the cursor (fresh statistics after a bulk load)."""
        at, pulled = self.started, self.pulled
        uow.sync.save_cursor(
            self.acct.id,
            self.product,
            CursorState(
                rules.next_cursor(cursor.cursor if cursor else None, pulled.newest, at),
                0 if self.full else (cursor.runs_since_full + 1 if cursor else 1),
                at if self.full else (cursor.last_full_at if cursor else None),
            ),
            at,
        )
        if self.written >= BATCH:
            # The users and links were analyzed in apply; the seats and agents written since not.
            uow.sync.analyze(users=False, agents=True, written=self.written)

    def _decisions_stale(self, uow: UnitOfWork) -> None:
        """The account's cached decisions are stale after this write of the sync's: its
        entitlement versions move, the strict ones not (a server's checks may follow a sync's
        writes within their sync lag, as this process's do within their max_age: ``self.tx``)."""
        uow.accounts.bump_versions(self.acct.id, strict=False)

    def _plan_inline(self) -> None:
        """Which users gaining a role get their seat in the transaction that writes their role
        (``self.inline``), instead of waiting for it on the waiting list until auto install:
        only where that gives what auto install would.

        Auto install (:meth:`_auto_install`) offers seats to those who waited before the run
        first, then to the run's gainers in pull order, each batch through :func:`assign_seats`.
        When nobody waited before the run and the contract has room for every gainer of the run
        (:meth:`SeatCount.room_for`: no refusal whoever asks first, so the order cannot change
        who gets a seat), a gainer may be seated as soon as its role is written, provided the
        seats are still offered in pull order: each seat's ``assigned_after`` (the seat ledger,
        the events) follows the order. So the inline gainers are the longest run of gainers, in
        the order the batches write their roles, that is also the start of the pull order, and
        made of users the run inserts (their row and their link with its roles are written by
        one call, in one batch; a user the run updates or links has its role and its row written
        in batches of their own, and waits as before). The gainers after that run wait for auto
        install as before, and get the seats that follow in pull order.

        The capacity read here is checked again by :func:`assign_seats` under the contract's
        lock in each batch: a seat taken meanwhile by someone else refuses gainers there as it
        would in auto install, and the refused wait with their reason (the rest of the run's
        gainers then wait for auto install)."""
        if self.waited or not self.activated:
            return
        order: list[str] = []  # the gainers, as the batches write their roles
        inserted: set[str] = set()
        for plan in self.decided:
            gained = plan.gained
            # Gainers the run links or updates join the waiting list in their change set's
            # first batch (_write), before its inserts.
            order += [email for email, uid in gained.items() if uid]
            for rec in plan.inserts:
                if gained.get(rec.email) == 0 and rec.email not in inserted:
                    inserted.add(rec.email)
                    order.append(rec.email)
        if not inserted or len(set(order)) != len(order):
            return
        position = self.planner.position
        offered = sorted(order, key=lambda email: _pull_order(position, email))
        inline: set[str] = set()
        for written, first in zip(order, offered, strict=True):
            if written != first or written not in inserted:
                break
            inline.add(written)
        if not inline:
            return
        with self.tx(False) as uow:
            contract = uow.contracts.find(self.acct, self.product)
            tally = uow.seats.tally(self.acct.id, self.product)
            if contract is None or tally is None:
                return  # no contract: every gainer is refused and waits, as before
            version, held = tally
            count = seat_count(uow, self.acct, contract, self.started, written=True, held=held)
        if count.room_for(len(order)):
            self.inline = inline
            # The first inline batch need not count the seats again if nobody changed them.
            self.tally = SeatTally(version, held)

    def _seat_inline(
        self, uow: UnitOfWork, users: dict[str, int], *, bumped: bool
    ) -> tuple[SeatResult, int]:
        """Seat ``users`` (email -> id, in pull order), whose role this transaction writes, as auto
        install would (:func:`assign_seats`); the refused wait with their reason. ``bumped``: the
        transaction bumped the account's versions already (_decisions_stale: then the seats do
        not bump theirs again). Returns the result and how many were refused."""
        acct_id, product = self.acct.id, self.product
        tally = self.tally.bumped() if self.tally is not None and bumped else self.tally
        result = assign_seats(
            uow,
            self.acct,
            product,
            list(users),
            actor=AUTO_INSTALL_ACTOR,
            at=self.started,
            reason="auto_install",
            catalog=self.catalog,
            strict=False,
            ids=users,
            tally=tally,
            bumped=bumped,
        )
        refused = [(users[r["email"]], self.started, r["reason"]) for r in result.refused]
        uow.sync.join_waiting(acct_id, product, refused)
        return result, len(refused)

    def _write(self, plan: rules.ChangeSet) -> None:
        """Write one change set in batches of users, a transaction each."""
        acct_id, product, at = self.acct.id, self.product, self.started
        self.quarantined += plan.quarantined
        updates = plan.updates
        if plan.renamed:
            # Emails users leave first: another user of the pull (a twin's new user, a user
            # whose record moves to the freed email) may take them in the batches below.
            renames = [u for u in updates if u[0] in plan.renamed]
            updates = [u for u in updates if u[0] not in plan.renamed]
            moves = [(uid, plan.renamed[uid], rec.email) for uid, rec in renames]
            # In batches whose order keeps the emails unique between them (a user after the one
            # whose email it takes; a cycle of trades in one batch): a transaction each.
            for batch in rules.rename_batches(moves, MAX_SIZE):
                with self.tx(True) as uow:
                    uow.sync.rename_users([renames[i] for i in batch], at)
                    self._decisions_stale(uow)
                self.beat()
        lists: list[Sequence[Any]] = [
            plan.unlinks,
            plan.inserts,
            plan.links,
            updates,
            plan.link_updates,
        ]
        gained, touched = plan.gained, plan.touched
        pending = [uid for uid in gained.values() if uid]
        created = 0
        inline = self.inline
        for part in self.sizers["users"].slices(max(*map(len, lists), 1 if pending else 0)):
            seated: tuple[SeatResult, int] | None = None
            with self.tx(True) as uow:
                store = uow.sync
                store.unlink(acct_id, product, plan.unlinks[part])
                inserts = plan.inserts[part]
                new_ids = store.insert_users(acct_id, product, inserts, at)
                seat_now: dict[str, int] = {}
                for uid, rec in zip(new_ids, inserts, strict=True):
                    touched[uid] = rec
                    if gained.get(rec.email) == 0:
                        gained[rec.email] = uid
                        if rec.email in inline:
                            seat_now[rec.email] = uid
                        else:
                            pending.append(uid)
                # Users gaining a role wait for their seat from the moment their role is written,
                # or get it in the same transaction (_plan_inline): a run that dies before its
                # auto install leaves them for the next one.
                store.join_waiting(acct_id, product, [(uid, at, PENDING) for uid in pending])
                pending = []
                store.link(
                    acct_id,
                    product,
                    [
                        (ext, uid, touched[uid].active, touched[uid].roles)
                        for ext, uid in plan.links[part]
                    ],
                )
                store.update_users(updates[part], at)
                store.update_links(acct_id, product, plan.link_updates[part])
                self.unanalyzed += len(new_ids)
                if new_ids and store.analyze_grown_users(self.unanalyzed):
                    self.unanalyzed = 0
                stale = bool(new_ids or updates[part])
                if stale:
                    self._decisions_stale(uow)
                if seat_now:
                    # After the version's bump: the contract is locked from there to the commit.
                    seated = self._seat_inline(uow, seat_now, bumped=stale)
            created += len(new_ids)
            if seated is not None:
                result, refused = seated
                self.tally = result.tally
                self.inline_done.update(seat_now)
                self.newly_seated += result.newly_assigned
                self.counts.seated += len(result.newly_assigned)
                self.counts.waiting += refused
                if refused:
                    # Someone else took seats since _plan_inline: the rest wait for auto install.
                    self.inline = inline = set()
            self.beat()
        self.gained.update(gained)
        linked = self.planner.linked
        self.updated.update(uid for uid, _ in plan.updates)
        self.updated.update(linked[ext].user_id for ext, _, _ in plan.link_updates if ext in linked)
        self.counts.created += created
        self.counts.updated = len(self.updated)
        users = self.users
        for uid, rec in touched.items():
            users[uid] = AgentRow(rec.email, rec.name, rec.ext, rec.active)
        for uid, rec in plan.standing.items():
            # As it stands: never over a decision's row, of this change set or an earlier one
            # (a later one's replaces it above).
            if uid not in users:
                users[uid] = AgentRow(rec.email, rec.name, rec.ext, rec.active)

    def _write_quarantine(self) -> None:
        """The records set aside, with their reasons (the pull's and the plan's)."""
        acct_id, product, at = self.acct.id, self.product, self.started
        quarantined = [*self.pulled.bad, *self.quarantined]
        self.counts.quarantined = len(quarantined)
        for q in quarantined:
            self.counts.reasons[q.reason] = self.counts.reasons.get(q.reason, 0) + 1
        for part in self.sizers["quarantine"].slices(len(quarantined)):
            with self.tx(True) as uow:
                uow.sync.quarantine(self.run_id, acct_id, product, quarantined[part], at)
            self.beat()

    def _deactivate(self) -> None:
        """A full pull is the only basis for deactivation: active users of this connector none of
        whose external ids came back. Users also linked to another CRM stay active for the
        account (that CRM still vouches for them); only this connector's agent row goes
        inactive."""
        acct_id, product = self.acct.id, self.product
        for chunk in self.sizers["deactivate"].slices(len(self.gone)):
            part = self.gone[chunk]
            with self.tx(True) as uow:
                store = uow.sync
                shared = store.linked_elsewhere(acct_id, product, part)
                exclusive = [uid for uid in part if uid not in shared]
                store.deactivate(acct_id, product, part, exclusive, self.started)
                if exclusive:
                    self._decisions_stale(uow)
            self.beat()
        self.counts.deactivated = len(self.gone)
        missing = [uid for uid in self.gone if uid not in self.users]
        if missing:
            with self.tx(False) as uow:
                self.users.update(uow.sync.agent_users(acct_id, product, missing))

    def _auto_install(self) -> None:
        """Seed 002 auto install: users gaining an activated role of this product get its seat,
        in hard_cap only up to capacity; the rest wait and get theirs in a later run."""
        acct_id, product = self.acct.id, self.product
        activated = self.activated
        candidates: dict[str, int] = {}  # email -> user id; the waiting first, longest first
        waiting_ids: set[int] = set()
        dropped: list[int] = []
        since: dict[str, dt.datetime] = {}
        # Those gaining now, in pull order (the pages' settled ones and those weighed at the end
        # of the pull come from different change sets).
        position = self.planner.position
        done = self.inline_done
        fresh = {e: uid for e, uid in self.gained.items() if e not in done}
        # The waiting list holds those who waited before the run and those this run wrote as
        # gaining; when nobody waited before (a first sync), there is nothing to read back. (Only
        # the connector's runs join and leave it, one at a time.)
        waiting: list[tuple[int, str, bool, tuple[str, ...], dt.datetime, str]] = []
        if self.waited:
            with self.tx(False) as uow:
                waiting = uow.sync.waiting(acct_id, product)
        else:
            waiting_ids.update(uid for uid in fresh.values() if uid)
        gaining = set(self.gained.values())
        for uid, email, active, roles, waited_since, reason in waiting:
            waiting_ids.add(uid)
            if active and not activated.isdisjoint(roles):
                if uid in gaining:
                    continue  # those gaining now come in pull order, below
                if reason == PENDING and position(email) is not None:
                    # Written as gaining by a run that died before its auto install, and pulled
                    # again: offered in pull order, as a run that had not died would have.
                    fresh[email] = uid
                    continue
                candidates[email] = uid
                since[email] = waited_since
            else:
                dropped.append(uid)  # lost the role or was deactivated: no longer waiting

        for email, uid in sorted(fresh.items(), key=lambda item: _pull_order(position, item[0])):
            candidates.setdefault(email, uid)
        if not candidates and not dropped:
            return
        wanted = list(candidates)
        extra: list[int] = []
        for i, chunk in enumerate(self.sizers["seats"].slices(max(len(wanted), 1))):
            part = wanted[chunk]
            with self.tx(True) as uow:
                result = (
                    assign_seats(
                        uow,
                        self.acct,
                        product,
                        part,
                        actor=AUTO_INSTALL_ACTOR,
                        at=self.started,
                        reason="auto_install",
                        catalog=self.catalog,
                        strict=False,
                        # The seats counted by the run's previous batch, while nobody else
                        # changed them (the contract's version tells).
                        tally=self.tally,
                    )
                    if part
                    else SeatResult(self.acct.name, product, tally=self.tally)
                )
                refused = {r["email"]: r["reason"] for r in result.refused}
                leave = [candidates[e] for e in result.assigned if candidates[e] in waiting_ids]
                if i == 0:
                    leave += dropped
                uow.sync.leave_waiting(acct_id, product, leave)
                uow.sync.join_waiting(
                    acct_id,
                    product,
                    [
                        (candidates[e], since.get(e, self.started), reason)
                        for e, reason in refused.items()
                    ],
                )
            self.tally = result.tally
            self.newly_seated += result.newly_assigned
            self.counts.seated += len(result.newly_assigned)
            self.counts.waiting += len(refused)
            extra += [
                candidates[e] for e in result.newly_assigned if candidates[e] not in self.users
            ]
            self.beat()
        if extra:
            # Seated from the waiting list: their agent row changes too.
            with self.tx(False) as uow:
                self.users.update(uow.sync.agent_users(acct_id, product, extra))

    def _gate_and_write_agents(self) -> None:
        """Gate ``agent_sync`` for every user the run touched and write the directory rows.

        The decision is :func:`entitlement.decide`, the check's own rule, on a snapshot of the
        account read after auto install. It depends on a user only through (active, seated), so
        it is made once per pair, not once per user.
        """
        acct_id, product, at = self.acct.id, self.product, self.started
        users, gone = self.users, set(self.gone)
        if not users:
            return
        with self.tx(False) as uow:
            store = uow.sync
            contract = uow.contracts.find(self.acct, product)
            assigned = uow.seats.count_assigned(acct_id, product)
            enabled = store.enabled(acct_id, product)
            # Per batch of users their seats and directory rows are looked up by id; when the
            # connector has no more such rows than the run has users (a full sync), one read of
            # them all costs less than as many lookups.
            seated_all = (
                store.seated_among(acct_id, product, (), True) if assigned <= len(users) else None
            )
            agents_all = (
                store.agents_among(acct_id, product, (), True)
                if store.agent_count(acct_id, product) <= len(users)
                else None
            )
        base = entitlement.Snapshot(
            account=self.acct.name,
            region=self.acct.region,
            version=0,
            has_contract=contract is not None,
            contracted=0 if contract is None else contract.quantity,
            enabled=enabled is None or enabled,
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
        gated = synced = 0
        ordered = sorted(users)
        for part in self.sizers["agents"].slices(len(ordered)):
            chunk = ordered[part]
            with self.tx(True) as uow:
                store = uow.sync
                seated_ids = (
                    seated_all
                    if seated_all is not None
                    else store.seated_among(acct_id, product, chunk, False)
                )
                agent_rows = (
                    agents_all
                    if agents_all is not None
                    else store.agents_among(acct_id, product, chunk, False)
                )
                writes: list[tuple[int, AgentRow, bool]] = []
                for uid in chunk:
                    row = users[uid]
                    active = row.active
                    seated = uid in seated_ids
                    key = (active, seated)
                    allowed = decisions.get(key)
                    if allowed is None:
                        snap = attrs.evolve(base, users={row.email: key})
                        allowed = entitlement.decide(
                            snap, product, row.email, "agent_sync", at, timeline, gated_features
                        ).allowed
                        decisions[key] = allowed
                    was_agent = agent_rows.get(uid, False)
                    if (
                        allowed
                        and in_overage
                        and not seated
                        and not was_agent
                        and not pre_enablement
                    ):
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
                    writes.append((uid, row, is_agent))
                store.write_agents(acct_id, product, writes, at, self.run_id)
            self.beat()
        self.counts.gated += gated
        self.counts.agents_synced += synced


def _pull_order(position: Callable[[str], int | None], email: str) -> int:
    """Where ``email`` came in the pull, the order auto install offers seats in (every email
    gaining a role in a run was pulled by it)."""
    at = position(email)
    return -1 if at is None else at


def _message(exc: BaseException, scrub: Callable[[str], str]) -> str:
    if isinstance(exc, SeatgateError):
        return scrub(f"{exc.code}: {exc}")
    # Only the first line, bounded: a driver's message goes on with the statement and its
    # parameters (tens of kilobytes of SQL and emails), which belong in no run record or log line.
    first = str(exc).strip().split("\n", 1)[0]
    if len(first) > 300:
        first = first[:300] + "…"
    return scrub(f"{type(exc).__name__}: {first}")


@functools.cache
def _pid_namespace() -> str | None:
    """This process's pid namespace on this boot of this machine (Linux), or None where that is
    not known: two processes see each other's pids exactly when these match (a container has a
    namespace of its own; containers may share a host name)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii")
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except (OSError, UnicodeDecodeError):
        return None
    return f"{boot.strip().replace('-', '')[:12]}.{namespace}"


def default_owner() -> str:
    """Who runs a sync, for its lease: ``host:pid:random`` (a pid is reused), then
    ``@namespace`` where the process's pid namespace is known (:func:`owner_is_dead`)."""
    where = _pid_namespace()
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    return owner if where is None else f"{owner}@{where}"


def owner_is_dead(owner: str) -> bool:
    """Whether the process a lease ``owner`` (:func:`default_owner`'s form, after any prefix)
    names is known to be gone: it ran in this pid namespace on this boot and no process has its
    pid now. A run killed (SIGKILL, a closed terminal) then need not wait for its lease to expire
    — which, on a clock frozen with ``--as-of``/``SEATGATE_NOW``, it never does. Anything not
    known (another machine or container, a pid reused since, no permission) is not dead."""
    base, at, where = owner.rpartition("@")
    here = _pid_namespace()
    if not at or here is None or where != here:
        return False
    parts = base.split(":")
    if len(parts) < 3 or not parts[-2].isdigit():
        return False
    try:
        os.kill(int(parts[-2]), 0)
    except ProcessLookupError:
        return True
    except (OSError, OverflowError):
        return False
    return False


# -- scheduling ---------------------------------------------------------------------------------------
@attrs.frozen
class DueResult:
    account: str
    product: str
    outcome: str  # succeeded | failed | halted | skipped | error
    message: str = ""
    result: SyncResult | None = None


class SyncService:
    """Sync runs (one per account and connector), the schedule of due runs, and what runs wrote.

    :param lease_seconds: how long a run's lease lasts without a heartbeat (seconds); a run
        renews it every third of that while it pulls.
    :param owner: who holds the leases of this service's runs (default: host, pid, a random part).
    """

    def __init__(
        self,
        ports: Ports,
        *,
        lease_seconds: float = LEASE_SECONDS,
        owner: str | None = None,
    ) -> None:
        self.ports = ports
        self.lease_seconds = lease_seconds
        self.owner = owner or default_owner()

    def _lease_until(self, at: dt.datetime) -> dt.datetime:
        return at + dt.timedelta(seconds=self.lease_seconds)

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
        take_over_from: str | None = None,
    ) -> SyncResult:
        """Run one sync of ``product`` for ``account``. Returns the run's result; a failure of the
        CRM is a ``failed`` outcome (recorded), not an exception; another live run of the
        connector makes this one ``skipped`` (remedy ``wait``). Raises for what the caller got
        wrong: an unknown account, no installation, a disabled connector (:class:`Conflict`,
        remedy ``enable``).

        ``take_over_from``: the caller holds a lock that every run whose lease owner starts with
        this prefix holds while it runs (the fleet's connector lock): such a run with a live
        lease is dead, and is recorded ``interrupted`` instead of making this one ``skipped``."""
        ports = self.ports
        started = ports.now()
        t0 = time.perf_counter()
        hooks = ports.adapters.adapter(product)
        info = hooks.adapter_info()
        with read(ports) as uow:
            acct = uow.accounts.get(account)
            inst = require_installation(uow, account, product)
            cursor = uow.sync.cursor(acct.id, product)
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
            or cursor is None
            or cursor.cursor is None
            or cursor.runs_since_full + 1 >= inst.connector.full_every
        )
        since = (
            None
            if is_full or cursor is None or cursor.cursor is None
            else rules.incremental_since(cursor.cursor, info.lookback_seconds)
        )
        ctx = ports.adapters.request_context(retry)
        outcome, message = "succeeded", ""
        pulled = _Pulled()
        run = _Reconcile(
            ports,
            # A batch's changes reach this process's cached decisions within their max_age, as
            # another process's do (checks beside a sync had re-read after every batch: p99 9-12
            # ms); the run's last transaction below moves the generation.
            lambda write: ports.db.write(lagged=True) if write else ports.db.read(),
            acct,
            inst,
            pulled,
            run_id=0,
            full=is_full,
            force=force,
            started=started,
        )
        # The stop's scope opens before the run's row is written: a stop that lands once the row
        # is committed records the run interrupted (it had stayed running until its lease
        # expired). Inside it, an exception that is the stop is raised as its SystemExit
        # (stopping.claiming) before anything takes it for a failure.
        with self._stop_ends(run, ctx, t0, dry_run=dry_run):
            interrupted: list[RunLease] = []
            run_id: int | None = None
            if not dry_run:
                with stopping.claiming(), ports.db.write() as uow:
                    interrupted = uow.sync.expire_leases(
                        acct.id, product, started, owned_by=take_over_from
                    )
                    live = uow.sync.live_run(acct.id, product, started)
                    if live is not None and owner_is_dead(live.owner):
                        interrupted += uow.sync.expire_leases(
                            acct.id, product, started, owned_by=live.owner
                        )
                        live = uow.sync.live_run(acct.id, product, started)
                    if live is None:
                        run_id = run.run_id = self._start_run(
                            uow, acct.id, product, started, is_full, force
                        )
                if live is not None:
                    return self._skipped(account, product, is_full, started, t0, live, interrupted)
                assert run_id is not None
                run.beat = self._beater(run_id)
            found = [{"run": i.run_id, "started_at": i.started_at} for i in interrupted]
            note = (
                "found interrupted run(s) "
                + ", ".join(f"{i.run_id} (started {i.started_at.isoformat()})" for i in interrupted)
                if interrupted
                else ""
            )
            try:
                with _collector_paused(), stopping.claiming():
                    run.begin()
                    self._pull(hooks, product, settings, since, ctx, run, on_page)
                    self._log_malformed(account, product, settings, run.pulled.bad)
                    if run_id is not None:
                        self._heartbeat(run_id)
                    if dry_run:
                        with ports.db.write() as uow:
                            run.run_id = self._start_run(  # its row goes with the rollback
                                uow, acct.id, product, started, is_full, force
                            )
                            one = contextlib.nullcontext(uow)
                            run.tx = lambda write: one
                            run.prepare()
                            run.apply()
                            run.finish(uow, cursor)
                            raise _DryRun()
                    assert run_id is not None
                    run.prepare()
                    run.apply()
                    if run.counts.waiting:
                        waiting = run.counts.waiting
                        message = (
                            "1 user waits for a seat (auto install)"
                            if waiting == 1
                            else f"{waiting} users wait for a seat (auto install)"
                        )
                    message = "; ".join(filter(None, [message, note]))
                    with ports.db.write() as uow:
                        run.finish(uow, cursor)
                        uow.sync.finish_run(
                            run_id,
                            outcome=outcome,
                            full=is_full,
                            counts=run.counts,
                            requests=ctx.requests,
                            retries=ctx.retries,
                            seconds=time.perf_counter() - t0,
                            message=message,
                        )
                        uow.record(
                            _finished(run, account, outcome, is_full, started, t0, ctx, message)
                        )
            except _DryRun:
                pass
            except _Halted as exc:
                outcome, message = "halted", str(exc)
            except Exception as exc:  # not a stop: stopping.claiming raised those as SystemExit
                outcome = "failed"
                message = _message(exc, lambda text: ports.adapters.scrub(text, settings))
                logger.error("sync of %s for %s failed: %s", product, account, message)
            if outcome == "succeeded":
                counts = run.counts
            else:
                # Halted (before anything was written) or failed: say what was pulled, what was
                # written before it stopped, and why. (A run that failed mid-way leaves the cursor
                # where it was: the next run pulls the same records and re-applies, changing nothing
                # already applied.)
                reasons: dict[str, int] = {}
                for q in pulled.bad:
                    reasons[q.reason] = reasons.get(q.reason, 0) + 1
                counts = RunCounts(
                    pulled=pulled.read,
                    created=run.counts.created,
                    updated=run.counts.updated,
                    quarantined=len(pulled.bad),
                    reasons=reasons,
                )
                message = "; ".join(filter(None, [message, note]))
            seconds = time.perf_counter() - t0
            if outcome != "succeeded" and run_id is not None:
                with stopping.claiming(), ports.db.write() as uow:
                    uow.sync.finish_run(
                        run_id,
                        outcome=outcome,
                        full=is_full,
                        counts=counts,
                        requests=ctx.requests,
                        retries=ctx.retries,
                        seconds=seconds,
                        message=message,
                    )
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
            result = SyncResult(
                summary, run_id, counts.waiting, dry_run, dict(counts.reasons), found
            )
            if not dry_run:
                self._after_commit(result, acct.id)
            return result

    def _pull(
        self,
        hooks: Any,
        product: str,
        settings: Any,
        since: dt.datetime | None,
        ctx: RequestStats,
        run: _Reconcile,
        on_page: Callable[[int], None] | None,
    ) -> None:
        """Pull every page outside any write transaction, validate it as it comes and hand its
        usable records to the reconcile; renew the run's lease between pages."""
        pulled = run.pulled
        for page in hooks.pull_users(product, settings, since, ctx, activated_roles=run.activated):
            valid, bad, newest, read_ = rules.validate_page(page.users, pulled.seen)
            pulled.usable += len(valid)
            pulled.bad.extend(bad)
            pulled.read += read_
            if newest is not None and (pulled.newest is None or newest > pulled.newest):
                pulled.newest = newest
            if on_page is not None:
                on_page(pulled.read)
            run.beat()
            run.take(valid)
            # An adapter's read-ahead thread (core.plugins.readahead) needs the GIL after each
            # socket read of the next page; give it a turn between pages.
            time.sleep(0)

    def _log_malformed(
        self,
        account: str,
        product: str,
        settings: Any,
        bad: Sequence[rules.Quarantined],
    ) -> None:
        """One warning per run naming the records its adapter could not read and why (their
        ``detail``: the quarantine table keeps the reason alone), a few of them, scrubbed of the
        connector's secrets."""
        malformed = [q for q in bad if q.reason == QuarantineReason.MALFORMED_RECORD]
        if not malformed:
            return
        shown = "; ".join(f"{q.ext}: {q.detail}" for q in malformed[:MALFORMED_SHOWN])
        if len(malformed) > MALFORMED_SHOWN:
            shown += f"; and {len(malformed) - MALFORMED_SHOWN} more"
        logger.warning(
            "sync of %s for %s: %d record(s) the adapter could not read, quarantined as "
            "malformed_record: %s",
            product,
            account,
            len(malformed),
            self.ports.adapters.scrub(shown, settings),
        )

    def _start_run(
        self,
        uow: UnitOfWork,
        account_id: int,
        product: str,
        started: dt.datetime,
        full: bool,
        force: bool,
    ) -> int:
        """The run's row, holding the connector's lease from ``started``."""
        return uow.sync.start_run(
            account_id,
            product,
            started=started,
            full=full,
            forced=force,
            owner=self.owner,
            lease_until=self._lease_until(started),
        )

    @contextlib.contextmanager
    def _stop_ends(
        self, run: _Reconcile, ctx: RequestStats, t0: float, *, dry_run: bool
    ) -> Iterator[None]:
        """Where a stop ends the run: Ctrl-C or a signal's ``SystemExit`` — or the one
        :func:`stopping.claiming` raised in place of an exception that is the stop (the signal's
        exception is in its chain: it cut a database call short and the driver's or SQLAlchemy's
        error came out in its place while it unwound, about one SIGTERM in eight during
        PostgreSQL calls). The run, once its row is written (``run.run_id``; a dry run's goes with its
        rollback), is recorded ``interrupted`` and its lease given back, so the next run neither
        waits for the lease to expire nor is skipped; then the stop goes on."""
        try:
            yield
        except (KeyboardInterrupt, SystemExit):
            if run.run_id and not dry_run:
                self._stopped(run, ctx, t0)
            raise

    def _stopped(self, run: _Reconcile, ctx: RequestStats, t0: float) -> None:
        """Record a run stopped by the operator as ``interrupted``; never raises (the stop goes
        on whatever this write does). On a new connection: the stop may have broken the one
        the run was using mid-call."""
        message = "interrupted: stopped by the operator (Ctrl-C) or a signal"
        try:
            self.ports.db.discard_connections()
            with self.ports.db.write() as uow:
                uow.sync.finish_run(
                    run.run_id,
                    outcome="interrupted",
                    full=run.full,
                    counts=RunCounts(
                        pulled=run.pulled.read,
                        created=run.counts.created,
                        updated=run.counts.updated,
                    ),
                    requests=ctx.requests,
                    retries=ctx.retries,
                    seconds=time.perf_counter() - t0,
                    message=message,
                    # A stop landing after the run's own record committed (succeeded, failed)
                    # leaves that record: the run had ended.
                    only_running=True,
                )
        except Exception:  # the database may be what hung; the lease then expires as usual
            logger.warning("sync run %s was stopped and could not be recorded so", run.run_id)

    def _beater(self, run_id: int) -> Callable[[], None]:
        """A heartbeat to call between the reconcile's transactions: renews the lease when a
        third of it has passed (by the injectable clock)."""
        last = [self.ports.now()]
        every = dt.timedelta(seconds=self.lease_seconds / 3)

        def beat() -> None:
            if self.ports.now() - last[0] >= every:
                last[0] = self._heartbeat(run_id)

        return beat

    def _heartbeat(self, run_id: int) -> dt.datetime:
        """Renew the run's lease; returns when. Raises :class:`Conflict` (remedy ``rerun``) when
        another run took this one for dead meanwhile."""
        now = self.ports.now()
        with self.ports.db.write() as uow:
            held = uow.sync.renew_lease(run_id, self.owner, now, self._lease_until(now))
        if not held:
            raise Conflict(
                f"sync run {run_id} lost its lease (taken for dead by another run): stopped",
                remedy="rerun",
                context={"run": run_id},
            )
        return now

    def _skipped(
        self,
        account: str,
        product: str,
        full: bool,
        started: dt.datetime,
        t0: float,
        live: RunLease,
        interrupted: list[RunLease],
    ) -> SyncResult:
        until = live.expires_at.isoformat() if live.expires_at else "?"
        message = (
            f"skipped: run {live.run_id} of {product} for {account} is under way "
            f"(started {live.started_at.isoformat()}, lease held by {live.owner} until {until})"
        )
        summary = SyncSummary(
            account=account,
            product=product,
            outcome="skipped",
            full=full,
            started_at=started,
            seconds=time.perf_counter() - t0,
            message=message,
        )
        found = [{"run": i.run_id, "started_at": i.started_at} for i in interrupted]
        return SyncResult(summary, None, interrupted=found)

    def _after_commit(self, result: SyncResult, account_id: int) -> None:
        """The run's events were written with it; deliver them, then stream its agents to the
        ``agents_written`` listeners (read back by run id: a run may write 100,000)."""
        ports = self.ports
        deliver_pending(ports)
        s = result.summary
        if (
            s.outcome == "succeeded"
            and result.run_id is not None
            and ports.publisher.wants_agents()
        ):
            for batch in self._agents_of_run(account_id, s.product, result.run_id):
                ports.publisher.agents_written(s.account, s.product, batch, s.started_at)

    def _agents_of_run(
        self, account_id: int, product: str, run_id: int
    ) -> Iterator[list[AgentRecord]]:
        last = 0
        while True:
            with read(self.ports) as uow:
                rows = uow.sync.agents_of_run(account_id, product, run_id, last, 1000)
            if not rows:
                return
            last = rows[-1][0]
            yield [AgentRecord(a.email, a.name, a.ext, a.active) for _, a in rows]

    def full_sync(self, account: str, product: str) -> SyncSummary:
        """A forced full sync, for benchmarks and demos: the whole pipeline, no deletion guard."""
        return self.sync(account, product, full=True, force=True).summary

    def due_connectors(self) -> list[Installation]:
        """Enabled connectors whose interval has passed since their last run started (or never
        ran)."""
        now = self.ports.now()
        with read(self.ports) as uow:
            last = uow.sync.last_starts()
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
        """The latest runs, newest first. A ``running`` run whose lease expired shows as
        ``interrupted`` (the next run of its connector records it so)."""
        now = self.ports.now()
        with read(self.ports) as uow:
            acct = uow.accounts.get(account)
            rows = uow.sync.runs(acct.id, product, limit)
        out = []
        for row in rows:
            expires = row.pop("lease_expires_at")
            row.pop("owner")
            row.pop("heartbeat_at")
            row["outcome"] = rules.run_outcome(row["outcome"], expires, now)
            if row["outcome"] == "interrupted" and not row["message"]:
                row["message"] = rules.interrupted_message(row["started_at"])
            row["account"] = account
            out.append(row)
        return out

    def quarantined(self, run_id: int) -> list[dict[str, Any]]:
        with read(self.ports) as uow:
            return uow.sync.quarantined(run_id)

    def agents(self, account: str, product: str) -> list[dict[str, Any]]:
        with read(self.ports) as uow:
            acct = uow.accounts.get(account)
            return uow.sync.agents(acct.id, product)


def _finished(
    run: _Reconcile,
    account: str,
    outcome: str,
    full: bool,
    started: dt.datetime,
    t0: float,
    ctx: RequestStats,
    message: str,
) -> SyncFinished:
    c = run.counts
    return SyncFinished(
        account=account,
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
