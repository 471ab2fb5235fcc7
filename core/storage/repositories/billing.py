"""Billing's tables in SQL: contract histories as of an instant, invoices (append-only), purchase
commitments, plan changes, seats bought, uninstalls and tickets."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from ...clock import start_of
from ...domain.billing import AddOn, Draft, History, PlanChange, Purchase, Ticket, Uninstall
from ...domain.calendar import Interval, month_to_month
from ...domain.catalog import Catalog
from ...domain.model import Contract
from ...domain.seats import LedgerRow, held_counts
from ...domain.vocabulary import TicketKind
from ..tables import (
    accounts,
    audit_log,
    billed_periods,
    commitments,
    invoice_lines,
    invoices,
    plan_changes,
    purchases,
    seat_ledger,
    tickets,
    uninstalls,
)
from .contracts import SqlContractStore
from .orders import SqlAddOnStore

__all__ = ["SqlBillingStore"]


class SqlBillingStore:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def histories(
        self,
        at: dt.datetime,
        catalog: Catalog,
        overage_begins: dt.date | None,
        account: str | None = None,
        product: str | None = None,
    ) -> tuple[list[History], dict[str, int]]:
        """Every contract's history as known at ``at``: rows stamped later (written under a later
        ``--as-of``) are not seen, and seats are what the ledger rows stamped by then made
        (:func:`~seatgate.core.domain.seats.held_counts`). Returns the histories and account ids
        by name."""
        conn = self.conn
        ids_q = sa.select(accounts.c.name, accounts.c.id)
        if account is not None:
            ids_q = ids_q.where(accounts.c.name == account)
        account_ids = {name: aid for name, aid in conn.execute(ids_q)}
        contracts = [
            c
            for c in SqlContractStore(conn).list(account, created_by=at)
            if c.account in account_ids and product in (None, c.product)
        ]
        by_id = {c.id: c for c in contracts}
        key_of = {(account_ids[c.account], c.product): c.id for c in contracts}
        scoped = list(account_ids.values()) if account is not None else None

        rows: dict[int, list[LedgerRow]] = defaultdict(list)
        q = sa.select(
            seat_ledger.c.account_id,
            seat_ledger.c.product,
            seat_ledger.c.at,
            seat_ledger.c.user_id,
            seat_ledger.c.action,
        ).where(seat_ledger.c.at <= at)
        if scoped is not None:
            q = q.where(seat_ledger.c.account_id.in_(scoped))
        if product is not None:
            q = q.where(seat_ledger.c.product == product)
        for aid, prod, when, user, action in conn.execute(q.order_by(seat_ledger.c.id)):
            cid = key_of.get((aid, prod))
            if cid is not None:
                rows[cid].append((when, user, action))
        ledger = {cid: [(when.date(), n) for when, n in held_counts(r)] for cid, r in rows.items()}
        qty, initial = self._quantity_changes(account_ids, key_of, at, account)
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
        gone, opened = self._uninstalls_and_tickets(set(by_id), at)
        extras: dict[int, list[AddOn]] = defaultdict(list)
        for activation in SqlAddOnStore(conn).for_contracts(list(by_id), at):
            extras[activation.contract_id].append(activation.as_addon())
        histories = [
            History(
                contract=c,
                charge_model=c.charge_model
                or catalog.charge_model(c.product, c.plan, c.term_start),
                quantity_changes=qty.get(c.id, ()),
                initial_quantity=initial.get(c.id),
                ledger=ledger.get(c.id, ()),
                purchases=bought.get(c.id, ()),
                plan_changes=changes.get(c.id, ()),
                uninstalls=gone.get(c.id, ()),
                tickets=opened.get(c.id, ()),
                overage_begins=overage_begins,
                add_ons=extras.get(c.id, ()),
                listed=catalog.listed_prices(c.product, c.plan, c.currency)
                if month_to_month(c)
                else (),
            )
            for c in contracts
        ]
        return histories, account_ids

    def _quantity_changes(
        self,
        account_ids: Mapping[str, int],
        key_of: Mapping[tuple[int, str], int],
        at: dt.datetime | None,
        account: str | None,
    ) -> tuple[dict[int, list[tuple[dt.datetime, int, int]]], dict[int, int]]:
        """``(instant, from, to)`` of the contracted-quantity changes (audited as
        ``contract.quantity``) per contract, in write order, stamped on or before ``at``; and the
        quantity each contract was created with (the first change's ``from``, of all of them)."""
        qty: dict[int, list[tuple[dt.datetime, int, int]]] = defaultdict(list)
        initial: dict[int, int] = {}
        aq = sa.select(audit_log.c.account, audit_log.c.at, audit_log.c.detail).where(
            audit_log.c.action == "contract.quantity"
        )
        if account is not None:
            aq = aq.where(audit_log.c.account == account)
        for name, when, detail in self.conn.execute(aq.order_by(audit_log.c.id)):
            cid = key_of.get((account_ids.get(name, -1), detail.get("product")))
            if cid is None:
                continue
            initial.setdefault(cid, int(detail["from"]))
            if at is None or when <= at:
                qty[cid].append((when, int(detail["from"]), int(detail["to"])))
        return qty, initial

    def _uninstalls_and_tickets(
        self, contract_ids: set[int], at: dt.datetime | None
    ) -> tuple[dict[int, list[Uninstall]], dict[int, list[Ticket]]]:
        """Per contract, its uninstalls and its tickets as known at ``at`` (None: now). A ticket
        withdrawn by then is gone; a renewal quantity set after ``at`` is not known yet."""
        conn = self.conn

        def seen(when: dt.datetime | None) -> bool:
            return when is not None and (at is None or when <= at)

        uq, tq = sa.select(uninstalls), sa.select(tickets)
        if len(contract_ids) <= 100:
            uq = uq.where(uninstalls.c.contract_id.in_(sorted(contract_ids)))
            tq = tq.where(tickets.c.contract_id.in_(sorted(contract_ids)))
        requests: dict[int, list[Any]] = defaultdict(list)
        for row in conn.execute(uq.order_by(uninstalls.c.id)):
            if row.contract_id in contract_ids and seen(row.requested_at):
                requests[row.contract_id].append(row)
        cancelled: set[int] = set()
        opened: dict[int, list[Ticket]] = defaultdict(list)
        for row in conn.execute(tq.order_by(tickets.c.id)):
            if row.contract_id not in contract_ids or not seen(row.opened_at):
                continue
            if seen(row.withdrawn_at):
                continue
            if row.kind == TicketKind.BILLING_CANCELLATION:
                target = row.uninstall_id
                if target is None:  # a ticket of before billing_b_0003: the uninstall before it
                    earlier = [
                        u for u in requests[row.contract_id] if u.requested_at <= row.opened_at
                    ]
                    target = earlier[-1].id if earlier else None
                if target is not None:
                    cancelled.add(target)
            quantity = row.renewal_quantity if seen(row.resolved_at) else None
            opened[row.contract_id].append(Ticket(row.id, row.kind, row.opened_at.date(), quantity))
        gone = {
            cid: [
                Uninstall(
                    u.effective,
                    u.reinstalled_at.date() if seen(u.reinstalled_at) else None,
                    u.id in cancelled,
                )
                for u in rows
            ]
            for cid, rows in requests.items()
        }
        return gone, opened

    def contracted_on(self, contract: Contract, at: dt.datetime) -> int:
        """The contracted quantity in force at ``at`` (:meth:`History.contracted_on`): the
        changes stamped by then, and a renewal a ``renewal_adjustment`` ticket adjusted."""
        account_ids = {contract.account: self._account_id(contract.account)}
        key_of = {(account_ids[contract.account], contract.product): contract.id}
        qty, initial = self._quantity_changes(account_ids, key_of, at, contract.account)
        _, opened = self._uninstalls_and_tickets({contract.id}, at)
        adjusting = [
            t for t in opened.get(contract.id, ()) if t.kind == TicketKind.RENEWAL_ADJUSTMENT
        ]
        ledger: list[tuple[dt.date, int]] = []
        if adjusting:  # the users held at the renewal may be the renewal quantity
            rows = self.conn.execute(
                sa.select(seat_ledger.c.at, seat_ledger.c.user_id, seat_ledger.c.action)
                .where(
                    seat_ledger.c.account_id == account_ids[contract.account],
                    seat_ledger.c.product == contract.product,
                    seat_ledger.c.at <= at,
                )
                .order_by(seat_ledger.c.id)
            ).all()
            ledger = [(when.date(), n) for when, n in held_counts([tuple(r) for r in rows])]
        history = History(
            contract=contract,
            charge_model="",
            quantity_changes=qty.get(contract.id, ()),
            initial_quantity=initial.get(contract.id),
            ledger=ledger,
            tickets=adjusting,
        )
        return history.contracted_on(at)

    def _account_id(self, name: str) -> int:
        return int(
            self.conn.execute(sa.select(accounts.c.id).where(accounts.c.name == name)).scalar_one()
        )

    def state(
        self, contract_ids: Iterable[int] | None = None
    ) -> tuple[dict[int, list[Interval]], dict[tuple[int, dt.date], list[dict[str, Any]]]]:
        """Which contract billing periods are invoiced, and the lines issued for each."""
        conn = self.conn
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

    def months_run(self) -> set[dt.date]:
        # A run's audit row has no account (the index on account, at finds them).
        rows = self.conn.execute(
            sa.select(audit_log.c.detail).where(
                audit_log.c.account.is_(None), audit_log.c.action == "billing.run"
            )
        )
        months: set[dt.date] = set()
        for (detail,) in rows:
            period = detail.get("period") if isinstance(detail, dict) else None
            if isinstance(period, str) and len(period) == 7:
                months.add(dt.date(int(period[:4]), int(period[5:]), 1))
        return months

    def issue(self, draft: Draft, at: dt.datetime) -> dict[str, Any]:
        """Write one invoice. Its billed periods are keyed on (contract, period start): a second run
        that slipped past the check would fail on the key rather than bill twice."""
        conn = self.conn
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
        if draft.periods:  # a run may issue true-up lines alone (no period starts this month)
            conn.execute(
                billed_periods.insert(),
                [
                    {
                        "contract_id": cid,
                        "period_start": a,
                        "period_end": b,
                        "invoice_id": invoice_id,
                    }
                    for cid, (a, b) in draft.periods
                ],
            )
        total = draft.total.amount
        return {"number": number, "account": draft.account, "currency": draft.currency,
                "total": str(total)}  # fmt: skip

    def issued_invoices(
        self, account_id: int, at: dt.datetime | None = None
    ) -> list[dict[str, Any]]:
        conn = self.conn
        query = sa.select(invoices).where(invoices.c.account_id == account_id)
        if at is not None:  # only what was issued by then
            query = query.where(invoices.c.issued_at <= at)
        rows = conn.execute(query.order_by(invoices.c.id)).all()
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

    def lock_runs(self) -> None:
        """Serialise billing runs: two at once would both find the month unbilled. PostgreSQL takes
        an advisory lock for the transaction; SQLite's BEGIN IMMEDIATE already waits."""
        if self.conn.dialect.name == "postgresql":
            self.conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(hashtext('seatgate.billing.run'))")
            )

    # -- purchases -------------------------------------------------------------------------------
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
    ) -> bool:
        """One purchase commitment; with ``event_id``, at most one per event (a redelivered
        event records nothing new). True when a row was written."""
        if event_id is not None:
            seen = self.conn.execute(
                sa.select(commitments.c.id).where(commitments.c.event_id == event_id)
            ).first()
            if seen is not None:
                return False
        self.conn.execute(
            commitments.insert().values(
                account_id=account_id,
                product=product,
                actor=actor,
                at=at,
                action=action,
                detail=dict(detail),
                price_shown=price_shown,
                currency=currency,
                event_id=event_id,
            )
        )
        return True

    def commitments(self, account_id: int, at: dt.datetime | None = None) -> list[dict[str, Any]]:
        query = sa.select(commitments).where(commitments.c.account_id == account_id)
        if at is not None:  # only what was committed by then
            query = query.where(commitments.c.at <= at)
        rows = self.conn.execute(query.order_by(commitments.c.id))
        return [dict(r._mapping) for r in rows]

    def plan_in_force(self, contract: Contract, day: dt.date) -> PlanChange | None:
        """The plan change in force on ``day`` (None: the contracted plan's terms), as
        :meth:`History.plan_in_force` finds it."""
        rows = self.conn.execute(
            sa.select(plan_changes)
            .where(plan_changes.c.contract_id == contract.id, plan_changes.c.effective <= day)
            .order_by(plan_changes.c.id)
        ).all()
        history = History(
            contract=contract,
            charge_model="",
            plan_changes=[
                PlanChange(r.id, r.effective, r.plan, r.charge_model, r.unit_price) for r in rows
            ],
        )
        return history.plan_in_force(day)

    def selected_plan(self, contract_id: int) -> str | None:
        """The plan of the latest plan change, or None (the contracted plan is in force)."""
        row = self.conn.execute(
            sa.select(plan_changes.c.plan)
            .where(plan_changes.c.contract_id == contract_id)
            .order_by(plan_changes.c.id.desc())
            .limit(1)
        ).first()
        return None if row is None else str(row[0])

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
    ) -> None:
        self.conn.execute(
            plan_changes.insert().values(
                contract_id=contract_id,
                plan=plan,
                charge_model=charge_model,
                unit_price=unit_price,
                effective=effective,
                at=at,
                actor=actor,
            )
        )

    def purchase_by_key(
        self, account_id: int, key: str
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(request, result) of the account's seat purchase made with idempotency key ``key``:
        a key belongs to one account, and another account's purchases are never looked at."""
        row = self.conn.execute(
            sa.select(purchases.c.request, purchases.c.result).where(
                purchases.c.account_id == account_id, purchases.c.idempotency_key == key
            )
        ).first()
        return None if row is None else (row.request, row.result)

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
    ) -> None:
        self.conn.execute(
            purchases.insert().values(
                idempotency_key=key,
                contract_id=contract_id,
                account_id=account_id,
                request=dict(request),
                quantity=quantity,
                unit_price=unit_price,
                effective=effective,
                at=at,
                actor=actor,
                result=dict(result),
            )
        )

    # -- uninstalls and tickets ------------------------------------------------------------------
    def pending_uninstall(self, contract_id: int) -> tuple[int, dt.date] | None:
        """``(id, effective day)`` of the contract's uninstall no install came after, or None."""
        row = self.conn.execute(
            sa.select(uninstalls.c.id, uninstalls.c.effective)
            .where(uninstalls.c.contract_id == contract_id, uninstalls.c.reinstalled_at.is_(None))
            .order_by(uninstalls.c.id.desc())
            .limit(1)
        ).first()
        return None if row is None else (int(row.id), row.effective)

    def uninstall_effective(self, contract_id: int) -> dt.date | None:
        pending = self.pending_uninstall(contract_id)
        return None if pending is None else pending[1]

    def add_uninstall(
        self, contract_id: int, *, requested_at: dt.datetime, effective: dt.date, actor: str
    ) -> int:
        return int(
            self.conn.execute(  # type: ignore[index]
                uninstalls.insert().values(
                    contract_id=contract_id,
                    requested_at=requested_at,
                    effective=effective,
                    actor=actor,
                )
            ).inserted_primary_key[0]
        )

    def reinstall(self, contract_id: int, at: dt.datetime) -> tuple[dt.date, bool] | None:
        """An install at ``at`` after an uninstall: marks it ``reinstalled_at``; before its
        effective day that withdraws it and its cancellation tickets. Returns (effective day,
        withdrawn) or None when no uninstall was pending."""
        pending = self.pending_uninstall(contract_id)
        if pending is None:
            return None
        uninstall_id, effective = pending
        self.conn.execute(
            uninstalls.update().where(uninstalls.c.id == uninstall_id).values(reinstalled_at=at)
        )
        withdrawn = at < start_of(effective)
        if withdrawn:
            self.conn.execute(
                tickets.update()
                .where(
                    tickets.c.contract_id == contract_id,
                    tickets.c.kind == TicketKind.BILLING_CANCELLATION,
                    tickets.c.withdrawn_at.is_(None),
                    sa.or_(
                        tickets.c.uninstall_id == uninstall_id, tickets.c.uninstall_id.is_(None)
                    ),
                )
                .values(withdrawn_at=at)
            )
        return effective, withdrawn

    def open_ticket(
        self,
        contract_id: int,
        *,
        kind: str,
        at: dt.datetime,
        actor: str | None,
        uninstall_id: int | None = None,
    ) -> int:
        return int(
            self.conn.execute(  # type: ignore[index]
                tickets.insert().values(
                    contract_id=contract_id,
                    kind=kind,
                    opened_at=at,
                    actor=actor,
                    uninstall_id=uninstall_id,
                )
            ).inserted_primary_key[0]
        )

    def ticket(self, ticket_id: int) -> dict[str, Any] | None:
        row = self.conn.execute(sa.select(tickets).where(tickets.c.id == ticket_id)).first()
        return None if row is None else dict(row._mapping)

    def resolve_ticket(
        self, ticket_id: int, *, renewal_quantity: int, at: dt.datetime, actor: str
    ) -> None:
        self.conn.execute(
            tickets.update()
            .where(tickets.c.id == ticket_id)
            .values(renewal_quantity=renewal_quantity, resolved_at=at, resolved_by=actor)
        )
