"""A billing test clock: a scenario moves one FixedClock through whole terms and reads invoices."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock, parse_instant
from seatgate.core.domain.model import Contract

ADMIN = "admin@acme.example"


class Scenario:
    """One account on one App whose clock the test moves, day by day."""

    def __init__(self, url: str) -> None:
        # Before Manage Seats is enabled in the US (2025-10-25): users made at the start were
        # integration users at enablement, so grandfathering covers them (seed 000).
        self.clock = FixedClock(parse_instant("2025-10-01T09:00:00Z"))
        self.app = App(url, clock=self.clock)

    def on(self, day: str) -> Scenario:
        """Move the clock to 09:00 UTC of ``day`` (never backwards: a test clock)."""
        new = parse_instant(f"{day}T09:00:00Z")
        assert new >= self.clock.now(), "a billing test clock only moves forward"
        self.clock.set(new)
        return self

    def account(self, name: str = "acme", region: str = "US", users: int = 0) -> str:
        self.app.accounts.create(name, region)
        self.app.accounts.grant(name, ADMIN, "manage", None)
        if users:
            self.app.accounts.add_users(name, [f"u{i}@acme.example" for i in range(users)])
        return name

    def contract(self, product: str = "salesforce", **terms: Any) -> Contract:
        values: dict[str, Any] = dict(
            seats=10,
            plan="standard",
            frequency="monthly",
            start=dt.date(2026, 1, 1),
            months=12,
            unit_price=Decimal("25.00"),
            mode="hard_cap",
            channel="order_form",
        )
        values.update(terms)
        account = values.pop("account", "acme")
        return self.app.contracts.create(account, product, actor=ADMIN, **values)

    def installed(self, product: str = "salesforce", account: str = "acme") -> None:
        """The product's adapter installed on the account, as the install command leaves it
        (without calling a CRM: billing needs only the installation row)."""
        from seatgate.core.testing.setup import installed_without_a_crm

        installed_without_a_crm(self.app, account, product, ADMIN, self.clock.now())

    def assign(self, n_from: int, n_to: int, product: str = "salesforce") -> None:
        emails = [f"u{i}@acme.example" for i in range(n_from, n_to)]
        result = self.app.assign("acme", product, emails, ADMIN)
        assert not result.refused, result.refused

    def unassign(self, n_from: int, n_to: int, product: str = "salesforce") -> None:
        emails = [f"u{i}@acme.example" for i in range(n_from, n_to)]
        self.app.unassign("acme", product, emails, ADMIN)

    def run(self, period: str) -> dict[str, Any]:
        return self.app.billing.run(period)

    def invoice(self, period: str, account: str = "acme") -> dict[str, Any]:
        """The invoice issued for ``period`` (running the month first), as preview shows it."""
        self.run(period)
        return self.app.billing.preview(account, None, period)

    def buy(self, quantity: int, key: str | None = None, actor: str = ADMIN) -> dict[str, Any]:
        return self.app.purchases.buy_seats(
            "acme", "salesforce", quantity, actor, confirm=True, idempotency_key=key
        )

    def count(self, table: sa.Table) -> int:
        with self.app.db.read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def kinds(invoice: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(kind, amount, start, end) of each line: what a billing person reads off the invoice."""
    return [(ln["kind"], ln["amount"], ln["start"], ln["end"]) for ln in invoice["lines"]]
