"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from ..clock import UTC, as_utc


class UTCDateTime(sa.TypeDecorator[dt.datetime]):
    """Stores naive UTC, returns aware UTC: SQLite has no time zones and PostgreSQL's
    ``timestamptz`` would hand back the session's zone."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return None if value is None else as_utc(value).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Money(sa.TypeDecorator[Decimal]):
    """Exact decimal amounts stored as text: SQLite's NUMERIC is a float underneath, and a cent
    lost to binary floating point is a cent billed wrongly."""

    impl = sa.String(40)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Any) -> str | None:
        return None if value is None else str(Decimal(value))

    def process_result_value(self, value: str | None, dialect: Any) -> Decimal | None:
        return None if value is None else Decimal(value)


class JSONText(sa.TypeDecorator[Any]):
    """JSON kept as text, identical on both databases (and never holding a secret in clear)."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else json.dumps(value, sort_keys=True, default=str)

    def process_result_value(self, value: str | None, dialect: Any) -> Any:
        return None if value is None else json.loads(value)
