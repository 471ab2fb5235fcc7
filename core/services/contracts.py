"""Contracts: what an account bought for one product (one contract per account and product)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import attrs

from ..domain import bounds, calendar
from ..domain.model import Account, Contract
from ..domain.pricing import charge, check_channel_terms, contract_price
from ..domain.seats import SeatCount
from ..domain.vocabulary import Channel, ChargeModel, Frequency, SeatMode, check_choice
from ..errors import BadInput, Conflict, NotFound
from .base import read, require_purchasing_authority, transaction
from .commitments import record_commitment
from .overage import record_overage_change
from .ports import Ports, UnitOfWork

__all__ = ["ContractService", "ContractView", "change_quantity", "require_contract"]


@attrs.frozen
class ContractView:
    """A contract as ``contract list`` shows it: the current term comes from the one calendar."""

    contract: Contract
    term: calendar.Interval  # the term in force as of the listing

    def as_dict(self) -> dict[str, object]:
        c = self.contract
        return {
            "account": c.account,
            "product": c.product,
            "plan": c.plan,
            "seats": c.quantity,
            "unit_price": str(c.unit_price),
            "currency": c.currency,
            "frequency": c.frequency,
            "term_start": self.term[0].isoformat(),
            "term_end": self.term[1].isoformat(),
            "channel": c.channel,
            "mode": c.mode,
            "charge_model": c.charge_model,
            "grandfathered_at": c.grandfathered_at.isoformat() if c.grandfathered_at else None,
        }


class ContractService:
    def __init__(self, ports: Ports) -> None:
        self.ports = ports

    def view(self, contract: Contract) -> ContractView:
        return ContractView(contract, calendar.current_term(contract, self.ports.now().date()))

    def _as_of(self, uow: UnitOfWork, contract: Contract) -> Contract:
        """``contract`` with the quantity in force now (a renewal adjustment included)."""
        return attrs.evolve(
            contract, quantity=uow.billing.contracted_on(contract, self.ports.now())
        )

    def create(
        self,
        account: str,
        product: str,
        *,
        seats: int,
        plan: str,
        frequency: str,
        start: dt.date,
        months: int,
        unit_price: Decimal | None = None,
        channel: str = Channel.ORDER_FORM,
        mode: str = SeatMode.HARD_CAP,
        currency: str | None = None,
        charge_model: str | None = None,
        actor: str | None = None,
    ) -> Contract:
        """Record what ``account`` bought for ``product``.

        :param seats: the contracted quantity (seats), 1 to 1,000,000.
        :param plan: a base plan of the catalog; an order-form contract may carry a negotiated
            plan of its own (seed 002, "Buying through a Signed Order Form"), with its
            ``unit_price`` and ``charge_model`` (default ``per_seat``).
        :param unit_price: the monthly price of a seat, written with the currency's minor unit;
            default: the catalog's list price, in the listed currency only (another currency
            needs a price of its own). Self-serve and marketplace contracts are at the listed
            price and refuse one (:func:`~seatgate.core.domain.pricing.check_channel_terms`).
        :param currency: an ISO 4217 code (default: the listed currency, else USD).
        :param months: the term, in months (a self-serve contract: 1, monthly, from today).
        A self-serve contract is a purchase: ``actor`` needs purchasing authority (seed 002) and
        a commitment is recorded. Raises :class:`BadInput` (nothing written), :class:`Conflict`
        (a contract exists) or :class:`NotAuthorized` (audited).
        """
        ports = self.ports
        at = ports.now()
        check_choice("product", product, tuple(sorted(ports.adapters.products())))
        bounds.contracted_seats(seats, "seats")
        if months <= 0:
            raise BadInput(
                "months", months, "a term of 1 month or more (the term must end after it starts)"
            )
        _check_term_end(start, months)
        check_choice("frequency", frequency, Frequency)
        check_choice("channel", channel, Channel)
        check_choice("mode", mode, SeatMode)
        if charge_model is not None:
            check_choice("charge model", charge_model, ChargeModel)
        if not plan:
            raise BadInput("plan", plan, "a plan name")
        catalog = ports.catalog()
        listed_plan = catalog.check_contract_plan(product, plan, at.date(), channel)
        own_plan = not listed_plan and bool(catalog.plans_at(at.date(), product))
        listed = catalog.list_price(product, plan, at.date())
        if own_plan:
            # Seed 002, "Buying through a Signed Order Form": the order form's own plan, with the
            # price and charge model it was signed at.
            if unit_price is None:
                raise BadInput(
                    "unit price",
                    None,
                    f"the order form's monthly price: plan {plan!r} is not in the {product} "
                    "catalog, so a contract of its own names its price",
                )
            charge_model = charge_model or ChargeModel.PER_SEAT
        elif listed is not None and charge_model not in (None, listed.charge_model):
            raise BadInput(
                "charge model",
                charge_model,
                f"{listed.charge_model}, the catalog's for plan {plan!r} (or leave it out)",
            )
        elif listed is not None:
            charge_model = None  # the catalog's
        if channel == Channel.SELF_SERVE and listed is None:
            raise BadInput(
                "plan",
                plan,
                f"a base plan the catalog lists for {product} (self-serve purchases are at the "
                "then-listed price)",
                remedy="plan_not_listed",
                context={"product": product, "plan": plan},
            )
        # Seed 002: self-serve is month to month at the then-listed price; a marketplace purchase
        # is at the listed price under the customer's contract terms (pricing.check_channel_terms).
        check_channel_terms(
            channel,
            unit_price=unit_price,
            frequency=frequency,
            months=months,
            start=start,
            today=at.date(),
            listed=listed is not None,
        )
        unit_price, currency = contract_price(
            product,
            plan,
            None if listed is None else (listed.monthly_price, listed.currency),
            unit_price,
            currency,
        )
        values = {
            "product": product,
            "plan": plan,
            "quantity": seats,
            "unit_price": unit_price,
            "currency": currency,
            "frequency": frequency,
            "term_start": start,
            "term_months": months,
            "channel": channel,
            "mode": mode,
            "charge_model": charge_model,
            "created_at": at,
        }
        with transaction(ports) as uow:
            acct = uow.accounts.get(account)
            who = actor
            if channel == Channel.SELF_SERVE:
                who = require_purchasing_authority(
                    uow, acct, actor, "contract.create", at, {"product": product, "plan": plan}
                )
            if uow.contracts.exists(acct.id, product):
                raise Conflict(f"account {account!r} already has a {product} contract")
            made = uow.contracts.create(acct, values)
            detail = {
                "product": product,
                "seats": seats,
                "plan": plan,
                "mode": mode,
                "frequency": frequency,
                "start": start.isoformat(),
                "months": months,
                "unit_price": str(unit_price),
                "channel": channel,
                **({"charge_model": charge_model} if charge_model else {}),
            }
            uow.audit.record(
                at=at,
                action="contract.create",
                outcome="ok",
                account=account,
                actor=who,
                detail=detail,
            )
            if channel == Channel.SELF_SERVE and listed is not None and who:
                shown = first_period_price(made, listed.charge_model)
                record_commitment(
                    uow,
                    acct,
                    product,
                    who,
                    at,
                    "self_serve_purchase",
                    {"plan": plan, "users": seats, "start": start.isoformat()},
                    shown,
                    made.currency,
                )
        return made

    def set_quantity(
        self,
        account: str,
        product: str,
        quantity: int,
        actor: str | None = None,
        reason: str = "contract change",
    ) -> Contract:
        """Change the contracted quantity (a renewal); never touches assigned seats."""
        at = self.ports.now()
        with transaction(self.ports) as uow:
            acct = uow.accounts.get(account)
            contract = self._as_of(uow, require_contract(uow, acct, product, lock=True))
            change_quantity(uow, acct, contract, quantity, at, actor, reason)
            return self._as_of(uow, require_contract(uow, acct, product))

    def list(self, account: str | None = None) -> list[ContractView]:
        """Contracts as of now (only those that existed then, with the quantity then)."""
        now = self.ports.now()
        with read(self.ports) as uow:
            if account is not None:
                uow.accounts.get(account)
            return [
                self.view(self._as_of(uow, c)) for c in uow.contracts.list(account, created_by=now)
            ]

    def get(self, account: str, product: str) -> Contract:
        """Raises :class:`NotFound` naming the contract."""
        with read(self.ports) as uow:
            return self._as_of(uow, require_contract(uow, uow.accounts.get(account), product))


def require_contract(
    uow: UnitOfWork, account: Account, product: str, *, lock: bool = False
) -> Contract:
    """The account's contract for ``product``; :class:`NotFound` (remedy ``create_contract``)."""
    found = uow.contracts.find(account, product, lock=lock)
    if found is None:
        raise NotFound(
            f"{product} contract of account",
            account.name,
            remedy="create_contract",
            context={"account": account.name, "product": product},
        )
    return found


def change_quantity(
    uow: UnitOfWork,
    account: Account,
    contract: Contract,
    quantity: int,
    at: dt.datetime,
    actor: str | None,
    reason: str,
) -> None:
    """Change the contracted quantity (a renewal, or seats bought) in ``uow``; never touches
    assigned seats. Audited as ``contract.quantity``: billing reads the quantity's history there.
    Raises :class:`BadInput` for a quantity outside 1 to 1,000,000
    (:func:`~seatgate.core.domain.bounds.contracted_seats`)."""
    bounds.contracted_seats(quantity, "seats")
    held = uow.seats.count_assigned(account.id, contract.product)
    record_overage_change(
        uow,
        account.name,
        contract.product,
        SeatCount(contract.quantity, held, contract.mode),
        SeatCount(quantity, held, contract.mode),
        at,
        actor,
        "quantity",
    )
    uow.contracts.set_quantity(contract.id, quantity)
    uow.contracts.bump_version(contract.id)
    uow.audit.record(
        at=at,
        action="contract.quantity",
        outcome="ok",
        account=account.name,
        actor=actor,
        detail={
            "product": contract.product,
            "from": contract.quantity,
            "to": quantity,
            "reason": reason,
        },
    )


def first_period_price(contract: Contract, charge_model: str) -> Decimal:
    """What the contracted quantity costs for the contract's first full billing period at its
    unit price (per-account plans: once): the price a self-serve purchase shows."""
    a, b = calendar.full_period(contract, contract.term_start)
    quantity = 1 if charge_model == ChargeModel.PER_ACCOUNT else contract.quantity
    return charge(
        contract.unit_price, quantity, contract.currency, anchor=contract.term_start, start=a, end=b
    ).amount


def _check_term_end(start: dt.date, months: int) -> None:
    """The first term's last day is a date seatgate takes (:data:`~.bounds.LATEST`, 2099-12-31):
    one ending later could be bought and committed to but never invoiced (no period after
    2099-12 can be billed). Raises :class:`BadInput` naming the longest term that fits."""
    after = bounds.LATEST + dt.timedelta(days=1)
    if calendar.add_months(start, months) <= after:
        return
    longest = max(
        (m for m in range(1, months) if calendar.add_months(start, m) <= after), default=0
    )
    raise BadInput(
        "months",
        months,
        f"a term that ends by {bounds.LATEST}, the last date seatgate takes: "
        + (f"at most {longest} from {start}" if longest else f"none starting {start}"),
    )
