"""Add-on plans, activated by the partner (seed 002).

Seed 002: "App Add-on Plans are not supported on the Marketplace and need to be purchased via a
direct sales channel", and "App Add-on Plans for each App are not selectable on the Talkdesk 'My
Apps' management console and will be activated in your Account by the Partner, based on
contracted terms."

- Only the partner who publishes the product (the catalog's ``partner``) activates or deactivates
  its add-ons: an account's admin is refused (remedy ``partner_activates``), and so is another
  product's partner; both refusals are audited.
- An add-on is ``per_seat`` (``seats``, default: the contracted quantity in force) or
  ``per_account`` (once), at the catalog's then-listed price or the contracted ``unit_price``,
  billed from the activation day under the contract's frequency and term, co-termed
  (:func:`seatgate.core.domain.billing.owed`, line kind ``add_on``).
- Deactivating follows the end-of-term rule of an uninstall: it takes effect, and billing stops,
  at the end of the current term.
- Each is a purchase commitment recorded with the partner as actor (``partner:NAME``), with the
  price the rest of the term will bill.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import attrs

from ..domain import calendar
from ..domain.billing import AddOn, addon_quote
from ..domain.events import AddOnActivated, AddOnDeactivated
from ..domain.model import Account
from ..domain.money import normalize_price
from ..domain.pricing import charge
from ..domain.vocabulary import ChargeModel
from ..errors import BadInput, Conflict, NotAuthorized, NotFound
from .base import read, transaction
from .commitments import record_commitment
from .contracts import require_contract
from .ports import Ports, UnitOfWork
from .ports.orders import AddOnRow
from .quotes import contract_history

__all__ = ["AddOnInfo", "AddOnService", "partner_actor"]

PARTNER_PREFIX = "partner:"


def partner_actor(partner: str) -> str:
    """How a partner is recorded as an actor (commitments, audit): ``partner:NAME``."""
    return f"{PARTNER_PREFIX}{partner}"


@attrs.frozen
class AddOnInfo:
    """An add-on activation as of an instant. ``status``: ``active``, ``ending`` (deactivated,
    billed until ``ends``) or ``ended``. ``rest_of_term`` (on activation only): what the invoices
    of the rest of the term bill for it; ``per_period``: one full billing period."""

    account: str
    product: str
    addon: str
    partner: str
    actor: str
    charge_model: str
    quantity: int
    unit_price: Decimal
    currency: str
    effective: dt.date
    ends: dt.date | None
    status: str
    per_period: Decimal | None = None
    rest_of_term: Decimal | None = None

    @classmethod
    def of(cls, row: AddOnRow, today: dt.date, **extra: Any) -> AddOnInfo:
        status = "active" if row.ends is None else ("ending" if today < row.ends else "ended")
        return cls(
            row.account,
            row.product,
            row.plan,
            row.partner,
            row.actor,
            row.charge_model,
            row.quantity,
            row.unit_price,
            row.currency,
            row.effective,
            row.ends,
            status,
            **extra,
        )

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "account": self.account,
            "product": self.product,
            "addon": self.addon,
            "partner": self.partner,
            "actor": self.actor,
            "charge_model": self.charge_model,
            "quantity": self.quantity,
            "unit_price": str(self.unit_price),
            "currency": self.currency,
            "effective": self.effective.isoformat(),
            "ends": None if self.ends is None else self.ends.isoformat(),
            "status": self.status,
        }
        if self.per_period is not None:
            out["per_period"] = str(self.per_period)
        if self.rest_of_term is not None:
            out["rest_of_term"] = str(self.rest_of_term)
        return out


class AddOnService:
    def __init__(self, ports: Ports) -> None:
        self.ports = ports

    def _require_partner(
        self,
        uow: UnitOfWork,
        acct: Account,
        product: str,
        partner: str | None,
        action: str,
        at: dt.datetime,
        detail: dict[str, Any],
        actor: str | None,
    ) -> str:
        """The partner who publishes ``product``, normalised; :class:`NotAuthorized` (audited)
        for anyone else — an account's admin (no partner) included."""
        publisher = self.ports.catalog().partner_of(product, at.date())
        named = (partner or "").strip().lower() or None
        if named is not None and named == publisher:
            return named
        if named is None:
            message = (
                f"add-on plans are not selectable by an account's admins: the partner who "
                f"publishes {product} ({publisher or 'none named in the catalog'}) activates them "
                "in the account, based on contracted terms (seed 002)"
            )
            remedy: str | None = "partner_activates"
        else:
            message = (
                f"partner {named!r} does not publish {product} "
                f"(its partner is {publisher or 'not named in the catalog'}): only that partner "
                "activates its add-on plans"
            )
            remedy = None
        who = partner_actor(named) if named else actor
        raise NotAuthorized(
            message,
            audit_entry={
                "at": at,
                "action": action,
                "outcome": "not_authorized",
                "account": acct.name,
                "actor": who,
                "detail": {**detail, "partner": named, "admin": actor if not named else None},
            },
            field="partner",
            remedy=remedy,
            context={"account": acct.name, "product": product, "partner": publisher or ""},
        )

    def activate(
        self,
        account: str,
        product: str,
        addon: str,
        *,
        partner: str | None,
        actor: str | None = None,
        seats: int | None = None,
        unit_price: Decimal | None = None,
    ) -> AddOnInfo:
        """The partner activates ``addon`` on ``account``'s ``product`` contract from today.

        :param partner: the partner acting (the catalog's publisher of ``product``); None is an
            account's admin, who is refused.
        :param actor: the partner's person, recorded beside the partner (optional).
        :param seats: a per-seat add-on's quantity (default: the contracted quantity in force);
            refused for a per-account add-on.
        :param unit_price: the contracted monthly price (default: the catalog's then-listed
            price), in the contract's currency.

        Raises :class:`NotAuthorized` (audited; field ``partner``), :class:`BadInput` (an unknown
        add-on, seats on a per-account add-on, a price in another currency),
        :class:`NotFound` (no contract, remedy ``create_contract``), :class:`Conflict` (already
        active, or its deactivation has not taken effect yet).
        """
        ports = self.ports
        at = ports.now()
        today = at.date()
        detail: dict[str, Any] = {"product": product, "addon": addon}
        if seats is not None and seats <= 0:
            raise BadInput("seats", seats, "a whole number of seats, 1 or more")
        with transaction(ports) as uow:
            acct = uow.accounts.get(account)
            who = self._require_partner(
                uow, acct, product, partner, "addon.activate", at, detail, actor
            )
            contract = require_contract(uow, acct, product, lock=True)
            plan = ports.catalog().require_addon_plan(product, addon, today)
            if plan.charge_model == ChargeModel.PER_ACCOUNT:
                if seats is not None:
                    raise BadInput(
                        "seats", seats, f"no seat count: {addon} is charged once per account"
                    )
                quantity = 1
            else:
                quantity = seats or uow.billing.contracted_on(contract, at)
                if quantity <= 0:
                    raise BadInput("seats", quantity, "a whole number of seats, 1 or more")
            if unit_price is None:
                if plan.currency != contract.currency:
                    raise BadInput(
                        "unit price",
                        None,
                        f"the contracted price in {contract.currency}: {addon} is listed in "
                        f"{plan.currency}",
                    )
                unit_price = plan.monthly_price
            # Written with the contract currency's minor unit (5 -> 5.00 USD; 1.50 JPY refused).
            unit_price = normalize_price(unit_price, contract.currency)
            latest = uow.addons.latest(contract.id, addon)
            if latest is not None and (latest.ends is None or latest.ends > today):
                when = "" if latest.ends is None else f" until {latest.ends} (deactivated)"
                raise Conflict(
                    f"{addon} is active on {account}'s {product} contract{when}; activate it "
                    "again once it has ended",
                    field="addon",
                )
            effective = max(today, contract.term_start)
            history = contract_history(uow, ports, contract)
            billed, prior = uow.billing.state([contract.id])
            quote = addon_quote(
                history,
                AddOn(0, addon, plan.charge_model, quantity, unit_price, effective),
                billed.get(contract.id, []),
                prior,
            )
            a, b = calendar.full_period(contract, effective)
            per_period = charge(
                unit_price,
                quantity,
                contract.currency,
                anchor=contract.term_start,
                since=calendar.term_start(contract, calendar.term_index(contract, a)),
                start=a,
                end=b,
            )
            person = actor or partner_actor(who)
            addon_id = uow.addons.add(
                contract.id,
                {
                    "plan": addon,
                    "charge_model": plan.charge_model,
                    "quantity": quantity,
                    "unit_price": unit_price,
                    "currency": contract.currency,
                    "effective": effective,
                    "at": at,
                    "partner": who,
                    "actor": person,
                },
            )
            detail.update(
                id=addon_id,
                quantity=quantity,
                unit_price=str(unit_price),
                effective=effective.isoformat(),
                partner=who,
                person=actor,
            )
            record_commitment(
                uow,
                acct,
                product,
                partner_actor(who),
                at,
                "addon_activate",
                detail,
                quote.amount,
                contract.currency,
            )
            uow.audit.record(
                at=at,
                action="addon.activate",
                outcome="ok",
                account=account,
                actor=partner_actor(who),
                detail=detail,
            )
            uow.record(
                AddOnActivated(
                    account=account,
                    product=product,
                    at=at,
                    addon=addon,
                    partner=who,
                    actor=person,
                    charge_model=plan.charge_model,
                    quantity=quantity,
                    unit_price=str(unit_price),
                    currency=contract.currency,
                    effective=effective,
                )
            )
            row = uow.addons.latest(contract.id, addon)
            assert row is not None
        return AddOnInfo.of(row, today, per_period=per_period.amount, rest_of_term=quote.amount)

    def deactivate(
        self,
        account: str,
        product: str,
        addon: str,
        *,
        partner: str | None,
        actor: str | None = None,
    ) -> AddOnInfo:
        """The partner deactivates ``addon``: like an uninstall (seed 002), it takes effect at the
        end of the current term, and the add-on is billed until then.

        Raises :class:`NotAuthorized` (audited) like :meth:`activate`, :class:`NotFound` (not
        active), :class:`Conflict` (already deactivated)."""
        ports = self.ports
        at = ports.now()
        today = at.date()
        detail: dict[str, Any] = {"product": product, "addon": addon}
        with transaction(ports) as uow:
            acct = uow.accounts.get(account)
            who = self._require_partner(
                uow, acct, product, partner, "addon.deactivate", at, detail, actor
            )
            contract = require_contract(uow, acct, product, lock=True)
            latest = uow.addons.latest(contract.id, addon)
            if latest is None or (latest.ends is not None and latest.ends <= today):
                raise NotFound(
                    f"active add-on of {account}'s {product} contract",
                    addon,
                    "see `addon list ACCOUNT`",
                )
            if latest.ends is not None:
                raise Conflict(
                    f"{addon} is already deactivated on {account}'s {product} contract, "
                    f"effective {latest.ends}",
                    field="addon",
                )
            _, ends = calendar.current_term(contract, max(today, latest.effective))
            person = actor or partner_actor(who)
            uow.addons.deactivate(latest.id, ends, at, person)
            detail.update(id=latest.id, effective=ends.isoformat(), partner=who, person=actor)
            record_commitment(
                uow, acct, product, partner_actor(who), at, "addon_deactivate", detail, None, None
            )
            uow.audit.record(
                at=at,
                action="addon.deactivate",
                outcome="ok",
                account=account,
                actor=partner_actor(who),
                detail=detail,
            )
            uow.record(
                AddOnDeactivated(
                    account=account,
                    product=product,
                    at=at,
                    addon=addon,
                    partner=who,
                    actor=person,
                    effective=ends,
                )
            )
            row = uow.addons.latest(contract.id, addon)
            assert row is not None
        return AddOnInfo.of(row, today)

    def list(self, account: str, product: str | None = None) -> list[AddOnInfo]:
        """The account's add-on activations as of now (ended ones included), oldest first."""
        at = self.ports.now()
        with read(self.ports) as uow:
            uow.accounts.get(account)
            rows = uow.addons.list(account, at, product)
        return [AddOnInfo.of(r, at.date()) for r in rows]
