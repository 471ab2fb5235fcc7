"""Per-account installations of an adapter: install, enable / disable, and due uninstalls.

- **install** (seed 002 "Purchasing Authority"): the config is validated against the adapter's
  schema before anything is written, the actor must hold Install or Manage, the CRM must answer,
  the adapter's install hook runs, and the act is recorded as a purchase commitment (who, when,
  what, the price shown).
- **enable / disable** pause or resume a connector. No billing effect. The contract's
  ``entitlement_version`` is bumped so cached checks answer ``adapter_disabled`` at once.
- **due uninstalls**: an uninstall (billing) sets ``uninstall_effective`` to the term's end; once
  that day has come, the adapter's uninstall hook runs and the connector stops.

Secrets. A config names every secret as a ``${ENV_VAR}`` reference; the database keeps that
reference, never the value, and the value is resolved from the environment each time the adapter
is called. A secret given in clear is refused. Core keys (:data:`~seatgate.core.domain.connectors.
CORE_KEYS`) sit beside the adapter's own keys and go to the connector's settings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from ..domain import bounds, calendar
from ..domain.connectors import is_secret_reference, split_settings
from ..domain.env_refs import EnvScope, check_references
from ..domain.events import Installed
from ..domain.model import Account
from ..domain.pricing import charge
from ..domain.vocabulary import PRODUCTS, Channel, ChargeModel, Frequency, SeatMode
from ..errors import BadInput, Conflict, NotFound
from .base import read, require_purchasing_authority, transaction
from .commitments import record_commitment
from .ports import Ports, UnitOfWork
from .ports.stores import Installation
from .quotes import INDICATIVE

__all__ = [
    "InstallResult",
    "InstallService",
    "SelfServePurchase",
    "UninstallOutcome",
    "require_installation",
]


@attrs.frozen
class SelfServePurchase:
    """A marketplace install without a contract (seed 002's self-serve exception): a
    month-to-month contract of ``users`` seats at the then-listed ``unit_price``."""

    product: str
    plan: str
    unit_price: Decimal
    currency: str
    users: int
    at: dt.datetime
    summary: Mapping[str, Any]

    def create(self, uow: UnitOfWork, account: Account, actor: str) -> None:
        """The contract, in ``uow``'s transaction, audited like ``contract create``."""
        # The seven paid CRM integrations are hard-capped (seed 000); other marketplace apps
        # bill the users above the quantity (seed 002, auto_expand).
        mode = SeatMode.HARD_CAP if self.product in PRODUCTS else SeatMode.AUTO_EXPAND
        start = self.at.date()
        uow.contracts.create(
            account,
            {
                "product": self.product,
                "plan": self.plan,
                "quantity": self.users,
                "unit_price": self.unit_price,
                "currency": self.currency,
                "frequency": Frequency.MONTHLY,
                "term_start": start,
                "term_months": 1,
                "channel": Channel.SELF_SERVE,
                "mode": mode,
                "charge_model": None,
                "created_at": self.at,
            },
        )
        uow.audit.record(
            at=self.at,
            action="contract.create",
            outcome="ok",
            account=account.name,
            actor=actor,
            detail={
                "product": self.product,
                "seats": self.users,
                "plan": self.plan,
                "mode": mode,
                "frequency": Frequency.MONTHLY,
                "start": start.isoformat(),
                "months": 1,
                "unit_price": str(self.unit_price),
                "channel": Channel.SELF_SERVE,
                "via": "install",
            },
        )


@attrs.frozen
class InstallResult:
    """What ``install`` did. ``committed`` is False for a self-serve purchase shown but not
    confirmed (nothing written, the CRM not contacted); ``purchase`` is its summary."""

    account: str
    product: str
    adapter: str
    reinstalled: bool
    settings: Mapping[str, Any]  # redacted
    commitment: str  # how the purchase commitment was recorded
    committed: bool = True
    purchase: Mapping[str, Any] | None = None
    uninstall_withdrawn: dt.date | None = None  # the effective day of an uninstall withdrawn

    def as_dict(self) -> dict[str, Any]:
        out = {
            "account": self.account,
            "product": self.product,
            "adapter": self.adapter,
            "reinstalled": self.reinstalled,
            "settings": dict(self.settings),
            "commitment": self.commitment,
            "committed": self.committed,
        }
        if self.purchase is not None:
            out["purchase"] = dict(self.purchase)
        if self.uninstall_withdrawn is not None:
            out["uninstall_withdrawn"] = self.uninstall_withdrawn.isoformat()
        return out


@attrs.frozen
class UninstallOutcome:
    account: str
    product: str
    effective: dt.date
    ok: bool
    error: str = ""


def require_installation(uow: UnitOfWork, account: str, product: str) -> Installation:
    """The installation; :class:`NotFound` (remedy ``install``) when there is none."""
    uow.accounts.get(account)
    found = uow.installs.find(account, product)
    if found is None:
        raise NotFound(
            f"{product} installation of account",
            account,
            remedy="install",
            context={"account": account, "product": product},
        )
    return found


class InstallService:
    def __init__(self, ports: Ports) -> None:
        self.ports = ports

    def install(
        self,
        account: str,
        product: str,
        config: Mapping[str, Any],
        actor: str | None,
        *,
        plan: str | None = None,
        users: int | None = None,
        confirm: bool = False,
        retry: Any = None,
        order_form_link: Callable[[UnitOfWork, Account, str], Mapping[str, Any]] | None = None,
        env_scope: EnvScope = EnvScope.OPERATOR,
    ) -> InstallResult:
        """Install ``product``'s adapter on ``account`` with ``config`` (seed 002 install).

        Order matters: bad input is refused before anything is written or any CRM is called; the
        authority check comes before the CRM is contacted; the rows are written only after the
        CRM answered and the install hook succeeded. Reinstalling replaces the settings (the hook
        is idempotent) and is a new purchase commitment; it withdraws an uninstall that has not
        taken effect yet (with its cancellation ticket), and after it took effect it is a new
        purchase, billed from that day (issue 11, item 12).

        Without a contract, a product the marketplace lists is a self-serve purchase (seed 002:
        "Marketplace Self-Serve new app purchases ... are billed month to month"): ``plan`` and
        ``users`` name it; without ``confirm`` the purchase summary is returned and nothing is
        written; with it a month-to-month contract is created at the then-listed price, in the
        same transaction as the installation.

        ``order_form_link`` (an install link being redeemed, seed 002 "Buying through a Signed
        Order Form"): called in the install's transaction once authority is checked, with the
        unit of work, the account and the actor; it claims the link (raising rolls the install
        back) and returns what the commitment's detail records. The order form's contract
        applies: no purchase is made and no price is recorded.

        ``env_scope``: which ``${NAME}`` references the config may hold
        (:mod:`~seatgate.core.domain.env_refs`): a tenant's edge (HTTP) passes
        ``EnvScope.ACCOUNT``, the account's own namespace only; the operator's CLI any variable
        but the server's settings. A refused reference raises :class:`BadInput` before anything
        is resolved or written.
        """
        check_references(config, account, env_scope)
        ports = self.ports
        adapters = ports.adapters
        hooks = adapters.adapter(product)  # NotFound names the products that have an adapter
        info = hooks.adapter_info()
        adapter_raw, connector = split_settings(config)
        for name in adapters.secret_fields(product):
            value = adapter_raw.get(name)
            if value is not None and not is_secret_reference(value):
                raise BadInput(
                    f"config {name}",
                    "***",
                    "a ${ENV_VAR} reference (secrets are never stored in clear)",
                )
        settings = adapters.validate_settings(product, adapter_raw)  # resolves ${ENV}
        at = ports.now()
        what = {"product": product, "adapter": info.name, "action": "install"}
        with read(ports) as uow:
            acct = uow.accounts.get(account)
            has_contract = uow.contracts.find(acct, product) is not None
        if order_form_link is not None and not has_contract:
            raise NotFound(
                f"{product} contract of account",
                account,
                remedy="create_contract",
                context={"account": account, "product": product},
            )
        purchase = self._self_serve(account, product, plan, users, has_contract, at)
        if purchase is not None and not confirm:
            return InstallResult(
                account,
                product,
                info.name,
                False,
                adapters.redact(settings),
                "",
                committed=False,
                purchase=purchase.summary,
            )
        with transaction(ports) as uow:
            acct = uow.accounts.get(account)
            require_purchasing_authority(uow, acct, actor, "adapter.install", at, what)
        # Fail cleanly, without retries, on bad credentials (AuthFailed propagates at once).
        hooks.check_connection(product, settings, adapters.request_context(retry))
        hooks.install(account, product, settings)
        withdrawn: dt.date | None = None
        with transaction(ports) as uow:
            acct = uow.accounts.get(account)
            who = require_purchasing_authority(uow, acct, actor, "adapter.install", at, what)
            claimed = None if order_form_link is None else order_form_link(uow, acct, who)
            if purchase is not None:
                purchase.create(uow, acct, who)
            existed, roles_before = uow.installs.save(
                acct,
                product,
                adapter=info.name,
                settings=adapter_raw,
                connector=connector,
                at=at,
                actor=who,
            )
            if roles_before is not None and set(roles_before) != set(connector.activated_roles):
                # An adapter may read only the activated roles (seatgate_pull_users): with a new
                # set the stored roles are stale, and only a full pull reads every user's again.
                uow.installs.drop_cursor(acct.id, product)
            contract = uow.contracts.find(acct, product)
            after_uninstall = None
            if contract is not None:
                uow.contracts.bump_version(contract.id)  # an installation can change `enabled`
                after_uninstall = uow.billing.reinstall(contract.id, at)
                if after_uninstall is not None and after_uninstall[1]:
                    withdrawn = after_uninstall[0]
            # Seed 002: every install is a purchase commitment (who, when, what, price shown):
            # the self-serve purchase's price for a billing period, else the catalog's monthly
            # list price of the contract's plan when the catalog lists it.
            plan_name = contract.plan if contract is not None else None
            listed = (
                ports.catalog().list_price(product, plan_name, at.date()) if plan_name else None
            )
            detail: dict[str, Any] = {"what": "install", "plan": plan_name, "reinstall": existed}
            price = None if listed is None else listed.monthly_price
            if purchase is not None:
                detail.update(users=purchase.users, self_serve=True)
                price = Decimal(purchase.summary["per_period"])
            if after_uninstall is not None:
                key = "uninstall_withdrawn" if after_uninstall[1] else "new_purchase_after"
                detail[key] = after_uninstall[0].isoformat()
            if claimed is not None:
                # Seed 002: "your existing contract applies. No additional charges apply": the
                # commitment records who installed, and no price.
                detail.update(claimed)
                price, listed = None, None
            record_commitment(
                uow,
                acct,
                product,
                who,
                at,
                "install",
                detail,
                price,
                None if listed is None else listed.currency,
            )
            uow.audit.record(
                at=at,
                action="adapter.install",
                outcome="ok" if not existed else "reinstalled",
                account=account,
                actor=who,
                detail={
                    "product": product,
                    "adapter": info.name,
                    "settings": adapters.redact(settings),
                    **({"uninstall": detail.get("uninstall_withdrawn")} if withdrawn else {}),
                },
            )
            uow.record(
                Installed(account=account, product=product, at=at, actor=who, reinstall=existed)
            )
        return InstallResult(
            account,
            product,
            info.name,
            existed,
            adapters.redact(settings),
            "billing_commitments",
            purchase=None if purchase is None else purchase.summary,
            uninstall_withdrawn=withdrawn,
        )

    def _self_serve(
        self,
        account: str,
        product: str,
        plan: str | None,
        users: int | None,
        has_contract: bool,
        at: dt.datetime,
    ) -> SelfServePurchase | None:
        """The self-serve purchase an install without a contract makes, checked (nothing
        written); None when the account has a contract, or the marketplace does not list the
        product (a third-party adapter's: installed without a contract, checks answer
        ``no_contract``)."""
        catalog = self.ports.catalog()
        today = at.date()
        if has_contract:
            if plan is not None or users is not None:
                raise BadInput(
                    "plan",
                    plan if plan is not None else users,
                    f"no plan or user count: account {account!r} has a {product} contract "
                    "already (its terms apply; select another plan with a plan change)",
                )
            return None
        if not catalog.plans_at(today, product):
            return None
        if plan is None or users is None:
            missing = "plan" if plan is None else "users"
            raise BadInput(
                missing,
                None,
                "a base plan and a user count",
                message=f"account {account!r} has no {product} contract: create one (the order "
                "form's terms), or install it as a self-serve purchase — a base plan and a user "
                "count, billed month to month at the then-listed price",
                remedy="self_serve_purchase",
                context={"account": account, "product": product},
            )
        bounds.contracted_seats(users, "users")  # the self-serve contract's quantity
        found = catalog.require_base_plan(product, plan, today)
        quantity = 1 if found.charge_model == ChargeModel.PER_ACCOUNT else users
        end = calendar.add_months(today, 1)
        price = charge(
            found.monthly_price, quantity, found.currency, anchor=today, start=today, end=end
        )
        summary = {
            "product": product,
            "plan": plan,
            "charge_model": found.charge_model,
            "users": users,
            "frequency": "monthly",
            "list_price": str(found.monthly_price),
            "currency": found.currency,
            "per_period": str(price.amount),
            "term": "month to month",
            "start": today.isoformat(),
            "indicative": True,
            "note": INDICATIVE,
        }
        return SelfServePurchase(
            product, found.name, found.monthly_price, found.currency, users, at, summary
        )

    def set_enabled(self, account: str, product: str, enabled: bool, actor: str | None) -> bool:
        """Pause or resume a connector; returns whether anything changed. No billing effect.
        Needs Install or Manage, like the other admin acts on an installation."""
        at = self.ports.now()
        action = "adapter.enable" if enabled else "adapter.disable"
        with transaction(self.ports) as uow:
            acct = uow.accounts.get(account)
            who = require_purchasing_authority(uow, acct, actor, action, at, {"product": product})
            inst = require_installation(uow, account, product)
            if inst.uninstalled_at is not None and enabled:
                raise Conflict(
                    f"{product} on account {account!r} was uninstalled on "
                    f"{inst.uninstall_effective}; install it again instead",
                    remedy="install",
                    context={"account": account, "product": product},
                )
            changed = inst.enabled != enabled
            if changed:
                uow.installs.set_enabled(acct.id, product, enabled)
                contract = uow.contracts.find(acct, product, lock=True)
                if contract is not None:
                    # Checks read `installations.enabled` through the snapshot cache.
                    uow.contracts.bump_version(contract.id)
            uow.audit.record(
                at=at,
                action=action,
                outcome="ok" if changed else "unchanged",
                account=account,
                actor=who,
                detail={"product": product},
            )
        return changed

    def get(self, account: str, product: str) -> Installation:
        with read(self.ports) as uow:
            return require_installation(uow, account, product)

    def run_due_uninstalls(self) -> list[UninstallOutcome]:
        """Run the adapter's uninstall hook for installations whose ``uninstall_effective`` has
        come. Each is handled on its own: one failing hook (reported, retried on the next call)
        does not stop the others. A done uninstall disables the connector and is never run twice.
        """
        ports = self.ports
        today = ports.now().date()
        with read(ports) as uow:
            due = [
                i
                for i in uow.installs.list()
                if i.uninstall_effective is not None
                and i.uninstall_effective <= today
                and i.uninstalled_at is None
            ]
        out = []
        for inst in due:
            effective = inst.uninstall_effective
            assert effective is not None
            try:
                hooks = ports.adapters.adapter(inst.product)
                settings = ports.adapters.validate_settings(inst.product, inst.stored)
                hooks.uninstall(inst.account, inst.product, settings)
            except Exception as exc:  # reported and retried next time; the rest still run
                message = ports.adapters.scrub(str(exc), {})
                out.append(UninstallOutcome(inst.account, inst.product, effective, False, message))
                continue
            at = ports.now()
            with transaction(ports) as uow:
                acct = uow.accounts.get(inst.account)
                uow.installs.mark_uninstalled(acct.id, inst.product, at)
                contract = uow.contracts.find(acct, inst.product, lock=True)
                if contract is not None:
                    uow.contracts.bump_version(contract.id)
                uow.audit.record(
                    at=at,
                    action="adapter.uninstall_hook",
                    outcome="ok",
                    account=inst.account,
                    detail={"product": inst.product, "effective": effective.isoformat()},
                )
            out.append(UninstallOutcome(inst.account, inst.product, effective, True))
        return out

    def list(self) -> list[Installation]:
        with read(self.ports) as uow:
            return uow.installs.list()
