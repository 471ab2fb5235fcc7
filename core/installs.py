"""Per-account installations of an adapter: install, enable / disable, and due uninstalls.

- **install** (seed 002 "Purchasing Authority"): the config is validated against the adapter's
  :class:`~seatgate.core.config.ConfigSchema` before anything is written, the actor must hold
  Install or Manage, the CRM must answer, the adapter's install hook runs, and the act is recorded
  as a purchase commitment (who, when, what, the price shown).
- **enable / disable** pause or resume a connector. No billing effect. The contract's
  ``entitlement_version`` is bumped so cached checks answer ``adapter_disabled`` at once.
- **due uninstalls**: ``seatgate uninstall`` (billing) sets ``uninstall_effective`` to the term's
  end; once that day has come, the adapter's uninstall hook runs and the connector stops.

Secrets. A config file names every secret as a ``${ENV_VAR}`` reference; the database keeps that
reference, never the value, and the value is resolved from the environment each time the adapter is
called. A secret given in clear is refused (nothing to encrypt it with that we could keep apart from
the database). Core keys (``activated_roles``, ``sync_interval_minutes``, ``full_every``,
``deletion_guard_share``, ``deletion_guard_min``) sit beside the adapter's own keys in the file and go
to ``sync_connectors``; the adapter's schema sees only its own keys.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from . import audit, purchases
from .accounts import get_account, require_purchasing_authority
from .config import ConfigSchema, redact
from .contracts import bump_version, find_contract
from .domain import Account, Contract
from .errors import BadInput, Conflict, NotFound
from .retry import RequestContext, RetryPolicy
from .storage.tables import accounts, installations
from .sync_tables import sync_connectors, sync_cursors

if TYPE_CHECKING:
    from .app import App

__all__ = [
    "CORE_KEYS",
    "ConnectorSettings",
    "Installation",
    "install",
    "load_config_file",
    "run_due_uninstalls",
    "set_enabled",
]


@attrs.frozen
class ConnectorSettings:
    """What the core keeps about a connector besides the adapter's settings."""

    activated_roles: tuple[str, ...] = ()
    interval_minutes: int = 60
    full_every: int = 24
    guard_share: float = 0.10
    guard_min: int = 5


CORE_KEYS: dict[str, str] = {
    "activated_roles": "a list of role names",
    "sync_interval_minutes": "a whole number of minutes above 0",
    "full_every": "a whole number of runs, 1 or more",
    "deletion_guard_share": "a share between 0 and 1, e.g. 0.1",
    "deletion_guard_min": "a whole number of users, 0 or more",
}


def _split_core(raw: Mapping[str, Any]) -> tuple[dict[str, Any], ConnectorSettings]:
    adapter_raw = {k: v for k, v in raw.items() if k not in CORE_KEYS}
    core = {k: raw[k] for k in CORE_KEYS if k in raw}
    roles = core.get("activated_roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) and r for r in roles):
        raise BadInput("config activated_roles", roles, CORE_KEYS["activated_roles"])

    def whole(key: str, default: int, low: int) -> int:
        value = core.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise BadInput(f"config {key}", value, CORE_KEYS[key])
        return value

    share = core.get("deletion_guard_share", 0.10)
    if not isinstance(share, int | float) or isinstance(share, bool) or not 0 < share <= 1:
        raise BadInput("config deletion_guard_share", share, CORE_KEYS["deletion_guard_share"])
    return adapter_raw, ConnectorSettings(
        activated_roles=tuple(dict.fromkeys(roles)),
        interval_minutes=whole("sync_interval_minutes", 60, 1),
        full_every=whole("full_every", 24, 1),
        guard_share=float(share),
        guard_min=whole("deletion_guard_min", 5, 0),
    )


_SECRET_REF = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")


def _check_secret_refs(schema: ConfigSchema, raw: Mapping[str, Any]) -> None:
    # The stored settings are the file's own text; a secret must therefore be a pure reference.
    for field in schema.fields:
        value = raw.get(field.name)
        if (
            field.secret
            and value is not None
            and (not isinstance(value, str) or not _SECRET_REF.fullmatch(value))
        ):
            raise BadInput(
                f"config {field.name}",
                "***",
                "a ${ENV_VAR} reference (secrets are never stored in clear)",
            )


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON or TOML config file (by extension; otherwise JSON, then TOML)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError:
        raise BadInput("config file", str(path), "a readable JSON or TOML file") from None
    loaders: list[tuple[str, Any]] = [("JSON", json.loads), ("TOML", tomllib.loads)]
    if p.suffix.lower() == ".toml":
        loaders.reverse()
    elif p.suffix.lower() == ".json":
        loaders = loaders[:1]
    for _name, load in loaders:
        try:
            data = load(text)
        except (json.JSONDecodeError, tomllib.TOMLDecodeError):
            continue
        if not isinstance(data, dict):
            raise BadInput("config file", str(path), "a JSON object or TOML table of settings")
        return data
    raise BadInput("config file", str(path), "valid JSON or TOML")


@attrs.frozen
class Installation:
    account: str
    account_id: int
    product: str
    adapter: str
    enabled: bool
    stored: Mapping[str, Any] = attrs.field(repr=False)  # ${ENV} references, never a clear secret
    installed_at: dt.datetime
    installed_by: str
    uninstall_effective: dt.date | None
    connector: ConnectorSettings
    uninstalled_at: dt.datetime | None = None

    def settings(self, schema: ConfigSchema) -> dict[str, Any]:
        """The adapter's settings with ``${ENV}`` resolved now and secrets wrapped."""
        return schema.validate(self.stored)

    def as_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "product": self.product,
            "adapter": self.adapter,
            "enabled": self.enabled,
            "settings": dict(self.stored),  # references only: safe to show
            "activated_roles": list(self.connector.activated_roles),
            "sync_interval_minutes": self.connector.interval_minutes,
            "full_every": self.connector.full_every,
            "deletion_guard_share": self.connector.guard_share,
            "deletion_guard_min": self.connector.guard_min,
            "installed_at": self.installed_at,
            "installed_by": self.installed_by,
            "uninstall_effective": self.uninstall_effective,
        }


def _installation_query() -> sa.Select[Any]:
    return (
        sa.select(
            installations,
            accounts.c.name.label("account_name"),
            sync_connectors.c.activated_roles,
            sync_connectors.c.interval_minutes,
            sync_connectors.c.full_every,
            sync_connectors.c.guard_share,
            sync_connectors.c.guard_min,
            sync_connectors.c.uninstalled_at,
        )
        .join(accounts, accounts.c.id == installations.c.account_id)
        .outerjoin(
            sync_connectors,
            sa.and_(
                sync_connectors.c.account_id == installations.c.account_id,
                sync_connectors.c.product == installations.c.product,
            ),
        )
    )


def _to_installation(row: Any) -> Installation:
    connector = (
        ConnectorSettings()
        if row.interval_minutes is None
        else ConnectorSettings(
            tuple(row.activated_roles or ()),
            row.interval_minutes,
            row.full_every,
            row.guard_share,
            row.guard_min,
        )
    )
    return Installation(
        account=row.account_name,
        account_id=row.account_id,
        product=row.product,
        adapter=row.adapter,
        enabled=bool(row.enabled),
        stored=row.settings or {},
        installed_at=row.installed_at,
        installed_by=row.installed_by,
        uninstall_effective=row.uninstall_effective,
        connector=connector,
        uninstalled_at=row.uninstalled_at,
    )


def find_installation(conn: sa.Connection, account: str, product: str) -> Installation | None:
    row = conn.execute(
        _installation_query().where(accounts.c.name == account, installations.c.product == product)
    ).first()
    return None if row is None else _to_installation(row)


def get_installation(conn: sa.Connection, account: str, product: str) -> Installation:
    get_account(conn, account)
    found = find_installation(conn, account, product)
    if found is None:
        raise NotFound(
            f"{product} installation of account",
            account,
            f"install it with `seatgate install {account} {product} --config FILE`",
        )
    return found


def list_installations(conn: sa.Connection) -> list[Installation]:
    query = _installation_query().order_by(accounts.c.name, installations.c.product)
    return [_to_installation(r) for r in conn.execute(query)]


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


def install(
    app: App,
    account: str,
    product: str,
    config: Mapping[str, Any],
    actor: str | None,
    *,
    retry: RetryPolicy | None = None,
) -> InstallResult:
    """Install ``product``'s adapter on ``account`` with ``config`` (seed 002 install).

    Order matters: bad input is refused before anything is written or any CRM is called; the
    authority check comes before the CRM is contacted; the rows are written only after the CRM
    answered and the install hook succeeded. Reinstalling replaces the settings (the hook is
    idempotent) and is a new purchase commitment.
    """
    hooks = app.plugins.adapter(product)  # NotFound names the products that have an adapter
    info = hooks.adapter_info()
    schema = info.config_schema
    adapter_raw, connector = _split_core(config)
    _check_secret_refs(schema, adapter_raw)
    settings = schema.validate(adapter_raw)  # resolves ${ENV}: an unset variable is bad input
    at = app.now()
    what = {"product": product, "adapter": info.name, "action": "install"}
    with app.write() as conn:
        acct = get_account(conn, account)
        require_purchasing_authority(conn, acct, actor, "adapter.install", at, what)
    # Fail cleanly, without retries, on bad credentials (AuthFailed propagates at once).
    hooks.check_connection(product, settings, RequestContext(policy=retry or RetryPolicy()))
    hooks.install(account, product, settings)
    with app.write() as conn:
        acct = get_account(conn, account)
        who = require_purchasing_authority(conn, acct, actor, "adapter.install", at, what)
        existing = find_installation(conn, account, product)
        values = {"adapter": info.name, "settings": dict(adapter_raw)}
        if existing is None:
            conn.execute(
                installations.insert().values(
                    account_id=acct.id,
                    product=product,
                    enabled=True,
                    installed_at=at,
                    installed_by=who,
                    **values,
                )
            )
        else:
            conn.execute(
                installations.update()
                .where(installations.c.account_id == acct.id, installations.c.product == product)
                .values(uninstall_effective=None, **values)
            )
        connector_values = {
            "activated_roles": list(connector.activated_roles),
            "interval_minutes": connector.interval_minutes,
            "full_every": connector.full_every,
            "guard_share": connector.guard_share,
            "guard_min": connector.guard_min,
            "uninstalled_at": None,
        }
        before = conn.execute(
            sa.select(sync_connectors.c.activated_roles).where(
                sync_connectors.c.account_id == acct.id, sync_connectors.c.product == product
            )
        ).scalar()
        if before is not None and set(before) != set(connector.activated_roles):
            # An adapter may read only the activated roles (seatgate_pull_users): with a new set,
            # the stored roles are stale, and only a full pull reads every user's again.
            conn.execute(
                sync_cursors.delete().where(
                    sync_cursors.c.account_id == acct.id, sync_cursors.c.product == product
                )
            )
        done = conn.execute(
            sync_connectors.update()
            .where(sync_connectors.c.account_id == acct.id, sync_connectors.c.product == product)
            .values(**connector_values)
        )
        if not done.rowcount:
            conn.execute(
                sync_connectors.insert().values(
                    account_id=acct.id, product=product, **connector_values
                )
            )
        contract = find_contract(conn, acct, product)
        if contract is not None:
            bump_version(conn, contract.id)  # an installation row can change `enabled`
        commitment = _record_commitment(
            app, conn, acct, product, who, at, contract, existing is not None
        )
        audit.record(
            conn,
            at=at,
            action="adapter.install",
            outcome="ok" if existing is None else "reinstalled",
            account=account,
            actor=who,
            detail={"product": product, "adapter": info.name, "settings": redact(settings)},
        )
    app.plugins.listeners.installed(account, product, who, at)
    return InstallResult(
        account, product, info.name, existing is not None, redact(settings), commitment
    )


def _record_commitment(
    app: App,
    conn: sa.Connection,
    acct: Account,
    product: str,
    actor: str,
    at: dt.datetime,
    contract: Contract | None,
    reinstall: bool,
) -> str:
    """Seed 002: every install is a purchase commitment (who, when, what, price shown).

    The billing concern owns commitments (``billing_commitments``, written by
    :func:`seatgate.core.purchases._commit`); the price shown is the catalog's monthly list price
    of the contract's plan when the catalog has it.
    """
    plan = contract.plan if contract is not None else None
    price = app.list_price(product, plan) if plan else None
    detail = {"what": "install", "plan": plan, "reinstall": reinstall}
    purchases._commit(
        conn,
        acct,
        product,
        actor,
        at,
        "install",
        detail,
        None if price is None else price[0],
        None if price is None else price[1],
    )
    return "billing_commitments"


def set_enabled(app: App, account: str, product: str, enabled: bool, actor: str | None) -> bool:
    """Pause or resume a connector; returns whether anything changed. No billing effect.

    Needs Install or Manage, like the other admin acts on an installation.
    """
    at = app.now()
    action = "adapter.enable" if enabled else "adapter.disable"
    with app.write() as conn:
        acct = get_account(conn, account)
        who = require_purchasing_authority(conn, acct, actor, action, at, {"product": product})
        inst = get_installation(conn, account, product)
        if inst.uninstalled_at is not None and enabled:
            raise Conflict(
                f"{product} on account {account!r} was uninstalled on "
                f"{inst.uninstall_effective}; install it again instead"
            )
        changed = inst.enabled != enabled
        if changed:
            conn.execute(
                installations.update()
                .where(installations.c.account_id == acct.id, installations.c.product == product)
                .values(enabled=enabled)
            )
            contract = find_contract(conn, acct, product, lock=True)
            if contract is not None:
                # Checks read `installations.enabled` through the snapshot cache.
                bump_version(conn, contract.id)
        audit.record(
            conn,
            at=at,
            action=action,
            outcome="ok" if changed else "unchanged",
            account=account,
            actor=who,
            detail={"product": product},
        )
    return changed


@attrs.frozen
class UninstallOutcome:
    account: str
    product: str
    effective: dt.date
    ok: bool
    error: str = ""


def run_due_uninstalls(app: App) -> list[UninstallOutcome]:
    """Run the adapter's uninstall hook for installations whose ``uninstall_effective`` has come.

    Each is handled on its own: one failing hook (reported, retried on the next call) does not
    stop the others. A done uninstall disables the connector and is never run twice.
    """
    today = app.now().date()
    with app.db.read() as conn:
        due = [
            i
            for i in list_installations(conn)
            if i.uninstall_effective is not None
            and i.uninstall_effective <= today
            and i.uninstalled_at is None
        ]
    out = []
    for inst in due:
        effective = inst.uninstall_effective
        assert effective is not None
        try:
            hooks = app.plugins.adapter(inst.product)
            hooks.uninstall(
                inst.account, inst.product, inst.settings(hooks.adapter_info().config_schema)
            )
        except Exception as exc:  # reported and retried next time; the rest still run
            out.append(UninstallOutcome(inst.account, inst.product, effective, False, str(exc)))
            continue
        at = app.now()
        with app.write() as conn:
            acct = get_account(conn, inst.account)
            conn.execute(
                installations.update()
                .where(
                    installations.c.account_id == acct.id, installations.c.product == inst.product
                )
                .values(enabled=False)
            )
            done = conn.execute(
                sync_connectors.update()
                .where(
                    sync_connectors.c.account_id == acct.id,
                    sync_connectors.c.product == inst.product,
                )
                .values(uninstalled_at=at)
            )
            if not done.rowcount:
                conn.execute(
                    sync_connectors.insert().values(
                        account_id=acct.id,
                        product=inst.product,
                        activated_roles=[],
                        interval_minutes=60,
                        full_every=24,
                        guard_share=0.1,
                        guard_min=5,
                        uninstalled_at=at,
                    )
                )
            contract = find_contract(conn, acct, inst.product, lock=True)
            if contract is not None:
                bump_version(conn, contract.id)
            audit.record(
                conn,
                at=at,
                action="adapter.uninstall_hook",
                outcome="ok",
                account=inst.account,
                detail={"product": inst.product, "effective": effective.isoformat()},
            )
        out.append(UninstallOutcome(inst.account, inst.product, effective, True))
    return out
