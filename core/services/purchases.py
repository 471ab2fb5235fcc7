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

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import attrs

from ..domain import bounds, calendar
from ..domain.billing import plan_change_quote
from ..domain.events import PlanChanged, RenewalAdjusted, Uninstalled
from ..domain.model import Account, Contract
from ..domain.money import Money
from ..domain.pricing import charge
from ..domain.vocabulary import ChargeModel, Frequency, TicketKind, check_choice
from ..errors import BadInput, Conflict
from .base import read, require_purchasing_authority, transaction
from .commitments import record_commitment
from .contracts import change_quantity, require_contract
from .installs import require_installation
from .ports import Ports, UnitOfWork
from .quotes import INDICATIVE, contract_history, quote_seats, seat_price, terms_in_force

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
        bounds.count(users, "users")
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
        record, and selecting it again brings back the contract's own terms (its price, an
        order-form plan of its own included).

        The price shown is the new plan's for one full billing period, for the users the invoice
        will bill (:meth:`History.selected_users <seatgate.core.domain.billing.History.
        selected_users>`, the one function both use). Raises :class:`BadInput` for an unlisted
        plan (remedy ``plan_not_listed``) or an add-on, :class:`NotFound` when the product is not
        installed (remedy ``install``), :class:`NotAuthorized` (audited).
        """
        ports = self.ports
        now = ports.now()
        today = now.date()
        self._check_product(product)
        with transaction(ports) as uow:
            acct = uow.accounts.get(account)
            contract = require_contract(uow, acct, product, lock=True)
            who = require_purchasing_authority(
                uow, acct, actor, "plan.change", now, {"product": product, "plan": plan}
            )
            contract, current, unit, model, users, shown = self._plan_change(
                uow, contract, plan, today
            )
            uow.billing.add_plan_change(
                contract.id,
                plan=plan,
                charge_model=model,
                unit_price=unit,
                effective=today,
                at=now,
                actor=who,
            )
            detail = {
                "from": current,
                "to": plan,
                "users": users,
                "list_price": str(unit),
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
            "charge_model": model,
            "price_per_period": str(shown.amount),
            "currency": shown.currency,
            "note": INDICATIVE,
        }

    def _plan_change(
        self, uow: UnitOfWork, contract: Contract, plan: str, today: dt.date
    ) -> tuple[Contract, str, Decimal, str, int, Money]:
        """(contract as billing reads it, the plan in force, the new plan's monthly unit price and
        charge model, the users billed, the price shown for one billing period) of selecting
        ``plan`` today — one function for the summary and the change, so what is shown is what
        is billed. Raises :class:`BadInput` as :meth:`change_plan` does."""
        history = contract_history(uow, self.ports, contract)
        contract = history.contract
        in_force = history.plan_in_force(today)
        current = in_force.plan if in_force is not None else contract.plan
        if plan == current:
            raise BadInput("plan", plan, f"a plan other than the current one ({current})")
        catalog = self.ports.catalog()
        if plan == contract.plan:
            unit, model = terms_in_force(catalog, contract, None, today)
        else:
            found = catalog.require_base_plan(contract.product, plan, today)
            # The same rule as a contract's: a listed price is never relabelled into another
            # currency (pricing.contract_price), so a plan listed in another currency than the
            # contract's has no price for it — Support sells it (seed 002).
            if found.currency != contract.currency:
                raise BadInput(
                    "plan",
                    plan,
                    f"a plan listed in {contract.currency}, the contract's currency: the "
                    f"catalog lists {contract.product}'s {plan} plan in {found.currency} only",
                    remedy="plan_not_listed",
                    context={"account": contract.account, "product": contract.product},
                )
            unit, model = found.monthly_price, found.charge_model
        # Seed 002: "Once installed, you should manage the App's active Plans": a product that is
        # not installed has no plans to manage (refused as uninstall is, remedy install), checked
        # once the plan itself is known to be a good one.
        require_installation(uow, contract.account, contract.product)
        users, shown = plan_change_quote(history, today, unit, model)
        return contract, current, unit, model, users, shown

    def plans_in_force(self, account: str) -> dict[str, str]:
        """The base plan each of the account's contracts bills today, by product: the contracted
        one, or the plan an admin selected instead (seed 002). One read of the plan changes per
        contract (never the seat history). Raises :class:`NotFound`."""
        now = self.ports.now()
        out = {}
        with read(self.ports) as uow:
            uow.accounts.get(account)
            for contract in uow.contracts.list(account, created_by=now):
                change = uow.billing.plan_in_force(contract, now.date())
                out[contract.product] = change.plan if change is not None else contract.plan
        return out

    def plan_change_summary(self, account: str, product: str, plan: str) -> dict[str, Any]:
        """What :meth:`change_plan` would do today, nothing written (seed 002: the price of the
        new plan "for all selected Users" shown before the admin commits): ``from``, ``to``,
        ``users``, ``list_price`` (monthly), ``price_per_period`` and ``currency`` of one billing
        period, ``effective``. Raises :class:`BadInput` (plan), :class:`NotFound` (account,
        contract)."""
        today = self.ports.now().date()
        self._check_product(product)
        with read(self.ports) as uow:
            acct = uow.accounts.get(account)
            contract = require_contract(uow, acct, product)
            contract, current, unit, model, users, shown = self._plan_change(
                uow, contract, plan, today
            )
        return {
            "account": account,
            "product": product,
            "from": current,
            "to": plan,
            "users": users,
            "list_price": str(unit),
            "effective": today.isoformat(),
            "charge_model": model,
            "price_per_period": str(shown.amount),
            "currency": shown.currency,
            "billing_period_months": calendar.period_months(contract),
            "committed": False,
            "note": INDICATIVE,
        }

    def uninstall_summary(self, account: str, product: str) -> dict[str, Any]:
        """What :meth:`uninstall` would do, nothing written (seed 002): ``effective`` (the end of
        the current term, when the uninstall takes effect) and the ``billing_cancellation``
        ticket billing needs to stop (``remedy``). Raises :class:`NotFound` (no contract or
        installation), :class:`Conflict` (already uninstalled)."""
        now = self.ports.now()
        self._check_product(product)
        with read(self.ports) as uow:
            acct = uow.accounts.get(account)
            contract = require_contract(uow, acct, product)
            require_installation(uow, account, product)
            already = uow.billing.uninstall_effective(contract.id)
            if already is not None:
                raise Conflict(
                    f"{product} is already uninstalled from {account!r}, effective {already}; "
                    "install it again to withdraw that",
                    remedy="install",
                    context={"account": account, "product": product},
                )
            _, effective = calendar.current_term(contract, now.date())
        return {
            "account": account,
            "product": product,
            "effective": effective.isoformat(),
            "billing": "continues (the contract renews) until a billing_cancellation ticket is "
            "opened",
            "remedy": "billing_cancellation_ticket",
            "committed": False,
        }

    def uninstall(self, account: str, product: str, actor: str | None) -> dict[str, Any]:
        """Seed 002: "Uninstalling the App will take effect at the end of the product's current
        contracted term"; billing stops then only with a ``billing_cancellation`` ticket
        (``remedy`` of the answer: ``billing_cancellation_ticket``). From that day every check
        answers ``uninstalled``. An uninstall an install came after (issue 11, item 12) no longer
        counts: the app can be uninstalled again."""
        ports = self.ports
        now = ports.now()
        self._check_product(product)
        with transaction(ports) as uow:
            acct = uow.accounts.get(account)
            contract = require_contract(uow, acct, product, lock=True)
            # What was never installed cannot be uninstalled (as `adapters disable` says too).
            require_installation(uow, account, product)
            who = require_purchasing_authority(
                uow, acct, actor, "uninstall", now, {"product": product}
            )
            already = uow.billing.uninstall_effective(contract.id)
            if already is not None:
                raise Conflict(
                    f"{product} is already uninstalled from {account!r}, effective {already}; "
                    "install it again to withdraw that",
                    remedy="install",
                    context={"account": account, "product": product},
                )
            _, effective = calendar.current_term(contract, now.date())
            uow.billing.add_uninstall(contract.id, requested_at=now, effective=effective, actor=who)
            uow.installs.set_uninstall_effective(acct.id, product, effective)
            uow.contracts.bump_version(contract.id)  # checks answer `uninstalled` from then
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
        at a renewal quantity Support sets (:meth:`resolve_ticket`; until then, the users held at
        the renewal) instead of the seats billed this term."""
        now = self.ports.now()
        check_choice("kind", kind, TicketKind)
        with transaction(self.ports) as uow:
            acct = uow.accounts.get(account)
            contract = uow.contracts.find(acct, product)
            if contract is None:
                have = sorted(c.product for c in uow.contracts.list(account))
                raise BadInput(
                    "product",
                    product,
                    f"a product account {account!r} has a contract for: {', '.join(have)}"
                    if have
                    else f"no product: account {account!r} has no contract",
                )
            pending = uow.billing.pending_uninstall(contract.id)
            if kind == TicketKind.BILLING_CANCELLATION and pending is None:
                raise BadInput(
                    "kind",
                    kind,
                    "renewal_adjustment, or billing_cancellation once the app is uninstalled",
                    remedy="uninstall",
                    context={"account": account, "product": product},
                )
            ticket_id = uow.billing.open_ticket(
                contract.id,
                kind=kind,
                at=now,
                actor=actor,
                uninstall_id=pending[0]
                if pending is not None and kind == TicketKind.BILLING_CANCELLATION
                else None,
            )
            uow.contracts.bump_version(contract.id)
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

    def resolve_ticket(
        self,
        account: str,
        product: str,
        ticket: int,
        *,
        renewal_quantity: int,
        actor: str | None,
    ) -> dict[str, Any]:
        """Support sets the renewal quantity of a ``renewal_adjustment`` ticket (seed 002:
        "To trigger Billing adjustments at renewal, you need to issue a Billing ticket with
        Talkdesk Support"). From the renewal after the ticket the contracted quantity is
        ``renewal_quantity`` and the renewal bills max(it, the users held). Audited
        (``ticket.resolve``) under the Support agent named as ``actor``; records
        :class:`~seatgate.core.domain.events.RenewalAdjusted`.

        Raises :class:`BadInput` for a quantity outside 1 to 1,000,000 seats
        (:func:`~seatgate.core.domain.bounds.contracted_seats`), a ticket of another kind or contract,
        or no actor (nothing written).
        """
        now = self.ports.now()
        bounds.contracted_seats(renewal_quantity, "renewal quantity")
        if not actor:
            raise BadInput(
                "actor", actor, "the Support agent resolving the ticket", remedy="name_actor"
            )
        with transaction(self.ports) as uow:
            acct = uow.accounts.get(account)
            contract = require_contract(uow, acct, product, lock=True)
            row = uow.billing.ticket(ticket)
            if (
                row is None
                or row["contract_id"] != contract.id
                or row["kind"] != TicketKind.RENEWAL_ADJUSTMENT
                or row["withdrawn_at"] is not None
            ):
                raise BadInput(
                    "ticket",
                    ticket,
                    f"a renewal_adjustment ticket of {account}'s {product} contract",
                )
            renewal = calendar.term_start(
                contract, calendar.term_index(contract, row["opened_at"].date()) + 1
            )
            uow.billing.resolve_ticket(
                ticket, renewal_quantity=renewal_quantity, at=now, actor=actor
            )
            uow.contracts.bump_version(contract.id)
            detail = {
                "product": product,
                "ticket": ticket,
                "renewal_quantity": renewal_quantity,
                "renewal": renewal.isoformat(),
            }
            uow.audit.record(
                at=now,
                action="ticket.resolve",
                outcome="ok",
                account=account,
                actor=actor,
                detail=detail,
            )
            uow.record(
                RenewalAdjusted(
                    account=account,
                    product=product,
                    at=now,
                    actor=actor,
                    ticket=ticket,
                    renewal_quantity=renewal_quantity,
                    effective=renewal,
                )
            )
        return {"account": account, **detail}

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
        and record the purchase and the commitment.

        An idempotency key belongs to the account: a retry with it is a no-op answering the first
        result, the same key with other arguments is refused (:class:`Conflict`), and another
        account's key is never looked at. Purchasing authority is checked first, replays
        included (:class:`NotAuthorized`, audited).

        :param quantity: seats to add, 1 or more (seats are never reduced within a term), so
            that the contract holds at most 1,000,000 (:func:`~seatgate.core.domain.bounds.
            contracted_total`; :class:`BadInput` naming how many more it can take).
        """
        ports = self.ports
        now = ports.now()
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
        # The contracted total is checked against the contract in the quote; a quantity that no
        # contract can take is refused before anything is read.
        bounds.count(quantity, "quantity")
        if idempotency_key is not None and not (0 < len(idempotency_key) <= MAX_KEY):
            raise BadInput("idempotency key", idempotency_key, f"1 to {MAX_KEY} characters")
        request = {"account": account, "product": product, "quantity": quantity}
        catalog = ports.catalog()
        if not confirm:
            with read(ports) as uow:
                acct = uow.accounts.get(account)
                quote = self._quote(uow, acct, product, quantity)
            return {**quote, "committed": False, "note": "summary only: nothing bought"}
        key = idempotency_key or uuid.uuid4().hex
        with transaction(ports) as uow:
            acct = uow.accounts.get(account)
            who = require_purchasing_authority(uow, acct, actor, "seats.buy", now, request)
            # The key is looked up once the contract is locked: a retry sent while the first
            # attempt is still running waits for it here, then finds it and replays it (looked
            # up before the lock, both would buy, and the second fail on the key's uniqueness).
            require_contract(uow, acct, product, lock=True)
            first = uow.billing.purchase_by_key(acct.id, key)
            if first is not None:
                first_request, first_result = first
                if first_request != request:
                    raise Conflict(
                        f"idempotency key {key!r} was used for another purchase of this "
                        "account; use a new key for a different purchase",
                        field="idempotency key",
                    )
                return {**first_result, "replayed": True}
            quote = self._quote(uow, acct, product, quantity)
            contract = require_contract(uow, acct, product)
            contracted = int(quote["quantity_before"])
            change_quantity(
                uow,
                acct,
                attrs.evolve(contract, quantity=contracted),
                contracted + quantity,
                now,
                who,
                "seats bought",
            )
            result = {**quote, "committed": True, "idempotency_key": key, "at": now.isoformat()}
            uow.billing.add_purchase(
                contract.id,
                account_id=acct.id,
                key=key,
                request=request,
                quantity=quantity,
                unit_price=seat_price(catalog, contract, now.date()),
                effective=now.date(),
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

    def _quote(self, uow: UnitOfWork, acct: Account, product: str, quantity: int) -> dict[str, Any]:
        """The summary of ``quantity`` more seats, from the contract's history as billing reads
        it and the invoices issued so far."""
        ports = self.ports
        contract = require_contract(uow, acct, product)
        history = contract_history(uow, ports, contract)
        billed, prior = uow.billing.state([contract.id])
        assigned = uow.seats.count_assigned(acct.id, product)
        quote = quote_seats(
            ports.catalog(),
            history,
            quantity,
            ports.now(),
            assigned,
            billed.get(contract.id, []),
            prior,
        )
        return {"account": acct.name, **quote}
