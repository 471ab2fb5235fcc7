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
from collections.abc import Mapping
from typing import Any

import attrs

from ..domain.connectors import is_secret_reference, split_settings
from ..domain.events import Installed
from ..errors import BadInput, Conflict, NotFound
from .base import read, require_purchasing_authority, transaction
from .commitments import record_commitment
from .ports import Ports, UnitOfWork
from .ports.stores import Installation

__all__ = ["InstallResult", "InstallService", "UninstallOutcome", "require_installation"]


@attrs.frozen
class InstallResult:
    account: str
    product: str
    adapter: str
    reinstalled: bool
    settings: Mapping[str, Any]  # redacted
    commitment: str  # how the purchase commitment was recorded

    def as_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "product": self.product,
            "adapter": self.adapter,
            "reinstalled": self.reinstalled,
            "settings": dict(self.settings),
            "commitment": self.commitment,
        }


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
        retry: Any = None,
    ) -> InstallResult:
        """Install ``product``'s adapter on ``account`` with ``config`` (seed 002 install).

        Order matters: bad input is refused before anything is written or any CRM is called; the
        authority check comes before the CRM is contacted; the rows are written only after the
        CRM answered and the install hook succeeded. Reinstalling replaces the settings (the hook
        is idempotent) and is a new purchase commitment.
        """
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
        with transaction(ports) as uow:
            acct = uow.accounts.get(account)
            require_purchasing_authority(uow, acct, actor, "adapter.install", at, what)
        # Fail cleanly, without retries, on bad credentials (AuthFailed propagates at once).
        hooks.check_connection(product, settings, adapters.request_context(retry))
        hooks.install(account, product, settings)
        with transaction(ports) as uow:
            acct = uow.accounts.get(account)
            who = require_purchasing_authority(uow, acct, actor, "adapter.install", at, what)
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
            if contract is not None:
                uow.contracts.bump_version(contract.id)  # an installation can change `enabled`
            # Seed 002: every install is a purchase commitment (who, when, what, price shown):
            # the catalog's monthly list price of the contract's plan when the catalog lists it.
            plan = contract.plan if contract is not None else None
            listed = ports.catalog().list_price(product, plan, at.date()) if plan else None
            record_commitment(
                uow,
                acct,
                product,
                who,
                at,
                "install",
                {"what": "install", "plan": plan, "reinstall": existed},
                None if listed is None else listed.monthly_price,
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
                },
            )
            uow.record(
                Installed(account=account, product=product, at=at, actor=who, reinstall=existed)
            )
        return InstallResult(
            account, product, info.name, existed, adapters.redact(settings), "billing_commitments"
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
