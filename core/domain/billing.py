"""Billing, pure: what each contract owes, period by period, as invoice lines.

The rules live here, each under the seed's own words (seed 002 "Purchase Terms and Billing", and
the overage rule of seed 000); docs/billing.md explains them with a worked example.

How a charge is found. For one contract billing period, :func:`owed` lays out *seat slots*: slot
``n`` of a charge (``base``, ``seats_purchased``, ``additional_seats``, ``overage``,
``plan_change``, ``add_on``) is billed over the days it is held. An invoice bills the new period in full as
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
from collections.abc import Collection, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs

from ..clock import start_of
from ..errors import BadInput
from .calendar import (
    Interval,
    add_months,
    full_period,
    period_containing,
    periods_of_term,
    periods_starting_in,
    term_index,
    term_start,
)
from .model import Contract
from .money import Money, money_text
from .pricing import charge
from .seats import seats_above_contract
from .slots import Band, Rect, SlotBands, normalize, sweep
from .vocabulary import ChargeModel, LineKind, SeatMode, TicketKind

__all__ = [
    "LINE_KINDS",
    "TICKET_KINDS",
    "AddOn",
    "Draft",
    "History",
    "Line",
    "PlanChange",
    "Purchase",
    "Ticket",
    "Uninstall",
    "addon_quote",
    "draft_invoices",
    "invoice_dict",
    "owed",
    "parse_period",
    "period_containing",
    "plan_change_quote",
    "purchase_quote",
    "removing_users_doesnt_impact_billing",
    "rest_of_term",
]

LINE_KINDS: tuple[str, ...] = tuple(LineKind)
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
    """Seats bought (``seats buy``): ``quantity`` more from ``effective``, co-termed."""

    id: int
    effective: dt.date
    quantity: int
    unit_price: Decimal


@attrs.frozen
class PlanChange:
    """A base plan selected on ``effective`` at its then-listed ``unit_price`` (seed 002)."""

    id: int
    effective: dt.date
    plan: str
    charge_model: str
    unit_price: Decimal


@attrs.frozen
class AddOn:
    """An add-on plan the partner activated (seed 002: "App Add-on Plans ... will be activated in
    your Account by the Partner, based on contracted terms"): ``quantity`` slots (1 for a
    per-account add-on) at ``unit_price`` a month, from ``effective`` (inclusive) to ``ends``
    (exclusive: the end of the term its deactivation was asked in, like an uninstall; None while
    active), billed under the contract's frequency and co-termed like seats bought."""

    id: int
    plan: str
    charge_model: str
    quantity: int
    unit_price: Decimal
    effective: dt.date
    ends: dt.date | None = None

    def active_on(self, day: dt.date) -> bool:
        return self.effective <= day and (self.ends is None or day < self.ends)


@attrs.frozen
class Ticket:
    """A billing ticket with Support (seed 002). ``renewal_quantity``: the contracted quantity
    Support set for the renewal a ``renewal_adjustment`` ticket asks for (None: not set yet)."""

    id: int
    kind: str
    opened: dt.date
    renewal_quantity: int | None = None


@attrs.frozen
class Uninstall:
    """An uninstall that takes effect on ``effective`` (the end of the term it was asked in).

    :param reinstalled: the day the app was installed again, if it was: before ``effective`` that
        withdrew the uninstall; on or after it, a new purchase from that day.
    :param cancelled: a ``billing_cancellation`` ticket (not withdrawn) exists for it.
    """

    effective: dt.date
    reinstalled: dt.date | None = None
    cancelled: bool = False


@attrs.frozen
class History:
    """Everything billing needs about one contract, as known at one instant (pure data).

    :param quantity_changes: ``(instant, from, to)`` of every contracted-quantity change, in write
        order (a renewal adjustment is not one: it is computed, see :meth:`contracted_on`).
    :param ledger: ``(day, seats held right after)``, in time order
        (:func:`~.seats.held_counts`).
    :param initial_quantity: the contracted quantity the contract was created with (the changes
        known at the instant may be fewer than were made since).
    """

    contract: Contract
    charge_model: str  # of the contracted base plan
    quantity_changes: Sequence[tuple[dt.datetime, int, int]] = ()
    ledger: Sequence[tuple[dt.date, int]] = ()
    purchases: Sequence[Purchase] = ()
    plan_changes: Sequence[PlanChange] = ()
    uninstalls: Sequence[Uninstall] = ()
    tickets: Sequence[Ticket] = ()
    overage_begins: dt.date | None = None
    initial_quantity: int | None = None  # as created (None: the first change's, or the contract's)
    add_ons: Sequence[AddOn] = ()
    # A self-serve contract's plan as the catalog lists it: (effective, monthly price) per
    # version, in date order (seed 002: self-serve is billed "month to month" at "the then
    # listed price"). Empty for other contracts: they keep the price they were signed at.
    listed: Sequence[tuple[dt.date, Decimal]] = ()

    def unit_price_on(self, day: dt.date) -> Decimal:
        """The contract's monthly seat price for a billing period starting on ``day``: its own
        unit price, or — self-serve — the price listed on ``day`` by a catalog version that took
        effect after the contract started (the price it was bought at until then)."""
        price = self.contract.unit_price
        for effective, listed in self.listed:
            if self.contract.term_start < effective <= day:
                price = listed
        return price

    # -- the contracted quantity ---------------------------------------------------------------------
    def renewal_adjustment(self, k: int) -> Ticket | None:
        """The ``renewal_adjustment`` ticket opened during term ``k`` (the one Support set a
        quantity on last, else the last one), or None."""
        c = self.contract
        t0, t1 = term_start(c, k), term_start(c, k + 1)
        found = [
            t
            for t in self.tickets
            if t.kind == TicketKind.RENEWAL_ADJUSTMENT and t0 <= t.opened < t1
        ]
        resolved = [t for t in found if t.renewal_quantity is not None]
        chosen = resolved or found
        return chosen[-1] if chosen else None

    def _renewals(self) -> list[tuple[dt.date, int]]:
        """``(renewal day, contracted quantity from then)`` of each renewal a
        ``renewal_adjustment`` ticket adjusts: the quantity Support set, else the users held at
        the renewal (seed 002: "To trigger Billing adjustments at renewal, you need to issue a
        Billing ticket")."""
        out = []
        terms = sorted(
            {
                term_index(self.contract, t.opened)
                for t in self.tickets
                if t.kind == TicketKind.RENEWAL_ADJUSTMENT
            }
        )
        for k in terms:
            ticket = self.renewal_adjustment(k)
            assert ticket is not None
            day = term_start(self.contract, k + 1)
            q = ticket.renewal_quantity
            out.append((day, self.assigned_before(day) if q is None else q))
        return out

    def _quantity(self, explicit_until: dt.datetime, renewals_until: dt.date) -> int:
        """The latest of: the explicit changes stamped before ``explicit_until`` (the last one
        written), and the adjusted renewals on or before ``renewals_until``."""
        q = self.initial_quantity
        if q is None:
            q = self.quantity_changes[0][1] if self.quantity_changes else self.contract.quantity
        latest: dt.date | None = None
        for when, _, to in self.quantity_changes:
            if when < explicit_until:
                q, latest = to, when.date()
        for day, value in self._renewals():
            if day <= renewals_until and (latest is None or day > latest):
                q = value
        return q

    def contracted_on(self, at: dt.datetime) -> int:
        """The contracted quantity in force at ``at``: what seats, checks and quotes use."""
        return self._quantity(at + _TICK, at.date())

    def quantity_before(self, day: dt.date) -> int:
        """The contracted quantity a term starting on ``day`` starts with: changes made before
        that day, and the renewal adjustment of that day if there is one."""
        return self._quantity(start_of(day), day)

    def assigned_before(self, day: dt.date) -> int:
        """Seats held at the start of ``day`` (after every change of the days before)."""
        n = 0
        for when, after in self.ledger:
            if when >= day:
                break
            n = after
        return n

    # -- the seats billed ----------------------------------------------------------------------------
    def peak(self, since: dt.date, upto: dt.date) -> int:
        """The most seats held from the start of ``since`` to the end of ``upto``."""
        top = self.assigned_before(since)
        for when, after in self.ledger:
            if when > upto:
                break
            if when >= since:
                top = max(top, after)
        return top

    def countable_peak(self, j: int, upto: dt.date) -> int:
        """The peak held in term ``j`` up to ``upto`` that can be billed above the contract:
        auto_expand counts the whole term (seed 002, additional users); hard_cap only from the
        overage-billing date (seed 000: customers *continuing* to be in overage), never before."""
        t0 = term_start(self.contract, j)
        if self.contract.mode == SeatMode.AUTO_EXPAND:
            return self.peak(t0, upto)
        if self.overage_begins is None or upto < self.overage_begins:
            return 0
        return self.peak(max(t0, self.overage_begins), upto)

    def contracted_in_term(self, j: int, upto: dt.date) -> int:
        """Contracted seats in term ``j`` on ``upto``: the term's quantity plus the seats bought
        in the term by then."""
        c = self.contract
        t0, t1 = term_start(c, j), term_start(c, j + 1)
        bought = sum(p.quantity for p in self.purchases if t0 <= p.effective <= upto < t1)
        return self.quantity_before(t0) + bought

    def selected_users(self, j: int, upto: dt.date) -> int:
        """Seed 002's "all selected Users" of a plan change, and the billable seats of a term:
        max(contracted, the term's peak), never below what the last term carried over (seed 002
        "Removing Users doesn't Impact Billing"). The quote of a plan change and its invoice lines
        both ask this."""
        t0 = term_start(self.contract, j)
        floor = removing_users_doesnt_impact_billing(self, j)
        return max(self.contracted_in_term(j, upto), floor, self.peak(t0, upto))

    def plan_in_force(self, day: dt.date) -> PlanChange | None:
        """The plan change in force on ``day``, or None when the contracted plan is (seed 002: no
        extra charge "unless you ... select a different plan than the contracted Base Plan", so
        selecting the contracted plan again brings back the contract's terms)."""
        change = next((p for p in reversed(self.plan_changes) if p.effective <= day), None)
        if change is None or change.plan == self.contract.plan:
            return None
        return change

    # -- when billing stops --------------------------------------------------------------------------
    def gaps(self) -> list[tuple[dt.date, dt.date | None]]:
        """``[stop, resume)`` of each stretch billing is stopped: an uninstall took effect with a
        cancellation ticket, until the app was installed again (None: never)."""
        out: list[tuple[dt.date, dt.date | None]] = []
        for u in self.uninstalls:
            if not u.cancelled or (u.reinstalled is not None and u.reinstalled <= u.effective):
                continue
            out.append((u.effective, u.reinstalled))
        return out

    def billing_stops(self) -> dt.date | None:
        """Seed 002: "Uninstalling the App will take effect at the end of the product's current
        contracted term and requires you to issue a Billing ticket ... to trigger Billing
        Cancellation." The day billing stopped for good (an uninstall with a cancellation ticket
        that no install came after), or None."""
        for stop, resume in reversed(self.gaps()):
            return stop if resume is None else None
        return None

    def billed_on(self, day: dt.date) -> bool:
        return not any(
            stop <= day and (resume is None or day < resume) for stop, resume in self.gaps()
        )


_TICK = dt.timedelta(microseconds=1)


def removing_users_doesnt_impact_billing(h: History, j: int) -> int:
    """Seed 002, "Removing Users doesn't Impact Billing": the seats a term starts billed for —
    the billable seats (max of contracted and the countable peak) the previous term ended with,
    carried over at renewal unless a ``renewal_adjustment`` ticket was opened during that term
    (then the renewal bills max(the renewal quantity, the users held))."""
    floor = 0
    for k in range(1, j + 1):
        last_day = term_start(h.contract, k) - dt.timedelta(days=1)
        contracted = h.contracted_in_term(k - 1, last_day)
        peak = max(floor, h.countable_peak(k - 1, last_day))
        billable = max(contracted, peak)
        floor = 0 if h.renewal_adjustment(k - 1) is not None else billable
    return floor


def owed(h: History, j: int, period: Interval) -> dict[SlotKey, SlotBands]:
    """What the contract owes for one billing period of term ``j``: per charge, its slots as
    bands (:mod:`.slots`) — the work grows with the events of the period, not with its seats."""
    c = h.contract
    a, b = period
    rects: dict[SlotKey, list[Rect]] = defaultdict(list)
    if a >= b:
        return {}
    t0, t1 = term_start(c, j), term_start(c, j + 1)
    unit = h.unit_price_on(a)  # the period's price: self-serve follows the listed one
    base_q = h.quantity_before(t0)
    term_purchases = [p for p in h.purchases if t0 <= p.effective < t1]
    floor = removing_users_doesnt_impact_billing(h, j)
    events = {d for d, _ in h.ledger if a < d < b}
    events |= {p.effective for p in term_purchases if a < p.effective < b}
    events |= {p.effective for p in h.plan_changes if a < p.effective < b}
    events |= {d for gap in h.gaps() for d in gap if d is not None and a < d < b}
    events |= {d for x in h.add_ons for d in (x.effective, x.ends) if d is not None and a < d < b}
    if h.overage_begins and a < h.overage_begins < b:
        events.add(h.overage_begins)
    bounds = [a, *sorted(events), b]
    for s, e in itertools.pairwise(bounds):
        if not h.billed_on(s):
            continue
        bought = [p for p in term_purchases if p.effective <= s]
        contracted = base_q + sum(p.quantity for p in bought)

        def hold(key: SlotKey, count: int, s: dt.date = s, e: dt.date = e) -> None:
            # Slots 1..count held from s to e: one rectangle, whatever the count.
            if count > 0:
                rects[key].append((1, count, (s, e)))

        for x in h.add_ons:
            if x.active_on(s):
                # Seed 002: add-on plans are activated by the partner "based on contracted
                # terms": from the activation day, under the contract's frequency and term,
                # whatever base plan is in force.
                hold(("add_on", x.unit_price, x.id), x.quantity)

        change = h.plan_in_force(s)
        if change is not None:
            # Seed 002: "Selecting a Base Plan different from the contracted one will trigger
            # billing for the new Plan, for all selected Users, at the then listed price".
            users = 1 if change.charge_model == ChargeModel.PER_ACCOUNT else h.selected_users(j, s)
            hold(("plan_change", change.unit_price, change.id), users)
            continue
        if h.charge_model == ChargeModel.PER_ACCOUNT:
            # Seed 002: "charged once, per Talkdesk account, independently of the number of
            # activated seats".
            hold(("base", unit, 0), 1)
            continue
        hold(("base", unit, 0), base_q)
        for p in bought:
            hold(("seats_purchased", p.unit_price, p.id), p.quantity)
        extra = seats_above_contract(contracted, max(floor, h.countable_peak(j, s)))
        if extra and c.mode == SeatMode.AUTO_EXPAND:
            # Seed 002: "Adding Users above contracted quantities will trigger billing for the
            # additional quantities under contracted terms."
            hold(("additional_seats", unit, 0), extra)
        elif extra and h.overage_begins and s >= h.overage_begins:
            # Seed 000: "customers continuing to be in overage will be billed for the additional
            # users" — seats held above the contract on or after the overage-billing date.
            hold(("overage", unit, 0), extra)
    return {key: SlotBands.of(items) for key, items in rects.items()}


def _extend(intervals: list[Interval], s: dt.date, e: dt.date) -> None:
    if intervals and intervals[-1][1] == s:
        intervals[-1] = (intervals[-1][0], e)
    else:
        intervals.append((s, e))


_normalize = normalize


def _net(charged: Iterable[Interval], credited: Iterable[Interval]) -> list[Interval]:
    """The days a slot's invoices cover: charged days net of credited ones, counted — a day
    charged, credited and charged again (a plan selected, then the contracted plan again) is
    covered once, never twice."""
    steps: dict[dt.date, int] = defaultdict(int)
    for s, e in charged:
        steps[s] += 1
        steps[e] -= 1
    for s, e in credited:
        steps[s] -= 1
        steps[e] += 1
    out: list[Interval] = []
    depth = 0
    opened: dt.date | None = None
    for day in sorted(steps):
        depth += steps[day]
        if depth > 0 and opened is None:
            opened = day
        elif depth <= 0 and opened is not None:
            _extend(out, opened, day)
            opened = None
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
    slots: Mapping[SlotKey, SlotBands],
    sign: int,
) -> list[Line]:
    """Group slot bands into lines: same charge, same days, contiguous slots."""
    c = h.contract
    since = term_start(c, j)
    grouped: dict[tuple[SlotKey, dt.date, dt.date], list[tuple[int, int]]] = defaultdict(list)
    for key, per_slot in slots.items():
        for lo, hi, intervals in per_slot.bands:
            for s, e in intervals:
                grouped[(key, s, e)].append((lo, hi))
    out = []
    for (key, s, e), members in sorted(grouped.items(), key=_line_order):
        kind, unit, ref = key
        members.sort()
        runs: list[tuple[int, int]] = []
        for lo, hi in members:
            if runs and runs[-1][1] + 1 == lo:
                runs[-1] = (runs[-1][0], hi)
            else:
                runs.append((lo, hi))
        for run in runs:
            qty = run[1] - run[0] + 1
            money = charge(unit, qty, c.currency, anchor=c.term_start, since=since, start=s, end=e)
            out.append(
                Line(
                    contract_id=c.id,
                    product=c.product,
                    kind=kind if sign > 0 else "proration",
                    charge_kind=kind,
                    ref=ref,
                    slot_lo=run[0],
                    slot_hi=run[1],
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


def _line_order(
    item: tuple[tuple[SlotKey, dt.date, dt.date], list[tuple[int, int]]],
) -> tuple[Any, ...]:
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
    price = f"{money_text(unit, c.currency)}/month"
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
    elif kind == "add_on":
        x = next(a for a in h.add_ons if a.id == ref)
        what = (
            f"{x.plan} add-on, per account ({price})"
            if x.charge_model == ChargeModel.PER_ACCOUNT
            else f"{x.plan} add-on, {seats} at {price} each"
        )
    elif kind == "overage":
        what = (
            f"{seats} held above the contracted seats on or after the overage-billing date "
            f"{h.overage_begins}, at {price} each"
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
    months_run: Collection[dt.date] = (),
) -> list[Draft]:
    """The invoices the month's billing run would issue, per account and currency.

    For each contract: the billing periods starting in ``month`` not invoiced yet, in full as
    known now, and the true-up of the periods already invoiced that started before ``month`` (this
    term and the last; every term once billing has stopped — the final invoice carries every
    charge and credit not yet invoiced). So a purchase or an added user is invoiced by the next
    monthly run after it happens, whatever the billing frequency.

    ``months_run``: the earlier months whose run has been done (first days). A period that
    started in one of them and is not invoiced — the contract was recorded after that month's run
    (an order form entered late, backdated to its signed start), or its account was skipped —
    is invoiced by this run, in full as known now (:func:`_missed`): no later run would, since a
    period is invoiced in the month it starts. A month never run keeps its periods for its own
    run.
    """
    period = month.strftime("%Y-%m")
    drafts: dict[tuple[str, str], Draft] = {}
    for h in sorted(histories, key=lambda h: (h.contract.account, h.contract.product)):
        c = h.contract
        done = billed.get(c.id, ())
        done_set = set(done)
        stops = h.billing_stops()
        new = [
            (j, span)
            for j, span in periods_starting_in(c, month)
            if span not in done_set and (stops is None or span[0] < stops)
        ]
        more = _resumed(h, month, done_set) + _missed(h, month, months_run, done_set, stops)
        new = sorted({span: (j, span) for j, span in new + more}.values(), key=lambda p: p[1])
        lines: list[Line] = []
        if done:
            lines += _true_up(h, _true_up_since(h, month, stops), month, done, prior)
        for j, span in new:
            lines += _lines(h, j, span, owed(h, j, span), 1)
        if not new and not lines:
            continue
        key = (c.account, c.currency)
        if key not in drafts:
            drafts[key] = Draft(c.account, account_ids[c.account], period, c.currency, [], [])
        drafts[key].lines.extend(lines)
        drafts[key].periods.extend((c.id, span) for _, span in new)
    return list(drafts.values())


def _missed(
    h: History,
    month: dt.date,
    months_run: Collection[dt.date],
    done: set[Interval],
    stops: dt.date | None,
) -> list[tuple[int, Interval]]:
    """Periods that started in a month already run, before ``month``, and were never invoiced
    (that month's run came before the contract was recorded, or skipped its account). A period
    that started while billing was stopped is :func:`_resumed`'s to bill, not this one's."""
    c = h.contract
    first = c.term_start.replace(day=1)
    gaps = h.gaps()
    return [
        (j, span)
        for run in sorted(months_run)
        if first <= run < month
        for j, span in periods_starting_in(c, run)
        if span not in done
        and (stops is None or span[0] < stops)
        and not any(
            stop <= span[0] and (resume is None or span[0] < resume) for stop, resume in gaps
        )
    ]


def _resumed(h: History, month: dt.date, done: set[Interval]) -> list[tuple[int, Interval]]:
    """Periods that started while billing was stopped, before ``month``, and were never invoiced:
    once the app is installed again (a new purchase) they are billed from that day."""
    c = h.contract
    out: list[tuple[int, Interval]] = []
    for stop, resume in h.gaps():
        if resume is None or resume >= add_months(month, 1):
            continue
        j = term_index(c, stop)
        while term_start(c, j) < month:
            for span in periods_of_term(c, j):
                if stop <= span[0] < min(resume, month) and span not in done:
                    out.append((j, span))
            j += 1
    return out


def _true_up_since(h: History, month: dt.date, stops: dt.date | None) -> dt.date:
    """The first day whose invoiced periods a run of ``month`` trues up: the start of the term
    before the month's; the contract's first day once billing has stopped (the final invoice)."""
    c = h.contract
    if stops is not None and stops < add_months(month, 1):
        return c.term_start
    return term_start(c, max(0, term_index(c, month) - 1))


def _period_true_up(
    h: History,
    earlier: Interval,
    prior: Mapping[tuple[int, dt.date], Sequence[Mapping[str, Any]]],
) -> list[Line]:
    """What an invoiced period owes now minus what its invoices covered: newly owed days are
    billed, days no longer owed are credited as ``proration``."""
    c = h.contract
    k = term_index(c, earlier[0])
    now_owed = owed(h, k, earlier)
    covered: dict[SlotKey, list[Rect]] = defaultdict(list)
    credited: dict[SlotKey, list[Rect]] = defaultdict(list)
    for row in prior.get((c.id, earlier[0]), ()):
        key = (row["charge_kind"], row["unit_price"], row["ref"])
        target = covered if row["sign"] > 0 else credited
        # A line is slots slot_lo..slot_hi over one span: one rectangle, whatever its seats.
        target[key].append((row["slot_lo"], row["slot_hi"], (row["start"], row["end"])))
    new: dict[SlotKey, SlotBands] = {}
    gone: dict[SlotKey, SlotBands] = {}
    for key in set(now_owed) | set(covered) | set(credited):
        owes = now_owed.get(key, SlotBands(()))
        sources: list[Sequence[tuple[int, int, Any]]] = [
            [(lo, hi, intervals) for lo, hi, intervals in owes.bands],
            covered.get(key, []),
            credited.get(key, []),
        ]
        more: list[Band] = []
        less: list[Band] = []
        for lo, hi, (want_in, charged, credits) in sweep(sources):
            want = want_in[0] if want_in else []  # owed bands are disjoint: at most one
            # Without credits (the common case) the days covered are the days charged.
            got = _net(charged, credits) if credits else _normalize(charged)
            if want == got:  # the common case: nothing happened since the invoice
                continue
            more.append((lo, hi, _subtract(want, got)))
            less.append((lo, hi, _subtract(got, want)))
        if bands := SlotBands.merged(more):
            new[key] = bands
        if bands := SlotBands.merged(less):
            gone[key] = bands
    return _lines(h, k, earlier, new, 1) + _lines(h, k, earlier, gone, -1)


def _true_up(
    h: History,
    since: dt.date,
    before: dt.date,
    billed: Sequence[Interval],
    prior: Mapping[tuple[int, dt.date], Sequence[Mapping[str, Any]]],
) -> list[Line]:
    """True-up lines of the invoiced periods starting from ``since`` and before ``before``."""
    out: list[Line] = []
    for earlier in sorted(billed):
        if since <= earlier[0] < before:
            out += _period_true_up(h, earlier, prior)
    return out


def rest_of_term(
    h: History,
    day: dt.date,
    billed: Sequence[Interval],
    prior: Mapping[tuple[int, dt.date], Sequence[Mapping[str, Any]]],
) -> Money:
    """What the invoices still to come will bill for the periods of ``day``'s term that end after
    ``day`` (from the term start when ``day`` is before it): the true-up of the invoiced ones and
    the full lines of the others. A quote is this for the history with the purchase minus this for
    the history without it — so what is shown is what is billed, to the cent."""
    c = h.contract
    day = max(day, c.term_start)
    j = term_index(c, day)
    done = set(billed)
    total = Money.zero(c.currency)
    for span in periods_of_term(c, j):
        if span[1] <= day:
            continue
        lines = (
            _period_true_up(h, span, prior)
            if span in done
            else _lines(h, j, span, owed(h, j, span), 1)
        )
        for line in lines:
            total += line.amount
    return total


def purchase_quote(
    h: History,
    at: dt.datetime,
    quantity: int,
    unit_price: Decimal,
    billed: Sequence[Interval],
    prior: Mapping[tuple[int, dt.date], Sequence[Mapping[str, Any]]],
) -> Money:
    """What buying ``quantity`` seats at ``at`` (at ``unit_price`` a month) adds to the invoices
    of the rest of the term: :func:`rest_of_term` with the purchase minus without it — the
    amount a purchase summary shows and its commitment records (seed 002, "Purchase Summary")."""
    before = h.contracted_on(at)
    after = attrs.evolve(
        h,
        purchases=[*h.purchases, Purchase(0, at.date(), quantity, unit_price)],
        quantity_changes=[*h.quantity_changes, (at, before, before + quantity)],
    )
    return rest_of_term(after, at.date(), billed, prior) - rest_of_term(h, at.date(), billed, prior)


def addon_quote(
    h: History,
    addon: AddOn,
    billed: Sequence[Interval],
    prior: Mapping[tuple[int, dt.date], Sequence[Mapping[str, Any]]],
) -> Money:
    """What activating ``addon`` adds to the invoices of the rest of its activation day's term:
    :func:`rest_of_term` with it minus without it (prorated from the activation day, co-termed) —
    the price its commitment records, exactly what the invoices then bill."""
    after = attrs.evolve(h, add_ons=[*h.add_ons, addon])
    day = addon.effective
    return rest_of_term(after, day, billed, prior) - rest_of_term(h, day, billed, prior)


def plan_change_quote(
    h: History, day: dt.date, unit_price: Decimal, charge_model: str
) -> tuple[int, Money]:
    """``(users, price)`` of selecting a base plan at ``unit_price`` (``charge_model``) on
    ``day``: seed 002's "all selected Users" (:meth:`History.selected_users`, what the invoice's
    ``plan_change`` lines bill) for one full billing period — the next full period's line."""
    c = h.contract
    on = max(day, c.term_start)
    j, _ = period_containing(c, on)
    users = h.selected_users(j, on)
    quantity = 1 if charge_model == ChargeModel.PER_ACCOUNT else users
    a, b = full_period(c, on)
    price = charge(
        unit_price,
        quantity,
        c.currency,
        anchor=c.term_start,
        since=term_start(c, j),
        start=a,
        end=b,
    )
    return users, price


def invoice_dict(account: str, period: str, currency: str, lines: Sequence[Line]) -> dict[str, Any]:
    total = sum((ln.amount.amount for ln in lines), Decimal("0.00"))
    return {
        "account": account,
        "period": period,
        "currency": currency,
        "total": str(total),
        "lines": [ln.as_dict() for ln in lines],
    }
