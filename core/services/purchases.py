"""Purchases (seed 002): the purchase summary, plan changes, seats bought, uninstall, billing
tickets.

Seed 002, "Purchasing Authority": "by clicking to Install and Manage an App ... you are committing
to a Purchase equivalent to a Signed Customer Order Form". Every such action needs an actor with
Install or Manage (:func:`~seatgate.core.services.base.require_purchasing_authority`) and is stored
as a purchase commitment: who, when, what, and the indicative price shown.

Seed 002, "Purchase Summary": "indicative prices based on the selected Plan, the then listed
price, and the then selected user count. It does not reflect your specific terms, nor does it
constitute a bill" — priced by the same :func:`~seatgate.core.domain.pricing.charge` as invoices.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from ..domain import calendar
from ..domain.events import PlanChanged, Uninstalled
from ..domain.pricing import charge
from ..domain.vocabulary import ChargeModel, Frequency, TicketKind, check_choice
from ..errors import BadInput, Conflict
from .base import read, require_purchasing_authority, transaction
from .commitments import record_commitment
from .contracts import change_quantity, require_contract
from .ports import Ports
from .quotes import INDICATIVE, quote_seats

__all__ = ["PurchaseService"]

MAX_KEY = 100


class PurchaseService:
    def __init__(self, ports: Ports) -> None:
        self.ports = ports

    def _check_product(self, product: str) -> None:
        check_choice("product", product, tuple(sorted(self.ports.adapters.products())))

    def summary(
        self, product: str, plan: str, users: int, frequency: str = Frequency.MONTHLY
    ) -> dict[str, Any]:
        """What ``users`` users on ``plan`` cost per billing period at the then-listed price."""
        self._check_product(product)
        check_choice("frequency", frequency, Frequency)
        if users <= 0:
            raise BadInput("users", users, "a whole number of users, 1 or more")
        today = self.ports.now().date()
        found = self.ports.catalog().require_base_plan(product, plan, today)
        quantity = 1 if found.charge_model == ChargeModel.PER_ACCOUNT else users
        end = calendar.add_months(today, Frequency(frequency).months)
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

    def change_plan(
        self, account: str, product: str, plan: str, actor: str | None
    ) -> dict[str, Any]:
        """Seed 002: "Selecting a Base Plan different from the contracted one will trigger billing
        for the new Plan, for all selected Users, at the then listed price, and under your current
        Talkdesk contract term." Effective today; the contract keeps its contracted plan on
        record."""
        ports = self.ports
        now = ports.now()
        today = now.date()
        self._check_product(product)
        found = ports.catalog().require_base_plan(product, plan, today)
        with transaction(ports) as uow:
            acct = uow.accounts.get(account)
            contract = require_contract(uow, acct, product, lock=True)
            who = require_purchasing_authority(
                uow, acct, actor, "plan.change", now, {"product": product, "plan": plan}
            )
            current = uow.billing.selected_plan(contract.id) or contract.plan
            if plan == current:
                raise BadInput("plan", plan, f"a plan other than the current one ({current})")
            if found.currency != contract.currency:
                raise BadInput(
                    "plan", plan, f"a plan listed in the contract's currency {contract.currency}"
                )
            users = max(contract.quantity, uow.seats.count_assigned(acct.id, product))
            quantity = 1 if found.charge_model == ChargeModel.PER_ACCOUNT else users
            j, (a, b) = calendar.period_containing(contract, today)
            anchor = calendar.term_start(contract, j)
            shown = charge(
                found.monthly_price, quantity, contract.currency, anchor=anchor, start=a, end=b
            )
            uow.billing.add_plan_change(
                contract.id,
                plan=plan,
                charge_model=found.charge_model,
                unit_price=found.monthly_price,
                effective=today,
                at=now,
                actor=who,
            )
            detail = {
                "from": current,
                "to": plan,
                "users": users,
                "list_price": str(found.monthly_price),
                "effective": today.isoformat(),
            }
            record_commitment(
                uow, acct, product, who, now, "plan_change", detail, shown.amount, shown.currency
            )
            uow.audit.record(
                at=now,
                action="plan.change",
                outcome="ok",
                account=account,
                actor=who,
                detail={"product": product, **detail},
            )
            uow.record(
                PlanChanged(
                    account=account,
                    product=product,
                    at=now,
                    actor=who,
                    from_plan=current,
                    to_plan=plan,
                    effective=today,
                )
            )
        return {
            "account": account,
            "product": product,
            **detail,
            "charge_model": found.charge_model,
            "price_per_period": str(shown.amount),
            "currency": shown.currency,
            "note": INDICATIVE,
        }

    def uninstall(self, account: str, product: str, actor: str | None) -> dict[str, Any]:
        """Seed 002: "Uninstalling the App will take effect at the end of the product's current
        contracted term"; billing stops then only with a ``billing_cancellation`` ticket
        (``remedy`` of the answer: ``billing_cancellation_ticket``)."""
        ports = self.ports
        now = ports.now()
        self._check_product(product)
        with transaction(ports) as uow:
            acct = uow.accounts.get(account)
            contract = require_contract(uow, acct, product, lock=True)
            who = require_purchasing_authority(
                uow, acct, actor, "uninstall", now, {"product": product}
            )
            already = uow.billing.uninstall_effective(contract.id)
            if already is not None:
                raise Conflict(
                    f"{product} is already uninstalled from {account!r}, effective {already}"
                )
            _, effective = calendar.current_term(contract, now.date())
            uow.billing.add_uninstall(contract.id, requested_at=now, effective=effective, actor=who)
            uow.installs.set_uninstall_effective(acct.id, product, effective)
            detail = {"effective": effective.isoformat()}
            record_commitment(uow, acct, product, who, now, "uninstall", detail, None, None)
            uow.audit.record(
                at=now,
                action="uninstall",
                outcome="ok",
                account=account,
                actor=who,
                detail={"product": product, **detail},
            )
            uow.record(
                Uninstalled(
                    account=account, product=product, at=now, actor=who, effective=effective
                )
            )
        return {
            "account": account,
            "product": product,
            "effective": effective.isoformat(),
            "billing": "continues (the contract renews) until a billing_cancellation ticket is "
            "opened",
            "remedy": "billing_cancellation_ticket",
        }

    def open_ticket(
        self, account: str, product: str, kind: str, actor: str | None
    ) -> dict[str, Any]:
        """A billing ticket with Support: ``billing_cancellation`` (after an uninstall) stops
        billing at the uninstall's effective date; ``renewal_adjustment`` lets the next term start
        at the contracted quantity instead of the seats billed this term."""
        now = self.ports.now()
        check_choice("kind", kind, TicketKind)
        with transaction(self.ports) as uow:
            acct = uow.accounts.get(account)
            contract = uow.contracts.find(acct, product)
            if contract is None:
                have = sorted(c.product for c in uow.contracts.list(account)) or ["(none)"]
                raise BadInput(f"product installed on account {account!r}", product, have)
            if (
                kind == TicketKind.BILLING_CANCELLATION
                and uow.billing.uninstall_effective(contract.id) is None
            ):
                raise BadInput(
                    "kind",
                    kind,
                    "renewal_adjustment, or billing_cancellation once the app is uninstalled",
                    remedy="uninstall",
                    context={"account": account, "product": product},
                )
            ticket_id = uow.billing.open_ticket(contract.id, kind=kind, at=now, actor=actor)
            uow.audit.record(
                at=now,
                action="ticket.open",
                outcome="ok",
                account=account,
                actor=actor,
                detail={"product": product, "kind": kind, "ticket": ticket_id},
            )
        return {
            "account": account,
            "product": product,
            "kind": kind,
            "ticket": ticket_id,
            "opened_at": now,
        }

    def buy_seats(
        self,
        account: str,
        product: str,
        quantity: int,
        actor: str | None,
        *,
        confirm: bool,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Without ``confirm``: the purchase summary, nothing written. With it: raise the
        contracted quantity at once (the account leaves overage for checks, assigns and syncs)
        and record the purchase and the commitment. A retried key is a no-op returning the first
        result; the same key with other arguments is refused (:class:`Conflict`).

        :param quantity: seats to add, 1 or more (seats are never reduced within a term).
        """
        ports = self.ports
        now = ports.now()
        today = now.date()
        self._check_product(product)
        if quantity <= 0:
            raise BadInput(
                "quantity",
                quantity,
                "a whole number of seats to add, 1 or more; seats are never reduced within a "
                "term — to lower the count at renewal open a renewal_adjustment ticket",
                remedy="renewal_adjustment_ticket",
                context={"account": account, "product": product},
            )
        if idempotency_key is not None and not (0 < len(idempotency_key) <= MAX_KEY):
            raise BadInput("idempotency key", idempotency_key, f"1 to {MAX_KEY} characters")
        request = {"account": account, "product": product, "quantity": quantity}
        catalog = ports.catalog()
        if not confirm:
            with read(ports) as uow:
                acct = uow.accounts.get(account)
                contract = require_contract(uow, acct, product)
                assigned = uow.seats.count_assigned(acct.id, product)
                quote = quote_seats(catalog, account, contract, quantity, today, assigned)
            return {**quote, "committed": False, "note": "summary only: nothing bought"}
        key = idempotency_key or uuid.uuid4().hex
        with transaction(ports) as uow:
            acct = uow.accounts.get(account)
            # The key is looked up once the contract is locked: a retry sent while the first
            # attempt is still running waits for it here, then finds it and replays it (looked
            # up before the lock, both would buy, and the second fail on the key's uniqueness).
            contract = require_contract(uow, acct, product, lock=True)
            first = uow.billing.purchase_by_key(key)
            if first is not None:
                first_request, first_result = first
                if first_request != request:
                    raise Conflict(
                        f"idempotency key {key!r} was used for another purchase "
                        f"({first_request}); use a new key for a different purchase",
                        field="idempotency key",
                    )
                return {**first_result, "replayed": True}
            who = require_purchasing_authority(uow, acct, actor, "seats.buy", now, request)
            assigned = uow.seats.count_assigned(acct.id, product)
            quote = quote_seats(catalog, account, contract, quantity, today, assigned)
            change_quantity(
                uow, acct, contract, contract.quantity + quantity, now, who, "seats bought"
            )
            result = {**quote, "committed": True, "idempotency_key": key, "at": now.isoformat()}
            uow.billing.add_purchase(
                contract.id,
                key=key,
                request=request,
                quantity=quantity,
                unit_price=Decimal(quote["unit_price"]),
                effective=today,
                at=now,
                actor=who,
                result=result,
            )
            record_commitment(
                uow,
                acct,
                product,
                who,
                now,
                "seats_buy",
                {**request, "key": key},
                Decimal(quote["prorated_rest_of_term"]),
                contract.currency,
            )
        return {**result, "replayed": False}
