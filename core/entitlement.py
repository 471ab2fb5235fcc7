"""The entitlement check: may this user use this gated feature of this product, now?

``check(account, product, email, feature, at)`` is the hot path (the CTI asks at every login), so
decisions are made from an in-process snapshot of the account's seats per product, rebuilt only when
the contract's ``entitlement_version`` moved (every seat change, user change, contract change or
adapter enable/disable bumps it). A snapshot is re-validated against the database at most every
``max_age`` seconds, so another process's change is seen within that bound; this process's own
changes invalidate it at once.

Reasons (``Decision.reason``):

- allowed: ``seated``; ``grace`` (transition phase, no seat: access until ``access_ends``, the
  restriction date); ``pre_enablement`` (Manage Seats not yet enabled in the region: nothing gated);
  ``not_gated`` (the feature does not apply to this product's adapter);
- denied: ``no_seat`` (restricted phases, no seat); ``user_inactive``; ``no_contract``;
  ``adapter_disabled``.

Denied decisions are written to the audit log: by default each in a transaction of its own,
committed before ``check`` returns (write-through; the CLI relies on it). ``audit_batch=N`` buffers
them instead, for bursts of denied checks (see :class:`Entitlements`).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import sqlalchemy as sa

from . import audit
from .domain import normalize_email
from .errors import BadInput, NotFound
from .policy import Timeline
from .records import FEATURES
from .storage.db import Database
from .storage.tables import accounts, audit_log, contracts, installations, integration_users, seats

logger = logging.getLogger("seatgate.entitlement")

ALLOWED_REASONS = ("seated", "grace", "pre_enablement", "not_gated")
DENIED_REASONS = ("no_seat", "user_inactive", "no_contract", "adapter_disabled")


@attrs.frozen(slots=True)
class Decision:
    allowed: bool
    reason: str
    phase: str
    policy_revision: str | None
    assigned: int
    contracted: int
    access_ends: dt.date | None
    account: str
    product: str
    email: str
    feature: str

    def as_dict(self) -> dict[str, object]:
        return {
            "allowed": self.allowed,
            "reason": self.reason,
            "phase": self.phase,
            "policy_revision": self.policy_revision,
            "assigned": self.assigned,
            "contracted": self.contracted,
            "access_ends": self.access_ends.isoformat() if self.access_ends else None,
            "account": self.account,
            "product": self.product,
            "email": self.email,
            "feature": self.feature,
        }


@attrs.frozen(slots=True)
class Snapshot:
    """What a decision needs about one (account, product), read in one transaction."""

    account: str
    region: str
    version: int  # the contract's entitlement_version, -1 without a contract
    has_contract: bool
    contracted: int
    enabled: bool
    users: Mapping[str, tuple[bool, bool]]  # email -> (active, seated)
    assigned: int


def load_snapshot(conn: sa.Connection, account: str, product: str) -> Snapshot:
    acct = conn.execute(
        sa.select(accounts.c.id, accounts.c.region).where(accounts.c.name == account)
    ).first()
    if acct is None:
        raise NotFound("account", account, "create it with `seatgate account create`")
    contract = conn.execute(
        sa.select(contracts.c.quantity, contracts.c.entitlement_version).where(
            contracts.c.account_id == acct.id, contracts.c.product == product
        )
    ).first()
    enabled = conn.execute(
        sa.select(installations.c.enabled).where(
            installations.c.account_id == acct.id, installations.c.product == product
        )
    ).scalar()
    seated = sa.exists().where(
        seats.c.account_id == acct.id,
        seats.c.product == product,
        seats.c.user_id == integration_users.c.id,
    )
    rows = conn.execute(
        sa.select(
            integration_users.c.email, integration_users.c.active, seated.label("seated")
        ).where(integration_users.c.account_id == acct.id)
    )
    users = {r.email: (bool(r.active), bool(r.seated)) for r in rows}
    return Snapshot(
        account=account,
        region=acct.region,
        version=-1 if contract is None else contract.entitlement_version,
        has_contract=contract is not None,
        contracted=0 if contract is None else contract.quantity,
        enabled=enabled is None or bool(enabled),  # no installation row: nothing disabled it
        users=users,
        assigned=sum(1 for _, s in users.values() if s),
    )


def current_version(conn: sa.Connection, account: str, product: str) -> int:
    version = conn.execute(
        sa.select(contracts.c.entitlement_version)
        .join(accounts, accounts.c.id == contracts.c.account_id)
        .where(accounts.c.name == account, contracts.c.product == product)
    ).scalar()
    return -1 if version is None else int(version)


def decide(
    snap: Snapshot,
    product: str,
    email: str,
    feature: str,
    at: dt.datetime,
    timeline: Timeline,
    gated: frozenset[str] | None,
) -> Decision:
    """The rule, pure: no I/O. ``gated`` is the adapter's declared features (None: all gated)."""
    user = snap.users.get(email)
    if user is None:
        raise NotFound(
            "user", email, f"no integration user with that email in account {snap.account!r}"
        )
    active, seated = user
    phase_at = timeline.phase_at(snap.region, at)
    phase = phase_at.phase
    ends: dt.date | None = None
    if not snap.has_contract:
        allowed, reason = False, "no_contract"
    elif not snap.enabled:
        allowed, reason = False, "adapter_disabled"
    elif gated is not None and feature not in gated:
        allowed, reason = True, "not_gated"
    elif phase == "pre_enablement":
        allowed, reason = True, "pre_enablement"
    elif not active:
        allowed, reason = False, "user_inactive"
    elif seated:
        allowed, reason = True, "seated"
    elif phase == "transition":
        # Seed 000: during the transition users without a seat keep working, warned of the date.
        allowed, reason, ends = True, "grace", phase_at.restrictions_begin
    else:
        allowed, reason = False, "no_seat"
    return Decision(
        allowed=allowed,
        reason=reason,
        phase=phase,
        policy_revision=phase_at.revision_id,
        assigned=snap.assigned,
        contracted=snap.contracted,
        access_ends=ends,
        account=snap.account,
        product=product,
        email=email,
        feature=feature,
    )


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
    """

    def __init__(
        self,
        db: Database,
        timeline: Timeline,
        products: Callable[[], frozenset[str]],
        gated_features: Callable[[str], frozenset[str] | None],
        *,
        max_age: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
        audit_batch: int = 1,
    ) -> None:
        if audit_batch < 1:
            raise BadInput("audit_batch", str(audit_batch), "a whole number >= 1")
        self.db = db
        self.timeline = timeline
        self._products = products
        self._gated = gated_features
        self.max_age = max_age
        self._monotonic = monotonic
        self._cache: dict[tuple[str, str], tuple[Snapshot, float]] = {}
        self._lock = threading.Lock()
        self.audit_batch = audit_batch
        self._pending: list[dict[str, Any]] = []  # never rebound: the finalizer holds it
        self._audit_lock = threading.Lock()  # held while a batch is taken and written
        if audit_batch > 1:
            # Runs at interpreter exit, or when this instance is collected; holds no reference to
            # the instance itself.
            weakref.finalize(self, _flush_at_exit, db, self._pending, self._audit_lock)

    def invalidate(self, account: str | None = None) -> None:
        with self._lock:
            if account is None:
                self._cache.clear()
            else:
                for key in [k for k in self._cache if k[0] == account]:
                    del self._cache[key]

    def snapshot(self, account: str, product: str) -> Snapshot:
        key = (account, product)
        now = self._monotonic()
        cached = self._cache.get(key)
        if cached is not None:
            snap, checked = cached
            if now - checked < self.max_age:
                return snap
        with self.db.read() as conn:
            # A cached snapshot whose version still holds is kept; otherwise it is loaded anew in
            # the same read transaction.
            if cached is None or current_version(conn, account, product) != cached[0].version:
                snap = load_snapshot(conn, account, product)
        self._cache[key] = (snap, now)
        return snap

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
        if feature not in FEATURES:
            raise BadInput("feature", feature, FEATURES)
        if product not in self._products():
            raise BadInput("product", product, sorted(self._products()))
        key_email = email.strip().lower()
        snap = self.snapshot(account, product)
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
            if self.audit_batch == 1:
                with self.db.write() as conn:
                    audit.record(conn, **entry)
            else:
                with self._audit_lock:
                    self._pending.append(entry)
                    if len(self._pending) >= self.audit_batch:
                        _write_rows(self.db, self._pending)
        return decision

    @property
    def pending_audit(self) -> int:
        """Denied decisions whose audit rows are not written yet (always 0 in write-through)."""
        return len(self._pending)

    def flush(self) -> int:
        """Write every pending audit row now, in one transaction; returns how many. On a failure
        the rows stay pending (for the next flush) and the error is raised."""
        with self._audit_lock:
            return _write_rows(self.db, self._pending)

    def close(self) -> None:
        """Write every pending audit row (what a server does on shutdown). The instance stays
        usable: rows buffered later are written by the next flush, close or exit."""
        self.flush()


def _write_rows(db: Database, pending: list[dict[str, Any]]) -> int:
    """Write ``pending`` audit rows in one transaction and empty it; on a failure the rows stay
    in ``pending`` (ahead of any newer ones) and the error is raised. The caller holds the
    instance's audit lock: one batch at a time, rows in decision order."""
    rows = pending[:]
    if not rows:
        return 0
    del pending[:]
    try:
        with db.write() as conn:
            conn.execute(audit_log.insert(), rows)
    except BaseException:
        pending[:0] = rows
        raise
    return len(rows)


def _flush_at_exit(db: Database, pending: list[dict[str, Any]], lock: threading.Lock) -> None:
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
