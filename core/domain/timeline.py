"""The enforcement timeline of seed 000, as versioned data.

Seed 000 enables Manage Seats per region, then restricts users without a seat, then bills overage.
Its dates were revised once (published 2026-01-06). New dates are a new revision in the policy file,
never a code change: a decision at instant *t* uses the latest revision published on or before *t*
and records which one.

Regions are policy data too: a revision's ``enablement`` names each region it schedules (seed 000:
UK, AU, CA, EU, US). An account of a region the revision does not list is enabled on the revision's
latest enablement date — seed 000 enables "all CRM integration customer accounts between October 4,
2025 and October 25, 2025" — and :meth:`Revision.enablement_of` says so.

Every date is a UTC day: its first instant is 00:00 UTC. A policy file may say so with
``"timezone": "UTC"``; any other timezone is refused rather than silently read as UTC.

Phases of an account at *t*:

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
from ..errors import BadInput, PolicyError
from .vocabulary import Phase

PHASES: tuple[str, ...] = tuple(Phase)

# The regions of seed 000's enablement schedule (the shipped policy's; a policy file names its own).
SEED_REGIONS: tuple[str, ...] = ("UK", "AU", "CA", "EU", "US")


def check_region(region: str) -> str:
    """A region code as accounts carry it: two letters, upper-cased ("br" -> "BR"). Raises
    :class:`~seatgate.core.errors.BadInput` naming what is accepted."""
    code = region.strip().upper()
    if len(code) != 2 or not code.isascii() or not code.isalpha():
        raise BadInput("region", region, "a two-letter region code such as US, UK or BR")
    return code


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
    _latest_enabled_at: dt.datetime = attrs.field(init=False, repr=False, eq=False)
    _restricted_at: dt.datetime = attrs.field(init=False, repr=False, eq=False)
    _overage_at: dt.datetime = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        enabled = {r: start_of(d) for r, d in self.enablement.items()}
        object.__setattr__(self, "_enabled_at", enabled)
        object.__setattr__(self, "_latest_enabled_at", max(enabled.values()))
        object.__setattr__(self, "_restricted_at", start_of(self.restrictions_begin))
        object.__setattr__(self, "_overage_at", start_of(self.overage_billing_begins))

    @property
    def regions(self) -> tuple[str, ...]:
        """The regions this revision schedules, in its order."""
        return tuple(self.enablement)

    def enablement_of(self, region: str) -> tuple[dt.date, bool]:
        """``(the day Manage Seats is enabled for region, whether the revision lists region)``: a
        region it does not list is enabled on its latest enablement date (seed 000: every account
        is enabled by then)."""
        listed = self.enablement.get(region)
        if listed is not None:
            return listed, True
        return max(self.enablement.values()), False

    def phase(self, region: str, at: dt.datetime) -> str:
        if at < self._enabled_at.get(region, self._latest_enabled_at):
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
        zone = data.get("timezone", "UTC")
        if zone != "UTC":
            raise PolicyError(
                f"{where}: timezone {zone!r} is not supported: policy dates are UTC days "
                '(remove the key, or set it to "UTC")'
            )
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
    if value is None:
        raise PolicyError(f"{where}: {key} is missing: a date (YYYY-MM-DD)")
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
    if not isinstance(enablement_raw, dict) or not enablement_raw:
        raise PolicyError(
            f"{where}: enablement must map each region (two-letter codes, e.g. "
            f"{', '.join(SEED_REGIONS)}) to a date"
        )
    bad = [
        r
        for r in enablement_raw
        if not (isinstance(r, str) and len(r) == 2 and r.isascii() and r.isalpha() and r.isupper())
    ]
    if bad:
        raise PolicyError(
            f"{where}: enablement region {bad[0]!r} is not a two-letter upper-case code (e.g. US)"
        )
    enablement = {r: _date(enablement_raw, r, where) for r in enablement_raw}
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
