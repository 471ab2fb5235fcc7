"""Manage Seats (seed 000), pure: seat counts, the overage rule, and the plan of an assignment.

- **hard cap** — CRM integrations: an assignment that would take assigned seats above contracted
  seats is refused (``capacity_reached``).
- **overage** — an account whose integration users already exceed its contracted seats keeps them
  and is *in overage*: "unable to add additional users until they reduce their user count to their
  contracted seats, or purchase additional seats" — by an admin, by auto install, or as a new
  agent in a sync (``in_overage``). :func:`seats_above_contract` is the one count of it, which the
  seat lock, the sync gate and billing all use.
- **auto_expand** — marketplace apps (seed 002): users may be added above the contracted quantity;
  the extra quantity is billed under the contract.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping, Sequence

import attrs

from .vocabulary import RefusalReason, SeatMode

__all__ = [
    "AssignmentPlan",
    "LedgerRow",
    "SeatCount",
    "held_counts",
    "plan_assignment",
    "seats_above_contract",
    "seats_held",
]

# One row of the append-only seat ledger, in write order: (instant, user id, action), the action
# being ``assign``, ``grandfather`` or ``unassign``.
LedgerRow = tuple[dt.datetime, int, str]

RELEASE = "unassign"


def seats_held(rows: Iterable[LedgerRow], at: dt.datetime) -> set[int]:
    """The users holding a seat as of ``at``: what existed at ``at`` is what the writes stamped on
    or before it made, applied in write order (a test clock may write behind a later instant; the
    seats table is the state after every write). ``rows`` in write order."""
    last: dict[int, str] = {}
    for when, user, action in rows:
        if when <= at:
            last[user] = action
    return {user for user, action in last.items() if action != RELEASE}


def held_counts(rows: Sequence[LedgerRow]) -> list[tuple[dt.datetime, int]]:
    """``(instant, seats held right after)`` of each ledger row, in time order (then write
    order): the last count at an instant is what :func:`seats_held` gives then, and the counts
    before it are the seats held along the way (seed 002: removing users does not lower the bill
    of the term, so a seat held for a moment counts toward its peak). ``rows`` in write order."""
    order = sorted(range(len(rows)), key=lambda i: rows[i][0])
    best: dict[int, int] = {}  # user -> index (write order) of the row in force
    held = 0
    out: list[tuple[dt.datetime, int]] = []
    for i in order:
        when, user, action = rows[i]
        prior = best.get(user)
        if prior is None or prior < i:  # a row written later than the one in force replaces it
            was = prior is not None and rows[prior][2] != RELEASE
            held += int(action != RELEASE) - int(was)
            best[user] = i
        out.append((when, held))
    return out


def seats_above_contract(contracted: int, held: int) -> int:
    """Seats held above the contracted quantity: the overage of a hard-cap contract (seed 000),
    the additional seats of an auto_expand one (seed 002)."""
    return max(0, held - contracted)


@attrs.frozen
class SeatCount:
    """Contracted and assigned seats of one contract, and its seat mode."""

    contracted: int
    assigned: int
    mode: str

    @property
    def in_overage(self) -> bool:
        """Seed 000: more users hold seats than the contract covers (only hard-cap accounts; an
        auto_expand account above its quantity is simply billed for the extra)."""
        return (
            self.mode == SeatMode.HARD_CAP
            and seats_above_contract(self.contracted, self.assigned) > 0
        )

    def refusal_for_one_more(self) -> RefusalReason | None:
        """Why one more seat cannot be assigned now, or None if it can."""
        if self.mode == SeatMode.AUTO_EXPAND:
            return None
        if self.in_overage:
            return RefusalReason.IN_OVERAGE
        if self.assigned >= self.contracted:
            return RefusalReason.CAPACITY_REACHED
        return None

    def room_for(self, more: int) -> bool:
        """Whether ``more`` seats can be assigned one after another with no refusal, whoever gets
        them and in whatever order: the last of them can (:meth:`refusal_for_one_more` with the
        others held). A refusal only comes as seats are added (capacity reached, then overage),
        never goes as they are, so the last seat is the one to ask about. ``auto_expand`` always
        has room; ``hard_cap`` has it while ``assigned + more <= contracted``."""
        if more <= 0:
            return True
        last = SeatCount(self.contracted, self.assigned + more - 1, self.mode)
        return last.refusal_for_one_more() is None


@attrs.frozen
class AssignmentPlan:
    """What assigning seats to ``wanted`` users does, decided before anything is written.

    :param already: users who hold a seat already (a rerun is a no-op, not a refusal).
    :param new: ``(user id, email, seats held right after)`` of each seat to write, in order.
    :param refused: ``(email, reason)`` of each user refused.
    :param assigned: seats held after the assignment.
    """

    already: list[str]
    new: list[tuple[int, str, int]]
    refused: list[tuple[str, RefusalReason]]
    assigned: int


def plan_assignment(
    wanted: Sequence[str],
    users: Mapping[str, tuple[int, bool]],
    held: Collection[int],
    count: SeatCount,
) -> AssignmentPlan:
    """Assign seats to ``wanted`` (normalised emails, in order) until the cap refuses.

    :param users: email -> (user id, active) of the account's users among ``wanted``.
    :param held: the ids of those users who already hold a seat of the product.
    :param count: the contract's seats before the assignment.
    """
    assigned = count.assigned
    # The refusal depends on (mode, assigned, contracted) only, and assigned moves only up here:
    # below capacity it stays None, so it is asked again only once capacity is reached.
    why = count.refusal_for_one_more()
    already: list[str] = []
    new: list[tuple[int, str, int]] = []
    refused: list[tuple[str, RefusalReason]] = []
    for email in wanted:
        user = users.get(email)
        if user is None:
            refused.append((email, RefusalReason.UNKNOWN_USER))
            continue
        uid, active = user
        if uid in held:
            already.append(email)
            continue
        if not active:
            refused.append((email, RefusalReason.INACTIVE_USER))
            continue
        if why:
            refused.append((email, why))
            continue
        assigned += 1
        new.append((uid, email, assigned))
        if assigned >= count.contracted:
            why = SeatCount(count.contracted, assigned, count.mode).refusal_for_one_more()
    return AssignmentPlan(already, new, refused, assigned)
