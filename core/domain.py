"""The vocabulary of seatgate: regions, products, contracts, users, permissions.

Pure data (attrs), no I/O. The rules that use it live in :mod:`seats`, :mod:`policy`,
:mod:`entitlement` and the billing modules, each under the seed's own word.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import attrs

from .errors import BadInput

REGIONS: tuple[str, ...] = ("UK", "AU", "CA", "EU", "US")

# The seven paid CRM integrations managed through Manage Seats (seed 000).
PRODUCTS: tuple[str, ...] = (
    "salesforce",
    "salesforce_voice",
    "servicenow",
    "hubspot",
    "oracle_sc",
    "sap_c4c",
    "pega",
)

# Months in one billing period, per billing frequency (seed 002: "adapt to your existing contract's
# billing frequency").
FREQUENCY_MONTHS: dict[str, int] = {"monthly": 1, "quarterly": 3, "semiannual": 6, "annual": 12}

CHANNELS: tuple[str, ...] = ("order_form", "marketplace", "self_serve")

# hard_cap: CRM integrations under Manage Seats (seed 000) — never above contracted seats.
# auto_expand: marketplace apps (seed 002) — users above the contracted quantity are billed.
SEAT_MODES: tuple[str, ...] = ("hard_cap", "auto_expand")

# Seed 002, "Purchasing Authority": users with the Install or Manage permission.
PERMISSIONS: tuple[str, ...] = ("install", "manage")


def check_choice(what: str, value: str, accepted: tuple[str, ...]) -> str:
    if value not in accepted:
        raise BadInput(what, value, accepted)
    return value


def normalize_email(value: str) -> str:
    """Emails identify users within an account, case-insensitively (seed 000 Manage Seats)."""
    email = value.strip().lower()
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or " " in email or domain.startswith("."):
        raise BadInput("email", value, "an address like name@example.com")
    return email


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` plus whole months, clamped to the month's last day (Jan 31 + 1 month = Feb 28)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    last = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(year, month, min(day.day, last))


@attrs.frozen
class Account:
    id: int
    name: str
    region: str


@attrs.frozen
class Contract:
    """What an account bought for one product (seed 002 terms, seed 000 seat cap)."""

    id: int
    account: str
    product: str
    plan: str
    quantity: int
    unit_price: Decimal
    currency: str
    frequency: str
    term_start: dt.date
    term_months: int
    channel: str
    mode: str
    grandfathered_at: dt.datetime | None = None

    @property
    def term_end(self) -> dt.date:
        """The first day after the term (terms are half-open: [start, end))."""
        return add_months(self.term_start, self.term_months)

    @property
    def period_months(self) -> int:
        return FREQUENCY_MONTHS[self.frequency]


@attrs.frozen
class IntegrationUser:
    id: int
    account: str
    email: str
    name: str
    active: bool
    roles: tuple[str, ...]
