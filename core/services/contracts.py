"""Contracts: what an account bought for one product (one contract per account and product)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import attrs

from ..domain import calendar
from ..domain.model import Account, Contract
from ..domain.vocabulary import Channel, Frequency, SeatMode, check_choice
from ..errors import BadInput, Conflict, NotFound
from .base import read, transaction
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
            "grandfathered_at": c.grandfathered_at.isoformat() if c.grandfathered_at else None,
        }


class ContractService:
    def __init__(self, ports: Ports) -> None:
        self.ports = ports

    def view(self, contract: Contract) -> ContractView:
        return ContractView(contract, calendar.current_term(contract, self.ports.now().date()))

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
        actor: str | None = None,
    ) -> Contract:
        """Record what ``account`` bought for ``product``.

        :param seats: the contracted quantity (seats), 1 or more.
        :param unit_price: the monthly price of a seat; default: the catalog's list price.
        :param months: the term, in months.
        Raises :class:`BadInput` (nothing written) or :class:`Conflict` (a contract exists).
        """
        ports = self.ports
        at = ports.now()
        check_choice("product", product, tuple(sorted(ports.adapters.products())))
        if seats <= 0:
            raise BadInput("seats", seats, "a whole number of seats above 0")
        if months <= 0:
            raise BadInput(
                "months", months, "a term of 1 month or more (the term must end after it starts)"
            )
        check_choice("frequency", frequency, Frequency)
        check_choice("channel", channel, Channel)
        check_choice("mode", mode, SeatMode)
        if not plan:
            raise BadInput("plan", plan, "a plan name")
        catalog = ports.catalog()
        catalog.check_contract_plan(product, plan, at.date())
        if unit_price is None:
            listed = catalog.list_price(product, plan, at.date())
            if listed is None:
                raise BadInput(
                    "unit price",
                    None,
                    f"an amount (the catalog lists no price for plan {plan!r} of {product})",
                )
            unit_price, currency = listed.monthly_price, currency or listed.currency
        currency = currency or "USD"
        if len(currency) != 3 or not currency.isalpha():
            raise BadInput("currency", currency, "an ISO 4217 code such as USD")
        values = {
            "product": product,
            "plan": plan,
            "quantity": seats,
            "unit_price": unit_price,
            "currency": currency.upper(),
            "frequency": frequency,
            "term_start": start,
            "term_months": months,
            "channel": channel,
            "mode": mode,
            "created_at": at,
        }
        with transaction(ports) as uow:
            acct = uow.accounts.get(account)
            if uow.contracts.exists(acct.id, product):
                raise Conflict(f"account {account!r} already has a {product} contract")
            made = uow.contracts.create(acct, values)
            uow.audit.record(
                at=at,
                action="contract.create",
                outcome="ok",
                account=account,
                actor=actor,
                detail={
                    "product": product,
                    "seats": seats,
                    "plan": plan,
                    "mode": mode,
                    "frequency": frequency,
                    "start": start.isoformat(),
                    "months": months,
                    "unit_price": str(unit_price),
                    "channel": channel,
                },
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
            contract = require_contract(uow, acct, product, lock=True)
            change_quantity(uow, acct, contract, quantity, at, actor, reason)
            return require_contract(uow, acct, product)

    def list(self, account: str | None = None) -> list[ContractView]:
        with read(self.ports) as uow:
            if account is not None:
                uow.accounts.get(account)
            return [self.view(c) for c in uow.contracts.list(account)]

    def get(self, account: str, product: str) -> Contract:
        """Raises :class:`NotFound` naming the contract."""
        with read(self.ports) as uow:
            return require_contract(uow, uow.accounts.get(account), product)


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
    assigned seats. Audited as ``contract.quantity``: billing reads the quantity's history there."""
    if quantity < 0:
        raise BadInput("seats", quantity, "a whole number of seats, 0 or more")
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
