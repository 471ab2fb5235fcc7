"""Seat slots as bands: what billing holds, independent of the number of seats.

Billing (:func:`~seatgate.core.domain.billing.owed`) lays out *slots* — slot ``n`` of a charge is
billed over the days it is held. Slots are never held one by one: a stretch of days holds slots
``1..q`` of a charge at once (the contracted quantity, a purchase, the users above the contract).
So slots are kept as *bands*: ``(lo, hi, intervals)`` — every slot from ``lo`` to ``hi``
(inclusive) is held over the same half-open day ``intervals``. A 1,000,000-seat contract is one
band, not a million entries: the cost of a quote, a preview or a billing run grows with the
number of events (purchases, activations, plan changes), never with the seat count (tester
report item 1).

:class:`SlotBands` reads like the per-slot mapping it replaces (``slot -> intervals``), so a
test may still ask for slot 7; the billing code itself only walks :attr:`SlotBands.bands`.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TypeVar, final

__all__ = ["Band", "Interval", "Rect", "SlotBands", "normalize", "sweep"]

Interval = tuple[dt.date, dt.date]
Band = tuple[int, int, list[Interval]]  # slots lo..hi (inclusive), each held over these days
Rect = tuple[int, int, Interval]  # slots lo..hi held over one span of days

T = TypeVar("T")


def normalize(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-empty, merged intervals (overlapping or touching ones become one)."""
    out: list[Interval] = []
    for s, e in sorted(i for i in intervals if i[0] < i[1]):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(e, out[-1][1]))
        else:
            out.append((s, e))
    return out


def sweep(
    sources: Sequence[Sequence[tuple[int, int, T]]],
) -> Iterator[tuple[int, int, list[list[T]]]]:
    """The elementary slot bands of several sources of ``(lo, hi, payload)`` items: each
    ``(lo, hi, per_source)`` is a maximal run of slots that the same items cover, with the
    payloads covering it from each source (in the order given). Slots no item covers are
    skipped. Cost: O(items × bands), whatever ``hi - lo``."""
    cuts: set[int] = set()
    for items in sources:
        for lo, hi, _ in items:
            if lo <= hi:
                cuts.add(lo)
                cuts.add(hi + 1)
    edges = sorted(cuts)
    for lo, nxt in itertools.pairwise(edges):
        hi = nxt - 1
        # Every item starts and ends on a cut, so it covers a band wholly or not at all.
        per_source = [[p for a, b, p in items if a <= lo and hi <= b] for items in sources]
        if any(per_source):
            yield lo, hi, per_source


@final
class SlotBands(Mapping[int, list[Interval]]):
    """The slots of one charge: disjoint bands in slot order, adjacent bands differing in their
    days. Reads as ``slot -> intervals`` (a slot held nowhere is absent)."""

    __slots__ = ("bands",)

    def __init__(self, bands: Sequence[Band]) -> None:
        self.bands: tuple[Band, ...] = tuple(bands)

    @classmethod
    def merged(cls, bands: Iterable[Band]) -> SlotBands:
        """Bands in slot order, empty ones dropped, adjacent ones with the same days joined."""
        out: list[Band] = []
        for lo, hi, intervals in bands:
            if not intervals:
                continue
            if out and out[-1][1] + 1 == lo and out[-1][2] == intervals:
                out[-1] = (out[-1][0], hi, intervals)
            else:
                out.append((lo, hi, intervals))
        return cls(out)

    @classmethod
    def of(cls, rects: Sequence[Rect]) -> SlotBands:
        """The bands of slot rectangles (``lo..hi`` held over a span each)."""
        return cls.merged((lo, hi, normalize(spans)) for lo, hi, (spans,) in sweep([rects]))

    @classmethod
    def combine(
        cls,
        sources: Sequence[Sequence[tuple[int, int, T]]],
        days: Callable[[list[list[T]]], list[Interval]],
    ) -> SlotBands:
        """The bands whose days are ``days(payloads per source)`` of each elementary band."""
        return cls.merged((lo, hi, days(per)) for lo, hi, per in sweep(sources))

    def _find(self, slot: int) -> Band | None:
        i = bisect.bisect_right([b[0] for b in self.bands], slot) - 1
        if i >= 0 and self.bands[i][0] <= slot <= self.bands[i][1]:
            return self.bands[i]
        return None

    def __getitem__(self, slot: int) -> list[Interval]:
        band = self._find(slot)
        if band is None:
            raise KeyError(slot)
        return list(band[2])

    def __contains__(self, slot: object) -> bool:
        return isinstance(slot, int) and self._find(slot) is not None

    def __iter__(self) -> Iterator[int]:
        for lo, hi, _ in self.bands:
            yield from range(lo, hi + 1)

    def __len__(self) -> int:
        return sum(hi - lo + 1 for lo, hi, _ in self.bands)

    def __repr__(self) -> str:
        return f"SlotBands({list(self.bands)!r})"
