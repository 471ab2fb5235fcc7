"""Entering and leaving overage (seed 000), as events: decided where seats or the contracted
quantity change, in the same transaction.

Seed 000: an account whose users exceed its contracted seats is *in overage* — "unable to add
additional users until they reduce their user count to their contracted seats, or purchase
additional seats". :attr:`SeatCount.in_overage <seatgate.core.domain.seats.SeatCount.in_overage>`
is the one rule (hard-cap contracts only); this module records :class:`OverageEntered` or
:class:`OverageLeft` when a write flips it. A renewal whose adjusted quantity takes effect later
changes the count by the calendar alone, with no write to decide it: the next write that looks
records it.
"""

from __future__ import annotations

import datetime as dt

from ..domain.events import OverageEntered, OverageLeft
from ..domain.seats import SeatCount
from .ports import UnitOfWork

__all__ = ["record_overage_change"]


def record_overage_change(
    uow: UnitOfWork,
    account: str,
    product: str,
    before: SeatCount,
    after: SeatCount,
    at: dt.datetime,
    actor: str | None,
    cause: str,
) -> None:
    """Record ``overage.entered`` or ``overage.left`` in ``uow`` when ``before`` and ``after``
    disagree on :attr:`~seatgate.core.domain.seats.SeatCount.in_overage`.

    :param cause: what changed: ``grandfather``, ``unassign``, ``quantity`` (seats bought or a
        quantity set by hand).
    """
    if before.in_overage == after.in_overage:
        return
    kind = OverageEntered if after.in_overage else OverageLeft
    uow.record(
        kind(
            account=account,
            product=product,
            at=at,
            contracted=after.contracted,
            assigned=after.assigned,
            actor=actor or "system",
            cause=cause,
        )
    )
