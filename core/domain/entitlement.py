"""The entitlement decision of seed 000, pure: may this user use this gated feature now?

:func:`decide` takes a :class:`Snapshot` of one (account, product) — read by storage, cached by the
entitlement service — the instant, the timeline and the adapter's gated features, and answers a
:class:`Decision`. No I/O: the CLI's ``check``, the HTTP API and a sync's ``agent_sync`` gate all
call this one function.

Reasons (``Decision.reason``, a :class:`~.vocabulary.DecisionReason`):

- allowed: ``seated``; ``grace`` (transition phase, no seat: access until ``access_ends``, the
  restriction date); ``pre_enablement`` (Manage Seats not yet enabled in the region: nothing gated);
  ``not_gated`` (the feature does not apply to this product's adapter);
- denied: ``no_seat`` (restricted phases, no seat); ``in_overage`` (no seat, not grandfathered,
  while the account is in overage: seed 000's overage lock, "restricted from adding new users until
  in compliance", in every phase from enablement on); ``user_inactive``; ``no_contract``;
  ``adapter_disabled``; ``uninstalled`` (from the uninstall's effective date, seed 002 "Uninstalling
  the App will take effect at the end of the product's current contracted term", whether or not
  anything ran since).

A :class:`Snapshot` is read *as of* an instant (``Snapshot.as_of``): it holds only what existed then
(seats, users, the contracted quantity, a requested uninstall), so a test clock can replay any past
instant. :meth:`Snapshot.valid_at` says whether it answers for another instant too.

A current snapshot is refreshed from what changed since it was read, not re-read whole (issue 12
item 7: a sync's every batch changes the account): its users are a :class:`Layered` mapping, whose
newer layer holds the changes over a base shared with the snapshots it was refreshed from, and its
``basis`` is what storage needs to find the changes since (opaque here).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from itertools import islice, repeat
from typing import Any, Generic, TypeVar

import attrs

from ..clock import start_of
from ..errors import NotFound
from .timeline import Timeline
from .vocabulary import DecisionReason, Phase

__all__ = ["ALLOWED_REASONS", "DENIED_REASONS", "Decision", "Layered", "Snapshot", "decide"]

ALLOWED_REASONS = tuple(r for r in DecisionReason if r.allowed)
DENIED_REASONS = tuple(r for r in DecisionReason if not r.allowed)


@attrs.frozen(slots=True)
class Decision:
    """An answer of the entitlement check (what ``seatgate --json check`` prints)."""

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
    """What a decision needs about one (account, product), read in one transaction as of
    ``as_of``.

    :param users: email -> (active, seated) of the users that existed at ``as_of``.
    :param grandfathered: emails of the users grandfathered at enablement (seed 000: they keep
        working in overage).
    :param in_overage: the account holds more seats than its contract covers
        (:attr:`~.seats.SeatCount.in_overage`).
    :param uninstall_effective: the day a requested uninstall takes effect, or None.
    :param settled: the latest instant of any row the snapshot depends on (None: no row at all),
        and ``until`` the next instant its content changes without a write (a renewal), or None.
    :param strict_version: the part of ``version`` a server's checks never lag (the changes
        other than a sync's, migration core_0004): read with it.
    :param basis: what storage needs to refresh this snapshot from the changes since it was read
        (None: it cannot, e.g. read as of a past instant); not part of the snapshot's value.
    """

    account: str
    region: str
    version: int  # the contract's entitlement_version, -1 without a contract
    has_contract: bool
    contracted: int
    enabled: bool
    users: Mapping[str, tuple[bool, bool]]  # email -> (active, seated)
    assigned: int
    grandfathered: frozenset[str] = frozenset()
    in_overage: bool = False
    uninstall_effective: dt.date | None = None
    as_of: dt.datetime | None = None
    settled: dt.datetime | None = None
    until: dt.datetime | None = None
    strict_version: int = -1  # the contract's strict_version, -1 without a contract
    basis: Any = attrs.field(default=None, eq=False, repr=False)

    # [lo, hi): the instants this snapshot holds what existed at, computed once (the check is on
    # the entitlement hot path).
    _window: tuple[dt.datetime, dt.datetime] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_window", self._holds())

    def _holds(self) -> tuple[dt.datetime, dt.datetime]:
        if self.as_of is None:
            return _FAR, _FAR  # not read as of an instant: never reused for another
        if self.settled is not None and self.as_of < self.settled:
            return self.as_of, self.as_of + _TICK  # rows stamped later exist: this instant only
        lo = self.settled if self.settled is not None else _NEAR
        hi = self.until if self.until is not None else _FAR
        return (lo, hi) if self.as_of < hi else (self.as_of, self.as_of + _TICK)

    def valid_at(self, at: dt.datetime) -> bool:
        """Whether this snapshot holds what existed at ``at`` as well: the instant it was read
        at, or — when it was read after every row it depends on was written — any instant after
        those rows too, up to the next renewal."""
        lo, hi = self._window
        return lo <= at < hi


K = TypeVar("K")
V = TypeVar("V")
_ABSENT: Any = object()


class Layered(Mapping[K, V], Generic[K, V]):
    """An immutable mapping made of a base dict, a smaller dict of keys set over it and a set of
    the base's keys removed. :meth:`updated` makes a new mapping that shares the base and copies
    only the changes, so a snapshot refreshed after a batch of changed users costs what changed,
    not the account's size; once the changes outgrow a share of the base (``1 / merge_ratio``)
    they are merged into a new base, so a lookup stays two dict probes and the merges cost O(1)
    amortized per change. Neither dict nor the set is ever mutated once shared.

    The work of an update is done by dict and set operations, not a loop per key: a server's
    worker refreshes its snapshot while a sync writes, holding the interpreter while its checks
    wait (issue 15, the p99 during a sync)."""

    __slots__ = ("_base", "_gone", "_len", "_top")

    merge_ratio = 8
    merge_floor = 4096
    merge_slice = 4096  # keys copied per C call in a merge

    def __init__(self, base: Mapping[K, V] | None = None) -> None:
        self._base: dict[K, V] = dict(base) if base is not None else {}
        self._top: dict[K, V] = {}
        self._gone: frozenset[K] = frozenset()  # keys of the base removed; none of them in _top
        self._len = len(self._base)

    @classmethod
    def _of(
        cls, base: dict[K, V], top: dict[K, V], gone: frozenset[K], length: int
    ) -> Layered[K, V]:
        made = cls.__new__(cls)
        made._base, made._top, made._gone, made._len = base, top, gone, length
        return made

    def __getitem__(self, key: K) -> V:
        top = self._top
        if key in top:
            return top[key]
        if key in self._gone:
            raise KeyError(key)
        return self._base[key]

    def get(self, key: K, default: Any = None) -> Any:
        top = self._top
        if top:
            value = top.get(key, _ABSENT)
            if value is not _ABSENT:
                return value
        gone = self._gone
        if gone and key in gone:
            return default
        return self._base.get(key, default)

    def get_many(self, keys: Iterable[K], default: Any = None) -> list[Any]:
        """``[self.get(key, default) for key in keys]``, without a call per key."""
        base_get, top, gone = self._base.get, self._top, self._gone
        if not top and not gone:
            return list(map(base_get, keys, repeat(default)))
        top_get, absent = top.get, _ABSENT
        return [
            value
            if (value := top_get(key, absent)) is not absent
            else (default if key in gone else base_get(key, default))
            for key in keys
        ]

    def __contains__(self, key: object) -> bool:
        return key in self._top or (key in self._base and key not in self._gone)

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[K]:
        top, gone = self._top, self._gone
        for key in self._base:
            if key not in top and key not in gone:
                yield key
        yield from top

    def __repr__(self) -> str:
        return f"Layered({len(self)} items, {len(self._top)} in the newer layer)"

    def updated(self, set_: Iterable[tuple[K, V]] = (), remove: Iterable[K] = ()) -> Layered[K, V]:
        """A new mapping: this one without the keys of ``remove``, then with ``set_``'s pairs."""
        base, length = self._base, self._len
        top = dict(self._top)
        gone = set(self._gone)
        for key in remove:  # a sync's renames: few
            if key in top:
                del top[key]
                length -= 1
                if key in base:
                    gone.add(key)
            elif key in base and key not in gone:
                gone.add(key)
                length -= 1
        new = dict(set_)
        if new:
            fresh = new.keys() - top.keys()  # not set above the base: absent, or the base's
            in_base = list(filter(base.__contains__, fresh))  # (a set & keys walks the base)
            length += (
                len(fresh) - len(in_base) + (sum(map(gone.__contains__, in_base)) if gone else 0)
            )
            if gone:
                gone -= new.keys()
            top.update(new)
        if len(top) + len(gone) > max(self.merge_floor, len(base) // self.merge_ratio):
            # Copied a slice at a time: ``base | top`` is one C call, which holds the interpreter
            # for the whole copy (10 ms for 110,000 keys here) while a server's checks wait for
            # it; between slices another thread may take it (``sys.setswitchinterval``).
            merged: dict[K, V] = {}
            pairs = iter(base.items())
            while len(merged) < len(base):
                merged.update(islice(pairs, self.merge_slice))
            for part in range(0, len(top), self.merge_slice):
                merged.update(islice(top.items(), part, part + self.merge_slice))
            for key in gone:
                del merged[key]
            return type(self)._of(merged, {}, frozenset(), length)
        return type(self)._of(base, top, frozenset(gone), length)


_TICK = dt.timedelta(microseconds=1)
_NEAR = dt.datetime.min.replace(tzinfo=dt.UTC)
_FAR = dt.datetime.max.replace(tzinfo=dt.UTC)


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
    reason: DecisionReason
    if not snap.has_contract:
        reason = DecisionReason.NO_CONTRACT
    elif snap.uninstall_effective is not None and at >= start_of(snap.uninstall_effective):
        reason = DecisionReason.UNINSTALLED
    elif not snap.enabled:
        reason = DecisionReason.ADAPTER_DISABLED
    elif gated is not None and feature not in gated:
        reason = DecisionReason.NOT_GATED
    elif phase == Phase.PRE_ENABLEMENT:
        reason = DecisionReason.PRE_ENABLEMENT
    elif not active:
        reason = DecisionReason.USER_INACTIVE
    elif seated:
        reason = DecisionReason.SEATED
    elif snap.in_overage and email not in snap.grandfathered:
        # Seed 000: "customers in overage ... will be unable to add additional users until they
        # reduce their user count to their contracted seats, or purchase additional seats" — a
        # user added while in overage gets no grace, whatever the phase.
        reason = DecisionReason.IN_OVERAGE
    elif phase == Phase.TRANSITION:
        # Seed 000: during the transition users without a seat keep working, warned of the date.
        reason, ends = DecisionReason.GRACE, phase_at.restrictions_begin
    else:
        reason = DecisionReason.NO_SEAT
    return Decision(
        allowed=reason.allowed,
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
