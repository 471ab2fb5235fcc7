"""Billing, pure: what each contract owes, period by period, as invoice lines.

The rules live here, each under the seed's own words (seed 002 "Purchase Terms and Billing", and
the overage rule of seed 000); docs/billing.md explains them with a worked example.

How a charge is found. For one contract billing period, :func:`owed` lays out *seat slots*: slot
``n`` of a charge (``base``, ``seats_purchased``, ``additional_seats``, ``overage``,
``plan_change``) is billed over the days it is held. An invoice bills the new period in full as
known on the day of the run, and *trues up* the periods already invoiced: what is owed for them now
(an activation, a purchase or a plan change since) minus what their invoices covered. Newly owed
days become lines of their own kind (prorated: they start on the event's day); days no longer
owed (a plan change replacing the old plan) become ``proration`` credits. Every amount comes from
:func:`seatgate.core.domain.pricing.charge`, anchored on the term start, so the pieces add up
exactly.

The calendar (terms, billing periods) is :mod:`.calendar`'s; a contract's history is read by storage
as of an instant and handed here as a :class:`History`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs

from ..errors import BadInput
from .calendar import Interval, period_containing, periods_starting_in, term_index, term_start
from .model import Contract
from .money import Money
from .pricing import charge
from .seats import seats_above_contract
from .vocabulary import ChargeModel, LineKind, SeatMode, TicketKind

__all__ = [
    "LINE_KINDS",
    "TICKET_KINDS",
    "Draft",
    "History",
    "Line",
    "PlanChange",
    "Purchase",
    "draft_invoices",
    "invoice_dict",
    "owed",
    "parse_period",
    "period_containing",
    "removing_users_doesnt_impact_billing",
]

LINE_KINDS: tuple[str, ...] = tuple(k for k in LineKind if k != LineKind.ADD_ON)
TICKET_KINDS: tuple[str, ...] = tuple(TicketKind)

_PERIOD_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")

SlotKey = tuple[str, Decimal, int]  # (charge kind, monthly unit price, ref)


def parse_period(text: str) -> dt.date:
    """``YYYY-MM`` -> the first day of that month. Raises :class:`BadInput`."""
    match = _PERIOD_RE.match(text.strip())
    if not match:
        raise BadInput("period", text, "a month as YYYY-MM, e.g. 2026-05")
    return dt.date(int(match[1]), int(match[2]), 1)


# -- what a contract's history says ------------------------------------------------------------------
@attrs.frozen
class Purchase:
    id: int
    effective: dt.date
    quantity: int
    unit_price: Decimal


@attrs.frozen
class PlanChange:
    id: int
    effective: dt.date
    plan: str
    charge_model: str
    unit_price: Decimal


@attrs.frozen
class History:
    """Everything billing needs about one contract, as known at one instant (pure data)."""

    contract: Contract
    charge_model: str  # of the contracted base plan
    quantity_changes: Sequence[tuple[dt.date, int, int]] = ()  # (day, from, to)
    ledger: Sequence[tuple[dt.date, int]] = ()  # (day, seats assigned right after), in order
    purchases: Sequence[Purchase] = ()
    plan_changes: Sequence[PlanChange] = ()
    uninstall_effective: dt.date | None = None
    ticket_days: Mapping[str, Sequence[dt.date]] = attrs.field(factory=dict)
    overage_begins: dt.date | None = None

    def quantity_before(self, day: dt.date) -> int:
        """The contracted quantity in force before ``day`` (from the audited quantity changes)."""
        q = self.quantity_changes[0][1] if self.quantity_changes else self.contract.quantity
        for when, _, to in self.quantity_changes:
            if when < day:
                q = to
        return q

    def assigned_before(self, day: dt.date) -> int:
        n = 0
        for when, after in self.ledger:
            if when >= day:
                break
            n = after
        return n

    def billing_stops(self) -> dt.date | None:
        """Seed 002: "Uninstalling the App will take effect at the end of the product's current
        contracted term and requires you to issue a Billing ticket ... to trigger Billing
        Cancellation." Billing stops at the uninstall only once such a ticket exists."""
        if self.uninstall_effective and self.ticket_days.get("billing_cancellation"):
            return self.uninstall_effective
        return None


def removing_users_doesnt_impact_billing(h: History, j: int) -> int:
    """Seed 002, "Removing Users doesn't Impact Billing": the seats a term starts billed for —
    the billable seats (max of contracted and peak assigned) the previous term ended with, carried
    over at renewal unless a ``renewal_adjustment`` ticket was opened during that term."""
    floor = 0
    for k in range(1, j + 1):
        prev_start, start = term_start(h.contract, k - 1), term_start(h.contract, k)
        contracted = h.quantity_before(prev_start) + sum(
            p.quantity for p in h.purchases if prev_start <= p.effective < start
        )
        peak = max(
            [floor, h.assigned_before(prev_start)]
            + [a for d, a in h.ledger if prev_start <= d < start]
        )
        billable = max(contracted, peak)
        adjusted = any(prev_start <= d < start for d in h.ticket_days.get("renewal_adjustment", ()))
        floor = 0 if adjusted else billable
    return floor


def owed(h: History, j: int, period: Interval) -> dict[SlotKey, dict[int, list[Interval]]]:
    """What the contract owes for one billing period of term ``j``, as slot intervals."""
    c = h.contract
    a, b = period
    stops = h.billing_stops()
    if stops is not None:
        b = min(b, stops)
    out: dict[SlotKey, dict[int, list[Interval]]] = defaultdict(lambda: defaultdict(list))
    if a >= b:
        return out
    t0, t1 = term_start(c, j), term_start(c, j + 1)
    base_q = h.quantity_before(t0)
    term_purchases = [p for p in h.purchases if t0 <= p.effective < t1]
    events = {d for d, _ in h.ledger if a < d < b}
    events |= {p.effective for p in term_purchases if a < p.effective < b}
    events |= {p.effective for p in h.plan_changes if a < p.effective < b}
    if h.overage_begins and a < h.overage_begins < b:
        events.add(h.overage_begins)
    bounds = [a, *sorted(events), b]
    floor = max(removing_users_doesnt_impact_billing(h, j), h.assigned_before(t0))
    in_term = [(d, n) for d, n in h.ledger if t0 <= d]
    for s, e in itertools.pairwise(bounds):
        peak = max([floor] + [n for d, n in in_term if d <= s])
        bought = [p for p in term_purchases if p.effective <= s]
        contracted = base_q + sum(p.quantity for p in bought)
        change = next((p for p in reversed(h.plan_changes) if p.effective <= s), None)

        def hold(key: SlotKey, slots: Iterable[int], s: dt.date = s, e: dt.date = e) -> None:
            for n in slots:
                _extend(out[key][n], s, e)

        if change is not None:
            # Seed 002: "Selecting a Base Plan different from the contracted one will trigger
            # billing for the new Plan, for all selected Users, at the then listed price".
            users = 1 if change.charge_model == ChargeModel.PER_ACCOUNT else max(contracted, peak)
            hold(("plan_change", change.unit_price, change.id), range(1, users + 1))
            continue
        if h.charge_model == ChargeModel.PER_ACCOUNT:
            # Seed 002: "charged once, per Talkdesk account, independently of the number of
            # activated seats".
            hold(("base", c.unit_price, 0), [1])
            continue
        hold(("base", c.unit_price, 0), range(1, base_q + 1))
        for p in bought:
            hold(("seats_purchased", p.unit_price, p.id), range(1, p.quantity + 1))
        extra = seats_above_contract(contracted, peak)
        if extra and c.mode == SeatMode.AUTO_EXPAND:
            # Seed 002: "Adding Users above contracted quantities will trigger billing for the
            # additional quantities under contracted terms."
            hold(("additional_seats", c.unit_price, 0), range(1, extra + 1))
        elif extra and h.overage_begins and s >= h.overage_begins:
            # Seed 000: "customers continuing to be in overage will be billed for the additional
            # users" — from the overage-billing date of the policy, not before.
            hold(("overage", c.unit_price, 0), range(1, extra + 1))
    return out


def _extend(intervals: list[Interval], s: dt.date, e: dt.date) -> None:
    if intervals and intervals[-1][1] == s:
        intervals[-1] = (intervals[-1][0], e)
    else:
        intervals.append((s, e))


def _normalize(intervals: Iterable[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for s, e in sorted(i for i in intervals if i[0] < i[1]):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(e, out[-1][1]))
        else:
            out.append((s, e))
    return out


def _subtract(have: Iterable[Interval], minus: Iterable[Interval]) -> list[Interval]:
    result = _normalize(have)
    for ms, me in _normalize(minus):
        nxt: list[Interval] = []
        for s, e in result:
            if me <= s or ms >= e:
                nxt.append((s, e))
                continue
            if s < ms:
                nxt.append((s, ms))
            if me < e:
                nxt.append((me, e))
        result = nxt
    return result


# -- lines -------------------------------------------------------------------------------------------
@attrs.frozen
class Line:
    contract_id: int
    product: str
    kind: str
    charge_kind: str
    ref: int
    slot_lo: int
    slot_hi: int
    sign: int
    description: str
    quantity: int
    unit_price: Decimal
    amount: Money
    start: dt.date
    end: dt.date
    period_start: dt.date

    def as_dict(self) -> dict[str, object]:
        return {
            "product": self.product,
            "kind": self.kind,
            "description": self.description,
            "quantity": self.quantity,
            "unit_price": str(self.unit_price),
            "amount": str(self.amount.amount),
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
        }


def _lines(
    h: History,
    j: int,
    period: Interval,
    slots: Mapping[SlotKey, Mapping[int, list[Interval]]],
    sign: int,
) -> list[Line]:
    """Group slot intervals into lines: same charge, same days, contiguous slots."""
    c = h.contract
    anchor = term_start(c, j)
    grouped: dict[tuple[SlotKey, dt.date, dt.date], list[int]] = defaultdict(list)
    for key, per_slot in slots.items():
        for slot, intervals in per_slot.items():
            for s, e in intervals:
                grouped[(key, s, e)].append(slot)
    out = []
    for (key, s, e), members in sorted(grouped.items(), key=_line_order):
        kind, unit, ref = key
        members.sort()
        runs: list[list[int]] = []
        for n in members:
            if runs and runs[-1][-1] == n - 1:
                runs[-1].append(n)
            else:
                runs.append([n])
        for run in runs:
            qty = len(run)
            money = charge(unit, qty, c.currency, anchor=anchor, start=s, end=e)
            out.append(
                Line(
                    contract_id=c.id,
                    product=c.product,
                    kind=kind if sign > 0 else "proration",
                    charge_kind=kind,
                    ref=ref,
                    slot_lo=run[0],
                    slot_hi=run[-1],
                    sign=sign,
                    description=_describe(h, kind, ref, qty, unit, (s, e), period, sign),
                    quantity=qty,
                    unit_price=unit,
                    amount=money if sign > 0 else -money,
                    start=s,
                    end=e,
                    period_start=period[0],
                )
            )
    return out


def _line_order(item: tuple[tuple[SlotKey, dt.date, dt.date], list[int]]) -> tuple[Any, ...]:
    (kind, unit, ref), s, e = item[0]
    return (LINE_KINDS.index(kind), s, ref, unit, e)


def _describe(
    h: History,
    kind: str,
    ref: int,
    qty: int,
    unit: Decimal,
    span: Interval,
    period: Interval,
    sign: int,
) -> str:
    c = h.contract
    seats = f"{qty} seat{'s' if qty != 1 else ''}"
    price = f"{unit} {c.currency}/month"
    if kind == "base":
        what = (
            f"{c.plan} plan, per account ({price})"
            if h.charge_model == ChargeModel.PER_ACCOUNT
            else f"{c.plan} plan, {seats} contracted at {price} each"
        )
    elif kind == "seats_purchased":
        bought = next(p for p in h.purchases if p.id == ref)
        what = f"{seats} bought on {bought.effective} at {price} each"
    elif kind == "additional_seats":
        what = f"{seats} above the contracted quantity (auto_expand) at {price} each"
    elif kind == "overage":
        what = (
            f"{seats} in overage above contracted seats, billed from {h.overage_begins}, "
            f"at {price} each"
        )
    else:
        change = next(p for p in h.plan_changes if p.id == ref)
        what = (
            f"{change.plan} plan selected on {change.effective}, per account ({price})"
            if change.charge_model == ChargeModel.PER_ACCOUNT
            else f"{change.plan} plan selected on {change.effective}: {seats} at the then-listed "
            f"{price}"
        )
    if sign < 0:
        return f"credit, no longer owed from {span[0]} to {span[1]}: {what}"
    if span != period:
        return f"{what}, prorated {span[0]} to {span[1]}"
    return what


# -- invoices ----------------------------------------------------------------------------------------
@attrs.frozen
class Draft:
    """An invoice before it is issued: one account, one month, one currency."""

    account: str
    account_id: int
    period: str
    currency: str
    lines: list[Line]
    periods: list[tuple[int, Interval]]  # (contract id, billing period) it invoices

    @property
    def total(self) -> Money:
        total = Money.zero(self.currency)
        for line in self.lines:
            total += line.amount
        return total


def draft_invoices(
    histories: Sequence[History],
    month: dt.date,
    billed: Mapping[int, Sequence[Interval]],
    prior: Mapping[tuple[int, dt.date], Sequence[Mapping[str, Any]]],
    account_ids: Mapping[str, int],
) -> list[Draft]:
    """The invoices the month's billing run would issue, per account and currency."""
    period = month.strftime("%Y-%m")
    drafts: dict[tuple[str, str], Draft] = {}
    for h in sorted(histories, key=lambda h: (h.contract.account, h.contract.product)):
        c = h.contract
        done = set(billed.get(c.id, ()))
        stops = h.billing_stops()
        for j, span in periods_starting_in(c, month):
            if span in done or (stops is not None and span[0] >= stops):
                continue
            lines = _true_up(h, j, span, billed.get(c.id, ()), prior)
            lines += _lines(h, j, span, owed(h, j, span), 1)
            key = (c.account, c.currency)
            if key not in drafts:
                drafts[key] = Draft(c.account, account_ids[c.account], period, c.currency, [], [])
            drafts[key].lines.extend(lines)
            drafts[key].periods.append((c.id, span))
    return list(drafts.values())


def _true_up(
    h: History,
    j: int,
    span: Interval,
    billed: Sequence[Interval],
    prior: Mapping[tuple[int, dt.date], Sequence[Mapping[str, Any]]],
) -> list[Line]:
    """Lines for periods already invoiced (this term and the last): newly owed days are billed,
    days no longer owed are credited as ``proration``."""
    c = h.contract
    since = term_start(c, max(0, j - 1))
    out: list[Line] = []
    for earlier in sorted(billed):
        if not (since <= earlier[0] < span[0]):
            continue
        k = term_index(c, earlier[0])
        now_owed = owed(h, k, earlier)
        covered: dict[SlotKey, dict[int, list[Interval]]] = defaultdict(lambda: defaultdict(list))
        credited: dict[SlotKey, dict[int, list[Interval]]] = defaultdict(lambda: defaultdict(list))
        for row in prior.get((c.id, earlier[0]), ()):
            key = (row["charge_kind"], row["unit_price"], row["ref"])
            target = covered if row["sign"] > 0 else credited
            for n in range(row["slot_lo"], row["slot_hi"] + 1):
                target[key][n].append((row["start"], row["end"]))
        has: dict[SlotKey, dict[int, list[Interval]]] = defaultdict(dict)
        for key, per_slot in covered.items():
            for n, intervals in per_slot.items():
                has[key][n] = _subtract(intervals, credited.get(key, {}).get(n, []))
        new: dict[SlotKey, dict[int, list[Interval]]] = defaultdict(dict)
        gone: dict[SlotKey, dict[int, list[Interval]]] = defaultdict(dict)
        for key in set(now_owed) | set(has):
            for n in set(now_owed.get(key, {})) | set(has.get(key, {})):
                want = now_owed.get(key, {}).get(n, [])
                got = has.get(key, {}).get(n, [])
                if want == got:  # the common case: nothing happened since the invoice
                    continue
                if more := _subtract(want, got):
                    new[key][n] = more
                if less := _subtract(got, want):
                    gone[key][n] = less
        out += _lines(h, k, earlier, new, 1) + _lines(h, k, earlier, gone, -1)
    return out


def invoice_dict(account: str, period: str, currency: str, lines: Sequence[Line]) -> dict[str, Any]:
    total = sum((ln.amount.amount for ln in lines), Decimal("0.00"))
    return {
        "account": account,
        "period": period,
        "currency": currency,
        "total": str(total),
        "lines": [ln.as_dict() for ln in lines],
    }
