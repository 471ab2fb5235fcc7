"""The enforcement timeline of seed 000, as versioned data.

Seed 000 enables Manage Seats per region, then restricts users without a seat, then bills overage.
Its dates were revised once (published 2026-01-06). New dates are a new revision in the policy file,
never a code change: a decision at instant *t* uses the latest revision published on or before *t*
and records which one.

Phases of an account at *t* (dates are 00:00 UTC of the day):

- ``pre_enablement``  before the region's enablement date: nothing is gated;
- ``transition``      seats are assignable and the overage lock is on; users without a seat keep
                      access with a warning naming the restriction date;
- ``restricted``      from the restriction date: users without a seat are denied gated features;
- ``overage_billing`` from the overage-billing date: restricted, and overage is billed.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ..clock import start_of
from ..errors import PolicyError
from .vocabulary import Phase

PHASES: tuple[str, ...] = tuple(Phase)

# The regions of seed 000's enablement schedule.
REGIONS: tuple[str, ...] = ("UK", "AU", "CA", "EU", "US")


@attrs.frozen
class Revision:
    """One published version of the timeline."""

    id: str
    published: dt.date
    enablement: Mapping[str, dt.date]
    restrictions_begin: dt.date
    overage_billing_begins: dt.date
    note: str = ""

    # The first instants of those days, computed once: phase() is on the entitlement hot path.
    _enabled_at: Mapping[str, dt.datetime] = attrs.field(init=False, repr=False, eq=False)
    _restricted_at: dt.datetime = attrs.field(init=False, repr=False, eq=False)
    _overage_at: dt.datetime = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        enabled = {r: start_of(d) for r, d in self.enablement.items()}
        object.__setattr__(self, "_enabled_at", enabled)
        object.__setattr__(self, "_restricted_at", start_of(self.restrictions_begin))
        object.__setattr__(self, "_overage_at", start_of(self.overage_billing_begins))

    def phase(self, region: str, at: dt.datetime) -> str:
        if at < self._enabled_at[region]:
            return "pre_enablement"
        if at < self._restricted_at:
            return "transition"
        if at < self._overage_at:
            return "restricted"
        return "overage_billing"


@attrs.frozen
class PhaseAt:
    """The phase of a region at an instant, and the revision that said so (None before any)."""

    phase: str
    revision: Revision | None

    @property
    def revision_id(self) -> str | None:
        return self.revision.id if self.revision else None

    @property
    def restrictions_begin(self) -> dt.date | None:
        return self.revision.restrictions_begin if self.revision else None


class Timeline:
    """All revisions, ordered by publication."""

    def __init__(self, revisions: Sequence[Revision], source: str = "") -> None:
        self.revisions = tuple(revisions)
        self.source = source
        self._starts = [start_of(r.published) for r in self.revisions]

    def __repr__(self) -> str:
        return f"Timeline({len(self.revisions)} revisions from {self.source or 'memory'})"

    def revision_at(self, at: dt.datetime) -> Revision | None:
        """The latest revision published on or before ``at``."""
        i = bisect.bisect_right(self._starts, at)
        return self.revisions[i - 1] if i else None

    def phase_at(self, region: str, at: dt.datetime) -> PhaseAt:
        revision = self.revision_at(at)
        if revision is None:
            return PhaseAt("pre_enablement", None)
        return PhaseAt(revision.phase(region, at), revision)

    # -- loading ------------------------------------------------------------------------------------
    @classmethod
    def from_json(cls, data: Any, source: str = "") -> Timeline:
        where = f"policy {source}" if source else "policy"
        if not isinstance(data, dict) or not isinstance(data.get("revisions"), list):
            raise PolicyError(f'{where}: expected an object with a "revisions" list')
        revisions = [_revision(raw, where) for raw in data["revisions"]]
        if not revisions:
            raise PolicyError(f"{where}: no revisions")
        for before, after in itertools.pairwise(revisions):
            if after.published <= before.published:
                raise PolicyError(
                    f"{where}: revision {after.id!r} published {after.published} is not after "
                    f"{before.id!r} published {before.published}; revisions must be in "
                    "increasing publication order"
                )
        if len({r.id for r in revisions}) != len(revisions):
            raise PolicyError(f"{where}: revision ids must be unique")
        return cls(revisions, source=source)


def _date(raw: Mapping[str, Any], key: str, where: str) -> dt.date:
    value = raw.get(key)
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise PolicyError(f"{where}: {key} {value!r} is not a date (YYYY-MM-DD)") from None


def _revision(raw: Any, where: str) -> Revision:
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: each revision must be an object")
    rid = str(raw.get("id") or raw.get("published") or "")
    where = f"{where}, revision {rid!r}"
    enablement_raw = raw.get("enablement")
    if not isinstance(enablement_raw, dict):
        raise PolicyError(
            f"{where}: enablement must map each region ({', '.join(REGIONS)}) to a date"
        )
    missing = [r for r in REGIONS if r not in enablement_raw]
    unknown = [r for r in enablement_raw if r not in REGIONS]
    if missing or unknown:
        raise PolicyError(
            f"{where}: enablement must name exactly the regions {', '.join(REGIONS)}"
            f" (missing {missing or 'none'}, unknown {unknown or 'none'})"
        )
    enablement = {r: _date(enablement_raw, r, where) for r in REGIONS}
    restrictions = _date(raw, "restrictions_begin", where)
    overage = _date(raw, "overage_billing_begins", where)
    late = [r for r, d in enablement.items() if d >= restrictions]
    if late:
        raise PolicyError(
            f"{where}: enablement of {late[0]} ({enablement[late[0]]}) is not before "
            f"restrictions_begin ({restrictions}); dates must be in order"
        )
    if overage < restrictions:
        raise PolicyError(
            f"{where}: overage_billing_begins ({overage}) is before restrictions_begin "
            f"({restrictions}); dates must be in order"
        )
    return Revision(
        id=rid,
        published=_date(raw, "published", where),
        enablement=enablement,
        restrictions_begin=restrictions,
        overage_billing_begins=overage,
        note=str(raw.get("note", "")),
    )
