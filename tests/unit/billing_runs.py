"""Monthly billing runs in memory: what storage keeps between runs (the billed periods and the
lines issued for each), kept in dictionaries, so the billing domain's runs can be played without a
database."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from seatgate.core.domain.billing import History, Line, draft_invoices
from seatgate.core.domain.calendar import Interval, add_months


class Runs:
    """The billing runs of one account: :meth:`run` issues a month's invoice as the billing
    service does (idempotent: a period is billed once, issued lines never change)."""

    def __init__(self) -> None:
        self.billed: dict[int, list[Interval]] = defaultdict(list)
        self.prior: dict[tuple[int, dt.date], list[dict[str, Any]]] = defaultdict(list)
        self.issued: list[tuple[str, Line]] = []

    def run(self, history: History, month: dt.date) -> list[Line]:
        drafts = draft_invoices([history], month, self.billed, self.prior, {"acme": 1})
        lines: list[Line] = []
        for draft in drafts:
            for line in draft.lines:
                self.prior[(line.contract_id, line.period_start)].append(
                    {
                        "charge_kind": line.charge_kind,
                        "unit_price": line.unit_price,
                        "ref": line.ref,
                        "slot_lo": line.slot_lo,
                        "slot_hi": line.slot_hi,
                        "sign": line.sign,
                        "start": line.start,
                        "end": line.end,
                    }
                )
                self.issued.append((month.strftime("%Y-%m"), line))
            for cid, span in draft.periods:
                self.billed[cid].append(span)
            lines += draft.lines
        return lines

    def run_months(
        self, history_at: Callable[[dt.date], History], first: dt.date, last: dt.date
    ) -> None:
        """Run every month from ``first`` to ``last`` (first days), each on the history as known
        on that day."""
        month = first
        while month <= last:
            self.run(history_at(month), month)
            month = add_months(month, 1)

    @property
    def total(self) -> Decimal:
        return sum((line.amount.amount for _, line in self.issued), Decimal("0"))

    def total_of(self, month: str) -> Decimal:
        return sum((ln.amount.amount for m, ln in self.issued if m == month), Decimal("0"))
