"""Purchases: the purchase summary, plan changes, seats bought, uninstall, billing tickets.

Seed 002, "Purchasing Authority": "by clicking to Install and Manage an App ... you are committing
to a Purchase equivalent to a Signed Customer Order Form". Every such action needs an actor with
Install or Manage (:func:`seatgate.core.accounts.require_purchasing_authority`) and is stored as a
purchase commitment: who, when, what, and the indicative price shown (:func:`_commit`).

Seed 002, "Purchase Summary": "indicative prices based on the selected Plan, the then listed
price, and the then selected user count. It does not reflect your specific terms, nor does it
constitute a bill" — :func:`purchase_summary`, priced by the same
:func:`seatgate.core.pricing.charge` as invoices.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from . import audit, billing
from . import catalog as catalog_mod
from .accounts import get_account, require_purchasing_authority
from .billing_tables import commitments, plan_changes, purchases, tickets, uninstalls
from .contracts import find_contract, get_contract, set_quantity
from .domain import FREQUENCY_MONTHS, Account, Contract, add_months, check_choice
from .errors import BadInput, Conflict
from .pricing import charge
from .seats import SeatCount, count_assigned
from .storage.tables import installations

if TYPE_CHECKING:
    from .app import App

INDICATIVE = "indicative price: not a bill, not your contract's terms (seed 002 Purchase Summary)"


def _commit(
    conn: sa.Connection,
    acct: Account,
    product: str,
    actor: str,
    at: dt.datetime,
    action: str,
    detail: dict[str, Any],
    price_shown: Decimal | None,
    currency: str | None,
) -> None:
    conn.execute(
        commitments.insert().values(
            account_id=acct.id,
            product=product,
            actor=actor,
            at=at,
            action=action,
            detail=detail,
            price_shown=price_shown,
            currency=currency,
        )
    )


# -- purchase summary --------------------------------------------------------------------------------
def purchase_summary(
    app: App, product: str, plan: str, users: int, frequency: str = "monthly"
) -> dict[str, Any]:
    """What ``users`` users on ``plan`` cost per billing period at the then-listed price."""
    app._check_product(product)
    check_choice("frequency", frequency, tuple(FREQUENCY_MONTHS))
    if users <= 0:
        raise BadInput("--users", users, "a whole number of users, 1 or more")
    today = app.now().date()
    found = catalog_mod.load().require_base_plan(product, plan, today)
    months = FREQUENCY_MONTHS[frequency]
    quantity = 1 if found.charge_model == "per_account" else users
    end = add_months(today, months)
    price = charge(
        found.monthly_price, quantity, found.currency, anchor=today, start=today, end=end
    )
    return {
        "product": product,
        "plan": plan,
        "charge_model": found.charge_model,
        "users": users,
        "frequency": frequency,
        "list_price": str(found.monthly_price),
        "currency": found.currency,
        "per_period": str(price.amount),
        "indicative": True,
        "note": INDICATIVE,
        "as_of": today.isoformat(),
    }


# -- plan change -------------------------------------------------------------------------------------
def selected_plan(conn: sa.Connection, contract: Contract) -> str:
    row = conn.execute(
        sa.select(plan_changes.c.plan)
        .where(plan_changes.c.contract_id == contract.id)
        .order_by(plan_changes.c.id.desc())
        .limit(1)
    ).first()
    return row[0] if row else contract.plan


def change_plan(
    app: App, account: str, product: str, plan: str, actor: str | None
) -> dict[str, Any]:
    """Seed 002: "Selecting a Base Plan different from the contracted one will trigger billing
    for the new Plan, for all selected Users, at the then listed price, and under your current
    Talkdesk contract term." Effective today; the contract keeps its contracted plan on record."""
    now = app.now()
    today = now.date()
    app._check_product(product)
    found = catalog_mod.load().require_base_plan(product, plan, today)
    with app.write() as conn:
        acct = get_account(conn, account)
        contract = get_contract(conn, acct, product, lock=True)
        who = require_purchasing_authority(
            conn, acct, actor, "plan.change", now, {"product": product, "plan": plan}
        )
        current = selected_plan(conn, contract)
        if plan == current:
            raise BadInput("--plan", plan, f"a plan other than the current one ({current})")
        if found.currency != contract.currency:
            raise BadInput(
                "--plan", plan, f"a plan listed in the contract's currency {contract.currency}"
            )
        users = max(contract.quantity, count_assigned(conn, acct.id, product))
        quantity = 1 if found.charge_model == "per_account" else users
        j, (a, b) = billing.period_containing(contract, today)
        anchor = billing.term_start(contract, j)
        shown = charge(
            found.monthly_price, quantity, contract.currency, anchor=anchor, start=a, end=b
        )
        conn.execute(
            plan_changes.insert().values(
                contract_id=contract.id,
                plan=plan,
                charge_model=found.charge_model,
                unit_price=found.monthly_price,
                effective=today,
                at=now,
                actor=who,
            )
        )
        detail = {
            "from": current,
            "to": plan,
            "users": users,
            "list_price": str(found.monthly_price),
            "effective": today.isoformat(),
        }
        _commit(conn, acct, product, who, now, "plan_change", detail, shown.amount, shown.currency)
        audit.record(
            conn, at=now, action="plan.change", outcome="ok", account=account, actor=who,
            detail={"product": product, **detail},
        )  # fmt: skip
    return {
        "account": account,
        "product": product,
        **detail,
        "charge_model": found.charge_model,
        "price_per_period": str(shown.amount),
        "currency": shown.currency,
        "note": INDICATIVE,
    }


# -- uninstall and tickets ---------------------------------------------------------------------------
def uninstall(app: App, account: str, product: str, actor: str | None) -> dict[str, Any]:
    """Seed 002: "Uninstalling the App will take effect at the end of the product's current
    contracted term"; billing stops then only with a ``billing_cancellation`` ticket."""
    now = app.now()
    app._check_product(product)
    with app.write() as conn:
        acct = get_account(conn, account)
        contract = get_contract(conn, acct, product, lock=True)
        who = require_purchasing_authority(
            conn, acct, actor, "uninstall", now, {"product": product}
        )
        already = conn.execute(
            sa.select(uninstalls.c.effective).where(uninstalls.c.contract_id == contract.id)
        ).first()
        if already:
            raise Conflict(
                f"{product} is already uninstalled from {account!r}, effective {already[0]}"
            )
        j = billing.term_index(contract, now.date())
        effective = billing.term_start(contract, j + 1)
        conn.execute(
            uninstalls.insert().values(
                contract_id=contract.id, requested_at=now, effective=effective, actor=who
            )
        )
        conn.execute(
            installations.update()
            .where(installations.c.account_id == acct.id, installations.c.product == product)
            .values(uninstall_effective=effective)
        )
        detail = {"effective": effective.isoformat()}
        _commit(conn, acct, product, who, now, "uninstall", detail, None, None)
        audit.record(
            conn, at=now, action="uninstall", outcome="ok", account=account, actor=who,
            detail={"product": product, **detail},
        )  # fmt: skip
    app.plugins.listeners.uninstalled(account, product, who, now, effective)
    return {
        "account": account,
        "product": product,
        "effective": effective.isoformat(),
        "billing": "continues (the contract renews) until a billing_cancellation ticket is opened: "
        f"`seatgate ticket open {account} {product} --kind billing_cancellation`",
    }


def open_ticket(
    app: App, account: str, product: str, kind: str, actor: str | None
) -> dict[str, Any]:
    """A billing ticket with Support: ``billing_cancellation`` (after an uninstall) stops billing
    at the uninstall's effective date; ``renewal_adjustment`` lets the next term start at the
    contracted quantity instead of the seats billed this term."""
    now = app.now()
    check_choice("--kind", kind, billing.TICKET_KINDS)
    with app.write() as conn:
        acct = get_account(conn, account)
        contract = find_contract(conn, acct, product)
        if contract is None:
            from .contracts import list_contracts

            have = sorted(c.product for c in list_contracts(conn, account)) or ["(none)"]
            raise BadInput(f"product installed on account {account!r}", product, have)
        if (
            kind == "billing_cancellation"
            and not conn.execute(
                sa.select(uninstalls.c.effective).where(uninstalls.c.contract_id == contract.id)
            ).first()
        ):
            raise BadInput(
                "--kind",
                kind,
                "renewal_adjustment, or billing_cancellation once the app is uninstalled "
                f"(`seatgate uninstall {account} {product}`)",
            )
        ticket_id = conn.execute(  # type: ignore[index]
            tickets.insert().values(contract_id=contract.id, kind=kind, opened_at=now, actor=actor)
        ).inserted_primary_key[0]
        audit.record(
            conn, at=now, action="ticket.open", outcome="ok", account=account, actor=actor,
            detail={"product": product, "kind": kind, "ticket": ticket_id},
        )  # fmt: skip
    return {"account": account, "product": product, "kind": kind, "ticket": ticket_id,
            "opened_at": now}  # fmt: skip


# -- adding users -----------------------------------------------------------------------------------
def record_added_users(
    conn: sa.Connection,
    acct: Account,
    contract: Contract,
    actor: str,
    at: dt.datetime,
    emails: Sequence[str],
    assigned_after: int,
) -> None:
    """Seed 002, "Purchasing Authority" and "Adding Users above Contracted Quantities": adding users
    is a purchase, recorded as a commitment. The price shown is the indicative cost per billing
    period of the added users the contract does not cover (0 when it covers them all); invoices
    bill them from the seat ledger, whether or not this record exists."""
    if not emails:
        return
    before = assigned_after - len(emails)
    above = max(0, assigned_after - contract.quantity) - max(0, before - contract.quantity)
    shown = Decimal("0")
    if above > 0:
        shown = Decimal(quote_seats(conn, acct, contract, above, at.date())["per_billing_period"])
    detail = {"added": len(emails), "above_contract": above, "emails": list(emails[:20])}
    _commit(conn, acct, contract.product, actor, at, "add_users", detail, shown, contract.currency)


# -- buying seats ------------------------------------------------------------------------------------
def _seat_price(contract: Contract, today: dt.date) -> Decimal:
    """Order-form (and marketplace) contracts buy at their unit price; self-serve ones at the
    then-listed price of their plan (seed 002: self-serve is billed month to month)."""
    if billing.month_to_month(contract):
        listed = catalog_mod.load().find(contract.product, contract.plan, today)
        if listed is not None and not listed.addon:
            return listed.monthly_price
    return contract.unit_price


def quote_seats(
    conn: sa.Connection, acct: Account, contract: Contract, quantity: int, today: dt.date
) -> dict[str, Any]:
    """The purchase summary of ``quantity`` more seats, co-termed with the contract."""
    unit = _seat_price(contract, today)
    model = catalog_mod.load().charge_model(contract.product, contract.plan, contract.term_start)
    billed = 0 if model == "per_account" else quantity
    j, (a, _) = billing.period_containing(contract, today)
    anchor, end = billing.term_start(contract, j), billing.term_start(contract, j + 1)
    rest = charge(unit, billed, contract.currency, anchor=anchor, start=today, end=end)
    full = charge(
        unit, billed, contract.currency, anchor=a, start=a,
        end=add_months(a, billing.period_months(contract)),
    )  # fmt: skip
    assigned = count_assigned(conn, acct.id, contract.product)
    return {
        "account": acct.name,
        "product": contract.product,
        "quantity_before": contract.quantity,
        "quantity_after": contract.quantity + quantity,
        "added": quantity,
        "unit_price": str(unit),
        "currency": contract.currency,
        "charge_model": model,
        "prorated_rest_of_term": str(rest.amount),
        "rest_of_term": {"start": today.isoformat(), "end": end.isoformat()},
        "per_billing_period": str(full.amount),
        "billing_period_months": billing.period_months(contract),
        "assigned": assigned,
        "in_overage_after": SeatCount(
            contract.quantity + quantity, assigned, contract.mode
        ).in_overage,
    }


def _check_quantity(quantity: int, account: str, product: str) -> None:
    if quantity <= 0:
        raise BadInput(
            "--quantity",
            quantity,
            "a whole number of seats to add, 1 or more; seats are never reduced within a term — "
            "to lower the count at renewal open a ticket: "
            f"`seatgate ticket open {account} {product} --kind renewal_adjustment`",
        )


def buy_seats(
    app: App,
    account: str,
    product: str,
    quantity: int,
    actor: str | None,
    *,
    confirm: bool,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Without ``confirm``: the purchase summary, nothing written. With it: raise the contracted
    quantity at once (the account leaves overage for checks, assigns and syncs: ``set_quantity``
    bumps the entitlement version) and record the purchase and the commitment. A retried key is
    a no-op returning the first result; the same key with other arguments is refused."""
    now, today = app.now(), app.now().date()
    app._check_product(product)
    _check_quantity(quantity, account, product)
    if idempotency_key is not None and not (0 < len(idempotency_key) <= 100):
        raise BadInput("--idempotency-key", idempotency_key, "1 to 100 characters")
    request = {"account": account, "product": product, "quantity": quantity}
    if not confirm:
        with app.db.read() as conn:
            acct = get_account(conn, account)
            contract = get_contract(conn, acct, product)
            quote = quote_seats(conn, acct, contract, quantity, today)
        return {**quote, "committed": False, "note": "summary only: add --yes to buy"}
    key = idempotency_key or uuid.uuid4().hex
    with app.write() as conn:
        acct = get_account(conn, account)
        first = conn.execute(
            sa.select(purchases.c.request, purchases.c.result).where(
                purchases.c.idempotency_key == key
            )
        ).first()
        if first is not None:
            if first.request != request:
                raise Conflict(
                    f"idempotency key {key!r} was used for another purchase ({first.request}); "
                    "use a new key for a different purchase"
                )
            return {**first.result, "replayed": True}
        contract = get_contract(conn, acct, product, lock=True)
        who = require_purchasing_authority(conn, acct, actor, "seats.buy", now, request)
        quote = quote_seats(conn, acct, contract, quantity, today)
        set_quantity(
            conn, account, product, contract.quantity + quantity, now, actor=who,
            reason="seats bought",
        )  # fmt: skip
        result = {**quote, "committed": True, "idempotency_key": key, "at": now.isoformat()}
        conn.execute(
            purchases.insert().values(
                idempotency_key=key,
                contract_id=contract.id,
                request=request,
                quantity=quantity,
                unit_price=Decimal(quote["unit_price"]),
                effective=today,
                at=now,
                actor=who,
                result=result,
            )
        )
        _commit(
            conn, acct, product, who, now, "seats_buy", {**request, "key": key},
            Decimal(quote["prorated_rest_of_term"]), contract.currency,
        )  # fmt: skip
    return {**result, "replayed": False}
