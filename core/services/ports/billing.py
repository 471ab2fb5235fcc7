"""The billing store: contract histories as of an instant, invoices, and the purchase records of
seed 002 (commitments, plan changes, seats bought, uninstalls, billing tickets)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Protocol

from ...domain.billing import Draft, History, PlanChange
from ...domain.calendar import Interval
from ...domain.catalog import Catalog
from ...domain.model import Contract

__all__ = ["BillingStore"]


class BillingStore(Protocol):
    def histories(
        self,
        at: dt.datetime,
        catalog: Catalog,
        overage_begins: dt.date | None,
        account: str | None = None,
        product: str | None = None,
    ) -> tuple[list[History], dict[str, int]]:
        """Every contract's history as known at ``at`` (of one account, and one product), and
        account ids by name."""
        ...

    def contracted_on(self, contract: Contract, at: dt.datetime) -> int:
        """The contracted quantity in force at ``at`` (a renewal adjustment included)."""
        ...

    def state(
        self, contract_ids: Iterable[int] | None = None
    ) -> tuple[dict[int, list[Interval]], dict[tuple[int, dt.date], list[dict[str, Any]]]]:
        """Billing periods invoiced per contract, and the lines issued for each."""
        ...

    def lock_runs(self) -> None:
        """Serialise billing runs for the rest of the transaction."""
        ...

    def months_run(self) -> set[dt.date]:
        """The months a billing run has been done for (their first days), whatever it issued."""
        ...

    def issue(self, draft: Draft, at: dt.datetime) -> dict[str, Any]: ...

    def issued_invoices(
        self, account_id: int, at: dt.datetime | None = None
    ) -> list[dict[str, Any]]: ...

    def record_commitment(
        self,
        *,
        account_id: int,
        product: str,
        actor: str,
        at: dt.datetime,
        action: str,
        detail: Mapping[str, Any],
        price_shown: Decimal | None,
        currency: str | None,
        event_id: str | None = None,
    ) -> bool: ...

    def commitments(
        self, account_id: int, at: dt.datetime | None = None
    ) -> list[dict[str, Any]]: ...

    def plan_in_force(self, contract: Contract, day: dt.date) -> PlanChange | None:
        """The plan change in force on ``day``; None when the contracted plan's terms apply."""
        ...

    def selected_plan(self, contract_id: int) -> str | None: ...

    def add_plan_change(
        self,
        contract_id: int,
        *,
        plan: str,
        charge_model: str,
        unit_price: Decimal,
        effective: dt.date,
        at: dt.datetime,
        actor: str,
    ) -> None: ...

    def purchase_by_key(
        self, account_id: int, key: str
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The account's own purchase made with ``key``: (request, result)."""
        ...

    def add_purchase(
        self,
        contract_id: int,
        *,
        account_id: int,
        key: str,
        request: Mapping[str, Any],
        quantity: int,
        unit_price: Decimal,
        effective: dt.date,
        at: dt.datetime,
        actor: str,
        result: Mapping[str, Any],
    ) -> None: ...

    def pending_uninstall(self, contract_id: int) -> tuple[int, dt.date] | None:
        """(id, effective day) of the uninstall no install came after."""
        ...

    def uninstall_effective(self, contract_id: int) -> dt.date | None: ...

    def add_uninstall(
        self, contract_id: int, *, requested_at: dt.datetime, effective: dt.date, actor: str
    ) -> int: ...

    def reinstall(self, contract_id: int, at: dt.datetime) -> tuple[dt.date, bool] | None:
        """An install after an uninstall: (effective day, withdrawn), or None."""
        ...

    def open_ticket(
        self,
        contract_id: int,
        *,
        kind: str,
        at: dt.datetime,
        actor: str | None,
        uninstall_id: int | None = None,
    ) -> int: ...

    def ticket(self, ticket_id: int) -> dict[str, Any] | None: ...

    def resolve_ticket(
        self, ticket_id: int, *, renewal_quantity: int, at: dt.datetime, actor: str
    ) -> None: ...
