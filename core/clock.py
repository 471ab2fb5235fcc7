"""Time: every rule takes the instant from a Clock, so any command can run "as of" a date.

Instants are timezone-aware UTC datetimes. Calendar dates in policies and contracts are read as
00:00 UTC of that day.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Protocol

from .errors import BadInput

UTC = dt.UTC


class Clock(Protocol):
    def now(self) -> dt.datetime: ...


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class FixedClock:
    """A clock that stays where it is put; tests and ``--as-of`` move it explicitly."""

    def __init__(self, instant: dt.datetime) -> None:
        self._now = as_utc(instant)

    def now(self) -> dt.datetime:
        return self._now

    def set(self, instant: dt.datetime) -> None:
        self._now = as_utc(instant)

    def advance(self, **delta: float) -> dt.datetime:
        self._now += dt.timedelta(**delta)
        return self._now

    def __repr__(self) -> str:
        return f"FixedClock({self._now.isoformat()})"


def as_utc(value: dt.datetime) -> dt.datetime:
    """A naive datetime is taken as UTC; an aware one is converted."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def start_of(day: dt.date) -> dt.datetime:
    """The first instant of a calendar day, in UTC."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=UTC)


_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_instant(text: str, what: str = "date/time") -> dt.datetime:
    """Parse ``2026-03-16``, ``2026-03-16T12:00:00Z`` or one with an offset into a UTC instant."""
    raw = text.strip()
    try:
        if _DATE_RE.match(raw):
            return start_of(dt.date.fromisoformat(raw))
        return as_utc(dt.datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00")))
    except (ValueError, OverflowError):  # OverflowError: an offset that leaves years 1-9999
        raise BadInput(
            what, text, "an ISO-8601 date or date-time, e.g. 2026-03-16T12:00:00Z"
        ) from None


def parse_date(text: str, what: str = "date") -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise BadInput(what, text, "a date as YYYY-MM-DD") from None


def isoformat(instant: dt.datetime) -> str:
    """``2026-03-16T12:00:00Z`` — the one format seatgate writes instants in."""
    return as_utc(instant).isoformat().replace("+00:00", "Z")
