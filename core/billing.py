"""Billing: what each contract owes, period by period, and invoices that never change once issued.

The rules live here, each under the seed's own words (seed 002 "Purchase Terms and Billing", and
the overage rule of seed 000); docs/billing.md explains them with a worked example.

How a charge is found. For one contract billing period, :func:`owed` lays out *seat slots*: slot
``n`` of a charge (``base``, ``seats_purchased``, ``additional_seats``, ``overage``,
``plan_change``) is billed over the days it is held. An invoice bills the new period in full as
known on the day of the run, and *trues up* the periods already invoiced: what is owed for them now
(an activation, a purchase or a plan change since) minus what their invoices covered. Newly owed
days become lines of their own kind (prorated: they start on the event's day); days no longer
owed (a plan change replacing the old plan) become ``proration`` credits. Every amount comes from
:func:`seatgate.core.pricing.charge`, anchored on the term start, so the pieces add up exactly.

Billing runs are idempotent: each contract billing period is invoiced once (``billing_periods_billed``
is keyed on it), and invoices and their lines are append-only in the database.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from . import audit
from .billing_tables import (
    billed_periods,
    invoice_lines,
    invoices,
    plan_changes,
    purchases,
    tickets,
    uninstalls,
)
from .catalog import Catalog
from .contracts import list_contracts
from .domain import FREQUENCY_MONTHS, Contract, add_months
from .errors import BadInput
from .money import Money
from .pricing import charge
from .storage.tables import accounts, audit_log, seat_ledger

if TYPE_CHECKING:
    from .app import App

LINE_KINDS: tuple[str, ...] = (
    "base",
    "seats_purchased",
    "additional_seats",
    "overage",
    "plan_change",
    "proration",
)
TICKET_KINDS: tuple[str, ...] = ("billing_cancellation", "renewal_adjustment")

_PERIOD_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")

Interval = tuple[dt.date, dt.date]
SlotKey = tuple[str, Decimal, int]  # (charge kind, monthly unit price, ref)


def parse_period(text: str) -> dt.date:
    """``YYYY-MM`` -> the first day of that month."""
    match = _PERIOD_RE.match(text.strip())
    if not match:
        raise BadInput("period", text, "a month as YYYY-MM, e.g. 2026-05")
    return dt.date(int(match[1]), int(match[2]), 1)


# -- the billing calendar ---------------------------------------------------------------------------
def month_to_month(contract: Contract) -> bool:
    """Seed 002: "Marketplace Self-Serve new app purchases ... are billed month to month"."""
    return contract.channel == "self_serve"


def period_months(contract: Contract) -> int:
    """Seed 002: purchases "adapt to your existing Talkdesk contract's billing frequency"."""
    return 1 if month_to_month(contract) else FREQUENCY_MONTHS[contract.frequency]


def term_months(contract: Contract) -> int:
    return 1 if month_to_month(contract) else contract.term_months


def term_start(contract: Contract, index: int) -> dt.date:
    """Terms renew back to back (an uninstall without a cancellation ticket renews too)."""
    return add_months(contract.term_start, index * term_months(contract))


def term_index(contract: Contract, day: dt.date) -> int:
    if day < contract.term_start:
        return 0
    months = term_months(contract)
    j = max(0, ((day.year - contract.term_start.year) * 12 + day.month - contract.term_start.month))
    j //= months
    while j > 0 and term_start(contract, j) > day:
        j -= 1
    while term_start(contract, j + 1) <= day:
        j += 1
    return j


def periods_of_term(contract: Contract, j: int) -> list[Interval]:
    """The billing periods of term ``j``; the last is cut at the term end if they do not divide."""
    start, end = term_start(contract, j), term_start(contract, j + 1)
    step = period_months(contract)
    out: list[Interval] = []
    i = 0
    while True:
        a = add_months(contract.term_start, j * term_months(contract) + i * step)
        if a >= end:
            return out
        out.append(
            (
                a,
                min(
                    end, add_months(contract.term_start, j * term_months(contract) + (i + 1) * step)
                ),
            )
        )
        i += 1
        if a < start:  # pragma: no cover - add_months never goes backwards
            raise AssertionError


def period_containing(contract: Contract, day: dt.date) -> tuple[int, Interval]:
    j = term_index(contract, day)
    for a, b in periods_of_term(contract, j):
        if a <= day < b:
            return j, (a, b)
    return j, periods_of_term(contract, j)[0]


def periods_starting_in(contract: Contract, month: dt.date) -> list[tuple[int, Interval]]:
    """The contract's billing periods whose first day falls in ``month`` (its invoice month)."""
    next_month = add_months(month, 1)
    if next_month <= contract.term_start:
        return []
    j = term_index(contract, month)
    out: list[tuple[int, Interval]] = []
    while term_start(contract, j) < next_month:
        out.extend((j, p) for p in periods_of_term(contract, j) if month <= p[0] < next_month)
        j += 1
    return out


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
            users = 1 if change.charge_model == "per_account" else max(contracted, peak)
            hold(("plan_change", change.unit_price, change.id), range(1, users + 1))
            continue
        if h.charge_model == "per_account":
            # Seed 002: "charged once, per Talkdesk account, independently of the number of
            # activated seats".
            hold(("base", c.unit_price, 0), [1])
            continue
        hold(("base", c.unit_price, 0), range(1, base_q + 1))
        for p in bought:
            hold(("seats_purchased", p.unit_price, p.id), range(1, p.quantity + 1))
        extra = max(0, peak - contracted)
        if extra and c.mode == "auto_expand":
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
            if h.charge_model == "per_account"
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
            if change.charge_model == "per_account"
            else f"{change.plan} plan selected on {change.effective}: {seats} at the then-listed "
            f"{price}"
        )
    if sign < 0:
        return f"credit, no longer owed from {span[0]} to {span[1]}: {what}"
    if span != period:
        return f"{what}, prorated {span[0]} to {span[1]}"
    return what


# -- loading histories -------------------------------------------------------------------------------
def load_histories(
    conn: sa.Connection,
    at: dt.datetime,
    catalog: Catalog,
    overage_begins: dt.date | None,
    account: str | None = None,
) -> tuple[list[History], dict[str, int]]:
    """Every contract's history as known at ``at`` (rows written later, e.g. under a later
    ``--as-of``, are not seen). Returns the histories and account ids by name."""
    ids_q = sa.select(accounts.c.name, accounts.c.id)
    if account is not None:
        ids_q = ids_q.where(accounts.c.name == account)
    account_ids = {name: aid for name, aid in conn.execute(ids_q)}
    contracts = [c for c in list_contracts(conn, account) if c.account in account_ids]
    by_id = {c.id: c for c in contracts}
    key_of = {(account_ids[c.account], c.product): c.id for c in contracts}

    ledger: dict[int, list[tuple[dt.date, int]]] = defaultdict(list)
    q = sa.select(
        seat_ledger.c.account_id,
        seat_ledger.c.product,
        seat_ledger.c.at,
        seat_ledger.c.assigned_after,
    ).where(seat_ledger.c.at <= at)
    if account is not None:
        q = q.where(seat_ledger.c.account_id.in_(list(account_ids.values())))
    for aid, product, when, after in conn.execute(q.order_by(seat_ledger.c.id)):
        cid = key_of.get((aid, product))
        if cid is not None:
            ledger[cid].append((when.date(), after))

    qty: dict[int, list[tuple[dt.date, int, int]]] = defaultdict(list)
    aq = sa.select(audit_log.c.account, audit_log.c.at, audit_log.c.detail).where(
        audit_log.c.action == "contract.quantity", audit_log.c.at <= at
    )
    if account is not None:
        aq = aq.where(audit_log.c.account == account)
    for name, when, detail in conn.execute(aq.order_by(audit_log.c.id)):
        cid = key_of.get((account_ids.get(name, -1), detail.get("product")))
        if cid is not None:
            qty[cid].append((when.date(), int(detail["from"]), int(detail["to"])))

    bought: dict[int, list[Purchase]] = defaultdict(list)
    for row in conn.execute(
        sa.select(purchases).where(purchases.c.at <= at).order_by(purchases.c.id)
    ):
        if row.contract_id in by_id:
            bought[row.contract_id].append(
                Purchase(row.id, row.effective, row.quantity, row.unit_price)
            )
    changes: dict[int, list[PlanChange]] = defaultdict(list)
    for row in conn.execute(
        sa.select(plan_changes).where(plan_changes.c.at <= at).order_by(plan_changes.c.id)
    ):
        if row.contract_id in by_id:
            changes[row.contract_id].append(
                PlanChange(row.id, row.effective, row.plan, row.charge_model, row.unit_price)
            )
    gone = {
        row.contract_id: row.effective
        for row in conn.execute(sa.select(uninstalls).where(uninstalls.c.requested_at <= at))
    }
    opened: dict[int, dict[str, list[dt.date]]] = defaultdict(lambda: defaultdict(list))
    for row in conn.execute(sa.select(tickets).where(tickets.c.opened_at <= at)):
        opened[row.contract_id][row.kind].append(row.opened_at.date())

    histories = [
        History(
            contract=c,
            charge_model=catalog.charge_model(c.product, c.plan, c.term_start),
            quantity_changes=qty.get(c.id, ()),
            ledger=ledger.get(c.id, ()),
            purchases=bought.get(c.id, ()),
            plan_changes=changes.get(c.id, ()),
            uninstall_effective=gone.get(c.id),
            ticket_days=dict(opened.get(c.id, {})),
            overage_begins=overage_begins,
        )
        for c in contracts
    ]
    return histories, account_ids


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


def billing_state(
    conn: sa.Connection, contract_ids: Iterable[int] | None = None
) -> tuple[dict[int, list[Interval]], dict[tuple[int, dt.date], list[dict[str, Any]]]]:
    """Which contract billing periods are invoiced, and the lines issued for each."""
    billed: dict[int, list[Interval]] = defaultdict(list)
    q = sa.select(billed_periods)
    ids = None if contract_ids is None else list(contract_ids)
    if ids is not None:
        q = q.where(billed_periods.c.contract_id.in_(ids))
    for row in conn.execute(q):
        billed[row.contract_id].append((row.period_start, row.period_end))
    prior: dict[tuple[int, dt.date], list[dict[str, Any]]] = defaultdict(list)
    if billed:
        lq = sa.select(invoice_lines)
        if ids is not None:
            lq = lq.where(invoice_lines.c.contract_id.in_(ids))
        for row in conn.execute(lq):
            prior[(row.contract_id, row.period_start)].append(dict(row._mapping))
    return billed, prior


def issue(conn: sa.Connection, draft: Draft, at: dt.datetime) -> dict[str, Any]:
    """Write one invoice. Its billed periods are keyed on (contract, period start): a second run
    that slipped past the check would fail on the key rather than bill twice."""
    seq = conn.execute(
        sa.select(sa.func.count())
        .select_from(invoices)
        .where(invoices.c.account_id == draft.account_id, invoices.c.period == draft.period)
    ).scalar_one()
    number = f"INV-{draft.period}-{draft.account_id:06d}-{seq + 1}"
    invoice_id = conn.execute(  # type: ignore[index]
        invoices.insert().values(
            number=number,
            account_id=draft.account_id,
            period=draft.period,
            currency=draft.currency,
            total=draft.total.amount,
            issued_at=at,
        )
    ).inserted_primary_key[0]
    if draft.lines:
        conn.execute(
            invoice_lines.insert(),
            [
                {
                    "invoice_id": invoice_id,
                    "contract_id": ln.contract_id,
                    "product": ln.product,
                    "kind": ln.kind,
                    "charge_kind": ln.charge_kind,
                    "ref": ln.ref,
                    "slot_lo": ln.slot_lo,
                    "slot_hi": ln.slot_hi,
                    "sign": ln.sign,
                    "description": ln.description,
                    "quantity": ln.quantity,
                    "unit_price": ln.unit_price,
                    "amount": ln.amount.amount,
                    "start": ln.start,
                    "end": ln.end,
                    "period_start": ln.period_start,
                }
                for ln in draft.lines
            ],
        )
    conn.execute(
        billed_periods.insert(),
        [
            {"contract_id": cid, "period_start": a, "period_end": b, "invoice_id": invoice_id}
            for cid, (a, b) in draft.periods
        ],
    )
    return {"number": number, "account": draft.account, "total": str(draft.total.amount)}


def invoice_dict(account: str, period: str, currency: str, lines: Sequence[Line]) -> dict[str, Any]:
    total = sum((ln.amount.amount for ln in lines), Decimal("0.00"))
    return {
        "account": account,
        "period": period,
        "currency": currency,
        "total": str(total),
        "lines": [ln.as_dict() for ln in lines],
    }


def issued_invoices(conn: sa.Connection, account_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(invoices).where(invoices.c.account_id == account_id).order_by(invoices.c.id)
    ).all()
    lines: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if rows:
        for ln in conn.execute(
            sa.select(invoice_lines)
            .where(invoice_lines.c.invoice_id.in_([r.id for r in rows]))
            .order_by(invoice_lines.c.id)
        ):
            lines[ln.invoice_id].append(
                {
                    "product": ln.product,
                    "kind": ln.kind,
                    "description": ln.description,
                    "quantity": ln.quantity,
                    "unit_price": str(ln.unit_price),
                    "amount": str(ln.amount),
                    "start": ln.start.isoformat(),
                    "end": ln.end.isoformat(),
                }
            )
    return [
        {
            "number": r.number,
            "period": r.period,
            "currency": r.currency,
            "total": str(r.total),
            "issued_at": r.issued_at,
            "lines": lines[r.id],
        }
        for r in rows
    ]


def record_run(
    conn: sa.Connection, period: str, at: dt.datetime, issued: int, actor: str | None
) -> None:
    audit.record(
        conn,
        at=at,
        action="billing.run",
        outcome="ok" if issued else "unchanged",
        actor=actor,
        detail={"period": period, "invoices_issued": issued},
    )


# -- use cases ---------------------------------------------------------------------------------------
def _overage_begins(app: App) -> dt.date | None:
    revision = app.timeline.revision_at(app.now())
    return revision.overage_billing_begins if revision else None


def preview(app: App, account: str, product: str | None, period: str) -> dict[str, Any]:
    """The month's invoice for ``account`` as it stands now: lines already issued for the month
    plus what a run would issue now. Writes nothing."""
    from . import catalog as catalog_mod
    from .accounts import get_account

    month = parse_period(period)
    with app.db.read() as conn:
        acct = get_account(conn, account)
        histories, ids = load_histories(
            conn, app.now(), catalog_mod.load(), _overage_begins(app), account
        )
        if product is not None:
            if product not in {h.contract.product for h in histories}:
                have = sorted(h.contract.product for h in histories) or ["(no contract)"]
                raise BadInput(f"product of account {account!r}", product, have)
            histories = [h for h in histories if h.contract.product == product]
        billed, prior = billing_state(conn, [h.contract.id for h in histories])
        issued = [
            inv
            for inv in issued_invoices(conn, acct.id)
            if inv["period"] == month.strftime("%Y-%m")
        ]
    drafts = draft_invoices(histories, month, billed, prior, ids)
    currency = (
        drafts[0].currency if drafts else (histories[0].contract.currency if histories else "USD")
    )
    lines = [ln.as_dict() for d in drafts for ln in d.lines]
    issued_lines = [
        ln for inv in issued for ln in inv["lines"] if product is None or ln["product"] == product
    ]
    all_lines = issued_lines + lines
    total = sum((Decimal(ln["amount"]) for ln in all_lines), Decimal("0.00"))
    return {
        "account": account,
        "period": month.strftime("%Y-%m"),
        "currency": currency,
        "total": str(total),
        "lines": all_lines,
        "issued": [inv["number"] for inv in issued],
        "pending": len(lines),
    }


def run(app: App, period: str, actor: str | None = None) -> dict[str, Any]:
    """Issue the month's invoices for every account. Idempotent: a period already invoiced for
    a contract is skipped, so a second run issues nothing."""
    from . import catalog as catalog_mod

    month = parse_period(period)
    now = app.now()
    if month > now.date():
        raise BadInput(
            "period", period, f"a month that has begun by {now.date()} (use `billing preview`)"
        )
    with app.write() as conn:
        if conn.dialect.name == "postgresql":
            # Two runs at once would both find the month unbilled; the second waits here and
            # then sees the first one's billed periods (SQLite's BEGIN IMMEDIATE already waits).
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('seatgate.billing.run'))"))
        histories, ids = load_histories(conn, now, catalog_mod.load(), _overage_begins(app))
        billed, prior = billing_state(conn)
        drafts = draft_invoices(histories, month, billed, prior, ids)
        issued = [issue(conn, d, now) for d in drafts]
        record_run(conn, month.strftime("%Y-%m"), now, len(issued), actor)
    total = sum((Decimal(i["total"]) for i in issued), Decimal("0.00"))
    return {
        "period": month.strftime("%Y-%m"),
        "issued": issued,
        "count": len(issued),
        "total": str(total),
    }


def invoices_of(app: App, account: str) -> dict[str, Any]:
    from .accounts import get_account

    with app.db.read() as conn:
        acct = get_account(conn, account)
        return {"account": account, "invoices": issued_invoices(conn, acct.id)}
