"""The entitlement check as a service: the hot path (the CTI asks at every login).

``check(account, product, email, feature, at)`` decides with the domain's
:func:`~seatgate.core.domain.entitlement.decide` on an in-process snapshot of the account's seats per
product, refreshed only when the contract's ``entitlement_version`` moved (every seat change, user
change, contract change or adapter enable/disable bumps it). A refresh re-reads the users changed
since the cached snapshot was read and the scalar parts, not the whole account (issue 12 item 7: a
sync's every batch of 250 users bumps the version), and one thread refreshes a snapshot while the
checks that need it wait for that refresh, never answering from the older one. A snapshot is
re-validated against the database at most every ``max_age`` seconds, so another process's change is
seen within that bound; this process's own changes re-validate it at once (a sync's batches
excepted: they are followed within that bound too, and the run's end re-validates), and so do
:meth:`Entitlements.invalidate` (a notification) and :meth:`Entitlements.confirm` (a version fence).

Denied decisions are written to the audit log: by default each in a transaction of its own,
committed before ``check`` returns (write-through; the CLI relies on it). ``audit_batch=N`` buffers
them instead, for bursts of denied checks, and ``audit_async=True`` hands them to a background
writer, so a decision never waits for a write (see :class:`Entitlements`).
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from ..domain.entitlement import Decision, Snapshot, decide
from ..domain.records import FEATURES
from ..domain.vocabulary import normalize_email
from ..errors import BadInput
from .ports import Ports, UnitOfWorkFactory

__all__ = ["Entitlements"]

logger = logging.getLogger("seatgate.entitlement")


class Entitlements:
    """Entitlement checks with a per-(account, product) snapshot cache. Thread-safe.

    Audit of denied decisions (``check(..., audit_denied=True)``):

    - ``audit_batch=1`` (the default), write-through: each denied decision's audit row is
      committed in its own transaction before ``check`` returns. A denied check then costs a
      database commit (a few thousand per second on SQLite).
    - ``audit_batch=N`` (N > 1), batched: rows are buffered in memory and written together, in
      one transaction, when N are pending, when :meth:`flush` is called, at :meth:`close`, and at
      normal interpreter exit or when the instance is garbage-collected (``weakref.finalize``).
      The decision itself is unchanged and returned at once.

      **Durability trade-off**: until its batch is written, a denied decision's audit row exists
      only in this process. Up to N - 1 rows (N if a write fails; they are kept for the next
      one) are lost if the process dies without running exit hooks (SIGKILL, ``os._exit``, a
      crash of the interpreter, the machine going down), and other processes reading the audit
      log see them only once written. A quiet process can hold a few rows for long: long-running
      servers should call :meth:`flush` periodically (and :meth:`close` on shutdown). Rows keep
      the decision's own instant (``at``) whenever they are written.
    - ``audit_async=True``, a background writer (issue 12 item 7): ``check`` appends the row and
      returns; a daemon thread writes whatever is pending, up to ``audit_batch`` rows (at least
      1,000) a transaction, as soon as it can. A write that fails (the database busy behind a
      long writer, or down) keeps its rows, ahead of newer ones, and is retried every
      ``audit_retry`` seconds: rows are never dropped while the process lives. While more than
      a transaction's rows wait, the writer writes again at once (no pause to gather). The
      backlog is bounded (``audit_max_pending`` rows, 100,000 by default): past it a denied
      check waits until the writer has room — bounded memory and no lost row, at the price of a
      wait only when the database has fallen that far behind. :meth:`flush`
      writes what is pending now; :meth:`close`, normal interpreter exit and garbage collection
      flush too. As in batched mode, a process killed outright loses what was not written yet.
    """

    def __init__(
        self,
        ports: Ports,
        *,
        max_age: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
        audit_batch: int = 1,
        audit_async: bool = False,
        audit_retry: float = 1.0,
        audit_max_pending: int = 100_000,
    ) -> None:
        if audit_batch < 1:
            raise BadInput("audit_batch", str(audit_batch), "a whole number >= 1")
        self.ports = ports
        self.db = ports.db
        self.timeline = ports.timeline
        self._products = ports.adapters.products
        self._gated = ports.adapters.gated_features
        self.max_age = max_age
        self._monotonic = monotonic
        # (snapshot, when checked, the stamp it was read under: see _stamp). An entry no longer
        # trusted stays, as the base its refresh re-reads only the changes since.
        self._cache: dict[tuple[str, str], tuple[Snapshot, float, tuple[int, int, int]]] = {}
        # Invalidations from outside (another process's commit, told by a notification): per
        # account, and of everything. A snapshot read before an invalidation and stored after it
        # carries the older count, so it is not trusted.
        self._invalidated: dict[str, int] = {}
        self._invalidated_all = 0
        # Notes of a sync's writes from other processes (:meth:`lagged`, monotonic seconds): the
        # latest per account, and per cached snapshot the first at or after its read started
        # (absent: none since) — how far behind it is (:meth:`behind`). O(1) per snapshot.
        self._last_note: dict[str, float] = {}
        self._behind_since: dict[tuple[str, str], float] = {}
        self._keys_of: dict[str, set[tuple[str, str]]] = {}  # the cached snapshots per account
        # The least version a snapshot must be of, per (account, product): a fence read it
        # (:meth:`confirm`), so an older snapshot is stale.
        self._required: dict[tuple[str, str], int] = {}
        # When each cached snapshot was last read or found current (monotonic seconds): how far
        # behind a sync's writes it may be (:meth:`confirm`'s ``lag``).
        self._read_at: dict[tuple[str, str], float] = {}
        # One refresh at a time per (account, product): the checks that need it wait for it.
        self._refreshing: dict[tuple[str, str], threading.Lock] = {}
        self._lock = threading.Lock()
        self.audit_batch = audit_batch
        self._pending: list[dict[str, Any]] = []  # never rebound: the finalizer holds it
        self._audit_lock = threading.Lock()  # held while a batch is taken and written
        self._writer: _AuditWriter | None = None
        if audit_async:
            writer = _AuditWriter(
                self.db,
                self._pending,
                max(audit_batch, 1000),
                audit_retry,
                max_pending=max(audit_max_pending, 1),
            )
            self._writer = writer
            # At exit: an atexit hook of its own, which runs before weakref's (whose walk of its
            # registry a writer still running could disturb); when collected: a finalizer.
            atexit.register(writer.stop)
            weakref.finalize(self, writer.discard)
        elif audit_batch > 1:
            # Runs at interpreter exit, or when this instance is collected; holds no reference to
            # the instance itself.
            weakref.finalize(self, _flush_at_exit, self.db, self._pending, self._audit_lock)

    def invalidate(self, account: str | None = None) -> None:
        """Stop trusting the snapshots of ``account`` (None: of every account): something they
        depend on changed in another process. Each is re-validated (and refreshed if its version
        moved) by the next check that needs it."""
        with self._lock:
            if account is None:
                self._invalidated_all += 1
            else:
                self._invalidated[account] = self._invalidated.get(account, 0) + 1

    def lagged(self, account: str) -> None:
        """A sync in another process committed writes to ``account`` that moved its entitlement
        version alone (a notification: ``storage.notifications``, payload ``l:``). Unlike
        :meth:`invalidate`, the cached snapshots stay trusted: a server answers from one while it
        is behind by less than its sync lag (:meth:`behind`) and refreshes it meanwhile."""
        now = self._monotonic()
        with self._lock:
            self._last_note[account] = now
            for key in self._keys_of.get(account, ()):
                self._behind_since.setdefault(key, now)

    def behind(self, account: str, product: str) -> float | None:
        """How far the cached snapshot of (account, product) is behind a sync's writes: seconds
        since the first of them told (:meth:`lagged`) at or after its read (or its last finding
        current) started; None if none was, or none is cached.

        Counted from the first note, not from the read: a snapshot read in a quiet spell long
        before a sync starts is as far behind as the sync's first write, so the checks do not
        wait for a refresh at its first batch. A write therefore shows in the checks at most the
        sync lag after its notification arrives."""
        since = self._behind_since.get((account, product))
        return None if since is None else self._monotonic() - since

    def _mark_read(self, key: tuple[str, str], started: float) -> None:
        """The snapshot of ``key`` was read (or found current) by a read that started at
        ``started`` (monotonic seconds): it is behind no note told before then. Called with
        ``self._lock`` held."""
        self._read_at[key] = started
        self._keys_of.setdefault(key[0], set()).add(key)
        if self._last_note.get(key[0], float("-inf")) >= started:
            # Told while it read (or at its very start): perhaps of a commit it did not see, and
            # which note came first is not kept: behind from the read's start.
            self._behind_since[key] = started
        else:
            self._behind_since.pop(key, None)

    def _stamp(self, account: str) -> tuple[int, int, int]:
        """What a cached snapshot of ``account`` must have been read under to be trusted: this
        process's write generation and the invalidations so far."""
        return (self.db.generation, self._invalidated_all, self._invalidated.get(account, 0))

    def _trusted(
        self, key: tuple[str, str], at: dt.datetime
    ) -> tuple[Snapshot | None, Snapshot | None]:
        """(the cached snapshot if it answers for ``at`` without a read, the cached snapshot)."""
        cached = self._cache.get(key)
        if cached is None:
            return None, None
        snap, checked, seen = cached
        if (
            self._monotonic() - checked < self.max_age
            and seen == self._stamp(key[0])
            and snap.version >= self._required.get(key, -1)
            and snap.valid_at(at)
        ):
            return snap, snap
        return None, snap

    def is_fresh(self, account: str, product: str) -> bool:
        """Whether :meth:`check` would answer (account, product) from the cache without reading
        the database for its snapshot: a server answers such checks on its event loop and sends
        the others to a thread."""
        return self._trusted((account, product), self.ports.now())[0] is not None

    def confirm(
        self,
        account: str,
        product: str,
        version: int,
        strict: int | None = None,
        lag: float = 0.0,
    ) -> bool:
        """Whether the cached snapshot of (account, product) is of ``version`` (or newer), the
        contract's entitlement version just read by the caller; if so it is trusted anew (for
        ``max_age`` seconds), so that :meth:`check` answers it without reading. If not, the next
        check refreshes it to at least that version. A server that reads the version per batch of
        checks (``storage.fence``) calls this before each check.

        ``strict`` (the contract's strict version, read with ``version``) and ``lag`` (seconds):
        a snapshot of that strict version whose ``version`` is older — newer writes are a sync's
        alone — still answers while it was read less than ``lag`` seconds ago (the server's sync
        lag; :meth:`lagging` says how old it is, for a refresh in the background)."""
        key = (account, product)
        with self._lock:
            cached = self._cache.get(key)
            if (
                cached is None
                or not cached[0].valid_at(self.ports.now())
                or (
                    cached[0].version < version
                    and (
                        strict is None or cached[0].strict_version < strict or self._age(key) >= lag
                    )
                )
            ):
                if version > self._required.get(key, -1):
                    self._required[key] = version
                return False
            now = self._monotonic()
            if cached[0].version >= version:
                # Found current by a read that started after the caller's check arrived: as good
                # as read now for the sync lag (a sparse sync's first write after a quiet spell
                # need not make the checks wait).
                self._mark_read(key, now)
            self._cache[key] = (cached[0], now, self._stamp(account))
            return True

    def lagging(self, account: str, product: str, version: int) -> float | None:
        """Seconds since the cached snapshot of (account, product) was read, if it is older than
        ``version``; None if it is of that version (or newer), or none is cached."""
        key = (account, product)
        cached = self._cache.get(key)
        if cached is None or cached[0].version >= version:
            return None
        return self._age(key)

    def _age(self, key: tuple[str, str]) -> float:
        """Seconds since the cached snapshot of ``key`` was read or found current."""
        return self._monotonic() - self._read_at.get(key, float("-inf"))

    def snapshot(
        self, account: str, product: str, at: dt.datetime, *, reread: bool = False
    ) -> Snapshot:
        """The snapshot of (account, product) as of ``at``: cached, and reused for another
        instant only when it holds what existed then too (:meth:`Snapshot.valid_at`). Trusted for
        ``max_age`` seconds, unless this process wrote since (its own changes show at once),
        another process's change was told (:meth:`invalidate`, :meth:`confirm`); then the
        version is read, and if it moved the snapshot is refreshed from the cached one.
        ``reread``: read the version even if the cached snapshot is trusted (a server catching up
        with a sync's writes, :meth:`lagging`)."""
        key = (account, product)
        hit, _ = self._trusted(key, at)
        if hit is not None and not reread:
            return hit
        with self._lock:
            gate = self._refreshing.setdefault(key, threading.Lock())
        with gate:
            # Another thread may have refreshed it while this one waited: read after this check
            # arrived, so it is as fresh as one read now.
            hit, base = self._trusted(key, at)
            if hit is not None and not reread:
                return hit
            now, stamp = self._monotonic(), self._stamp(account)  # taken before the read
            with self.db.read() as uow:
                if (
                    base is not None
                    and base.valid_at(at)
                    and uow.snapshots.version(account, product) == base.version
                    and base.version >= self._required.get(key, -1)
                ):
                    snap = base
                else:
                    snap = uow.snapshots.load(account, product, at, previous=base)
            with self._lock:
                self._cache[key] = (snap, now, stamp)
                self._mark_read(key, now)
            return snap

    def validate(self, product: str, feature: str) -> None:
        """Raise :class:`BadInput` for a feature or product a check does not know: before any
        snapshot is read or cached for it (a name made up per request must cost nothing)."""
        if feature not in FEATURES:
            raise BadInput("feature", feature, FEATURES)
        if product not in self._products():
            raise BadInput("product", product, sorted(self._products()))

    def check(
        self,
        account: str,
        product: str,
        email: str,
        feature: str,
        at: dt.datetime,
        *,
        audit_denied: bool = True,
    ) -> Decision:
        self.validate(product, feature)
        key_email = email.strip().lower()
        snap = self.snapshot(account, product, at)
        if key_email not in snap.users:
            key_email = normalize_email(email)  # a malformed address gets the format error
        decision = decide(
            snap, product, key_email, feature, at, self.timeline, self._gated(product)
        )
        if not decision.allowed and audit_denied:
            entry: dict[str, Any] = {
                "at": at,
                "action": "check.denied",
                "outcome": decision.reason,
                "account": account,
                "actor": key_email,
                "detail": {
                    "product": product,
                    "feature": feature,
                    "phase": decision.phase,
                    "policy_revision": decision.policy_revision,
                },
            }
            if self._writer is not None:
                self._writer.add(entry)
            elif self.audit_batch == 1:
                with self.db.write(audit_only=True) as uow:
                    uow.audit.record(**entry)
            else:
                with self._audit_lock:
                    self._pending.append(entry)
                    if len(self._pending) >= self.audit_batch:
                        _write_rows(self.db, self._pending)
        return decision

    @property
    def pending_audit(self) -> int:
        """Denied decisions whose audit rows are not written yet, those of a write in progress
        included (always 0 in write-through)."""
        return len(self._pending) + (self._writer.in_flight if self._writer else 0)

    def flush(self) -> int:
        """Write every pending audit row now, in one transaction; returns how many. On a failure
        the rows stay pending (for the next flush) and the error is raised."""
        if self._writer is not None:
            return self._writer.flush()
        with self._audit_lock:
            return _write_rows(self.db, self._pending)

    def close(self) -> None:
        """Write every pending audit row (what a server does on shutdown). The instance stays
        usable: rows buffered later are written by the next flush, close or exit."""
        self.flush()


def _write_rows(db: UnitOfWorkFactory, pending: list[dict[str, Any]]) -> int:
    """Write ``pending`` audit rows in one transaction and empty it; on a failure the rows stay
    in ``pending`` (ahead of any newer ones) and the error is raised. The caller holds the
    instance's audit lock: one batch at a time, rows in decision order."""
    rows = pending[:]
    if not rows:
        return 0
    del pending[:]
    try:
        with db.write(audit_only=True) as uow:
            uow.audit.record_many(rows)
    except BaseException:
        pending[:0] = rows
        raise
    return len(rows)


class _AuditWriter:
    """The background writer of denied-check audit rows. Holds no reference to its
    :class:`Entitlements`, so the instance's finalizer can stop it."""

    def __init__(
        self,
        db: UnitOfWorkFactory,
        pending: list[dict[str, Any]],
        limit: int,
        retry: float,
        linger: float = 0.05,
        *,
        max_pending: int = 100_000,
    ) -> None:
        self.db, self.pending, self.limit, self.retry = db, pending, limit, retry
        self.linger = linger
        self.max_pending = max_pending
        self.in_flight = 0  # rows taken from `pending` by a write not yet committed
        self.cond = threading.Condition()  # guards `pending`; a check holds it to append only
        self.write_lock = threading.Lock()  # one write at a time: rows stay in decision order
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="seatgate-audit-writer", daemon=True)
        self.thread.start()

    def add(self, entry: dict[str, Any]) -> None:
        with self.cond:
            # Backpressure: checks answered from memory can deny far faster than a database
            # behind a sync's writes takes rows (measured: 19 GB of pending rows in 9 minutes).
            while (
                len(self.pending) + self.in_flight >= self.max_pending
                and not self.stopping.is_set()
            ):
                self.cond.wait(self.retry)
            self.pending.append(entry)
            self.cond.notify_all()

    def _write(self, limit: int | None) -> int:
        with self.write_lock:
            with self.cond:
                rows = self.pending[:limit] if limit else self.pending[:]
                del self.pending[: len(rows)]
                self.in_flight = len(rows)  # still counted against the bound until committed
            if not rows:
                return 0
            try:
                with self.db.write(audit_only=True) as uow:
                    uow.audit.record_many(rows)
            except BaseException:
                with self.cond:
                    self.pending[:0] = rows
                    self.in_flight = 0
                raise
            with self.cond:
                self.in_flight = 0
                self.cond.notify_all()  # room for checks held back by the bound
            return len(rows)

    def flush(self) -> int:
        written = 0
        while True:
            n = self._write(None)
            written += n
            if not n:
                return written

    def _run(self) -> None:
        while True:
            with self.cond:
                while not self.pending and not self.stopping.is_set():
                    self.cond.wait()
                if self.stopping.is_set():
                    return  # stop() writes what is left
            # Let a burst gather: a few transactions a second, not one per denied check, keep
            # the write lock free for everyone else (a sync's batches, an admin's assignment).
            # A backlog of a transaction's rows or more is written at once, without the pause.
            if len(self.pending) < self.limit:
                self.stopping.wait(self.linger)
            try:
                self._write(self.limit)
            except Exception:
                logger.warning(
                    "could not write denied-check audit rows (%d pending); retrying in %gs",
                    len(self.pending),
                    self.retry,
                    exc_info=True,
                )
                self.stopping.wait(self.retry)

    def discard(self) -> None:
        """The instance was collected: stop, and leave nothing to do at exit."""
        atexit.unregister(self.stop)
        self.stop()

    def stop(self) -> None:
        """Stop the thread and write what is pending (at exit, or when the instance goes)."""
        self.stopping.set()
        with self.cond:
            self.cond.notify_all()
        self.thread.join(timeout=30)
        try:
            written = self.flush()
        except Exception:
            logger.exception("could not write %d denied-check audit row(s)", len(self.pending))
        else:
            if written:
                logger.debug("wrote %d denied-check audit row(s) at exit", written)


def _flush_at_exit(
    db: UnitOfWorkFactory, pending: list[dict[str, Any]], lock: threading.Lock
) -> None:
    """A batching instance's finalizer: at exit (or collection) nothing can be retried, so a
    failure is logged with the number of rows it lost."""
    with lock:
        try:
            written = _write_rows(db, pending)
        except Exception:
            logger.exception("could not write %d denied-check audit row(s)", len(pending))
        else:
            if written:
                logger.debug("wrote %d denied-check audit row(s) at exit", written)
