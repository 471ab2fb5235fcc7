"""Set up what a sync needs before an adapter can be installed: an account, an admin who may
install and buy, and a contract for the product. For an adapter team's own engine-level tests, the
core's tests and the benchmarks alike.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from ..bootstrap import App

# The CLI commands (run with ``--actor admin@acme.example``) that leave account ``acme`` with a
# 5-seat salesforce contract and ``ada@acme.example`` seated: the smallest database a
# ``seatgate check`` answers "allowed" from (the startup bench and its tests).
ONE_SEAT_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("account", "create", "acme", "--region", "US"),
    ("account", "grant", "acme", "admin@acme.example", "--permission", "manage"),
    ("contract", "create", "acme", "salesforce", "--seats", "5", "--plan", "standard",
     "--frequency", "monthly", "--start", "2026-01-01", "--months", "12"),
    ("users", "add", "acme", "ada@acme.example"),
    ("seats", "assign", "acme", "salesforce", "ada@acme.example"),
)  # fmt: skip


def account_with_contract(
    app: App,
    account: str,
    product: str,
    *,
    admin: str,
    seats: int = 1000,
    mode: str = "hard_cap",
    region: str = "US",
    with_contract: bool = True,
) -> None:
    """Create ``account`` (in ``region``) with ``admin`` holding the install permission, and a
    monthly ``standard`` contract of ``seats`` for ``product`` from 2026-01-01 for 12 months at
    10.00 a seat, at ``app.now()``."""
    app.accounts.create(account, region)
    app.accounts.grant(account, admin, "install", None)
    if with_contract:
        app.contracts.create(
            account,
            product,
            seats=seats,
            plan="standard",
            frequency="monthly",
            start=dt.date(2026, 1, 1),
            months=12,
            unit_price=Decimal("10"),
            mode=mode,
        )


def installed_without_a_crm(
    app: App, account: str, product: str, actor: str, at: dt.datetime | None = None
) -> None:
    """The installation row ``install`` leaves, written without calling a CRM and without an
    event: what billing, plan changes and uninstalls need (plans are managed once installed,
    seed 002) in tests that have no CRM to install against."""
    from ..domain.connectors import split_settings

    with app.ports.db.write() as uow:
        uow.installs.save(
            uow.accounts.get(account),
            product,
            adapter=product,
            settings={},
            connector=split_settings({})[1],
            at=at or app.now(),
            actor=actor,
        )
