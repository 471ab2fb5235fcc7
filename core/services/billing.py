"""Billing as use cases: the preview of a month's invoice, the idempotent billing run, and issued
invoices. The rules are the domain's (:mod:`seatgate.core.domain.billing`); histories and invoices
are storage's.

Billing runs are idempotent: each contract billing period is invoiced once (``billing_periods_billed``
is keyed on it), and invoices and their lines are append-only in the database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from decimal import Decimal
from typing import Any

from ..domain.billing import Draft, History, draft_invoices, parse_period
from ..domain.calendar import Interval
from ..domain.events import InvoiceIssued
from ..domain.money import per_currency
from ..errors import BadInput
from .base import read, transaction
from .ports import Ports
from .quotes import overage_begins

__all__ = ["BillingService"]


class BillingService:
    def __init__(self, ports: Ports) -> None:
        self.ports = ports

    def overage_begins(self) -> dt.date | None:
        """Seed 000: the overage-billing date of the timeline revision in force now."""
        return overage_begins(self.ports)

    def preview(self, account: str, product: str | None, period: str) -> dict[str, Any]:
        """The month's invoice for ``account`` as it stands now: lines already issued for the
        month plus what a run would issue now. Writes nothing.

        :param period: the month, ``YYYY-MM``. Raises :class:`BadInput` for a bad period or a
            product the account has no contract for.
        """
        ports = self.ports
        month = parse_period(period)
        with read(ports) as uow:
            acct = uow.accounts.get(account)
            histories, ids = uow.billing.histories(
                ports.now(), ports.catalog(), self.overage_begins(), account
            )
            if product is not None:
                if product not in {h.contract.product for h in histories}:
                    have = sorted(h.contract.product for h in histories)
                    raise BadInput(
                        "product",
                        product,
                        f"a product account {account!r} has a contract for: {', '.join(have)}"
                        if have
                        else f"no product: account {account!r} has no contract",
                    )
                histories = [h for h in histories if h.contract.product == product]
            billed, prior = uow.billing.state([h.contract.id for h in histories])
            months_run = uow.billing.months_run()
            issued = [
                inv
                for inv in uow.billing.issued_invoices(acct.id)
                if inv["period"] == month.strftime("%Y-%m")
            ]
        drafts = draft_invoices(histories, month, billed, prior, ids, months_run)
        # One invoice per currency (docs/billing.md): lines carry their invoice's currency and
        # the totals are per currency, never added across currencies.
        lines = [(d.currency, ln.as_dict()) for d in drafts for ln in d.lines]
        issued_lines = [
            (inv["currency"], ln)
            for inv in issued
            for ln in inv["lines"]
            if product is None or ln["product"] == product
        ]
        all_lines = issued_lines + lines
        totals = per_currency((cur, Decimal(ln["amount"])) for cur, ln in all_lines)
        if not totals:
            own = sorted({h.contract.currency for h in histories}) or ["USD"]
            totals = per_currency((cur, Decimal(0)) for cur in own)
        single = next(iter(totals.items())) if len(totals) == 1 else (None, None)
        return {
            "account": account,
            "period": month.strftime("%Y-%m"),
            # One currency: its total; several: None, and each is in ``totals``.
            "currency": single[0],
            "total": single[1],
            "totals": totals,
            "lines": [ln if len(totals) == 1 else {**ln, "currency": cur} for cur, ln in all_lines],
            "issued": [inv["number"] for inv in issued],
            "pending": len(lines),
        }

    def run(self, period: str, actor: str | None = None) -> dict[str, Any]:
        """Issue the month's invoices for every account: the periods starting in the month, the
        true-up of those already invoiced, and the final invoice of a contract whose billing
        stopped (:func:`~seatgate.core.domain.billing.draft_invoices`). Idempotent: a period
        already invoiced for a contract is skipped and issued lines are not issued again, so a
        second run issues nothing. Raises :class:`BadInput` for a month that has not begun."""
        ports = self.ports
        month = parse_period(period)
        now = ports.now()
        if month > now.date():
            raise BadInput(
                "period",
                period,
                f"a month that has begun by {now.date()} (preview a later one instead)",
            )
        with transaction(ports) as uow:
            uow.billing.lock_runs()
            histories, ids = uow.billing.histories(now, ports.catalog(), self.overage_begins())
            billed, prior = uow.billing.state()
            drafts, skipped = _drafts_per_account(
                histories, month, billed, prior, ids, uow.billing.months_run()
            )
            issued = []
            for draft in drafts:
                done = uow.billing.issue(draft, now)
                issued.append(done)
                uow.record(
                    InvoiceIssued(
                        account=draft.account,
                        product="",
                        at=now,
                        number=done["number"],
                        period=draft.period,
                        total=done["total"],
                        currency=draft.currency,
                        products=tuple(sorted({ln.product for ln in draft.lines})),
                    )
                )
            uow.audit.record(
                at=now,
                action="billing.run",
                outcome=("partial" if skipped else "ok") if issued else "unchanged",
                actor=actor,
                detail={
                    "period": month.strftime("%Y-%m"),
                    "invoices_issued": len(issued),
                    "accounts_skipped": [s["account"] for s in skipped],
                },
            )
        totals = per_currency((i["currency"], Decimal(i["total"])) for i in issued)
        return {
            "period": month.strftime("%Y-%m"),
            "issued": issued,
            "count": len(issued),
            # Per currency, never added across currencies; ``total`` only when there is one
            # currency (nothing issued: 0.00), None when there are several.
            "total": (next(iter(totals.values())) if totals else "0.00")
            if len(totals) <= 1
            else None,
            "totals": totals,
            "skipped": skipped,
        }

    def invoices(self, account: str) -> dict[str, Any]:
        """The invoices issued to ``account`` (they never change)."""
        with read(self.ports) as uow:
            acct = uow.accounts.get(account)
            issued = uow.billing.issued_invoices(acct.id, self.ports.now())
            return {"account": account, "invoices": issued}

    def commitments(self, account: str) -> list[dict[str, Any]]:
        """Who committed to what, when, at which price shown (seed 002)."""
        with read(self.ports) as uow:
            acct = uow.accounts.get(account)
            return uow.billing.commitments(acct.id, self.ports.now())


def _drafts_per_account(
    histories: Sequence[History],
    month: dt.date,
    billed: Mapping[int, Sequence[Interval]],
    prior: Mapping[tuple[int, dt.date], Sequence[Mapping[str, Any]]],
    ids: Mapping[str, int],
    months_run: Collection[dt.date],
) -> tuple[list[Draft], list[dict[str, str]]]:
    """The month's drafts, account by account: one account whose contracts cannot be billed (a
    price or term no edge should have let in) is skipped and reported — ``{"account", "reason"}``
    — and never stops another account's invoice."""
    by_account: dict[str, list[History]] = {}
    for h in histories:
        by_account.setdefault(h.contract.account, []).append(h)
    drafts: list[Draft] = []
    skipped: list[dict[str, str]] = []
    for account, own in sorted(by_account.items()):
        try:
            drafts += draft_invoices(own, month, billed, prior, ids, months_run)
        except Exception as exc:  # whatever the bad row, the other accounts are still billed
            skipped.append({"account": account, "reason": f"{type(exc).__name__}: {exc}"[:300]})
    return drafts, skipped
