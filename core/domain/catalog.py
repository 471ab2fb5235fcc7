"""The marketplace catalog as data: per product, base plans and add-on plans, effective-dated.

Seed 002, "Charge Models": base plans are ``per_seat`` ("charged per each activated user") or
``per_account`` ("charged once, per Talkdesk account, independently of the number of activated
seats"). "App Add-on Plans ... are not selectable on the Talkdesk My Apps management console and
will be activated in your Account by the Partner": :func:`require_base_plan` refuses them, and
:func:`require_addon_plan` gives them to the partner each product names (``partner``: the one who
publishes it; only that partner activates its add-ons).

Prices are monthly equivalents. The catalog ships in the package (``data/catalog.json``, prices
illustrative) and is replaced by a file named in ``SEATGATE_CATALOG``. Each version has an
``effective`` date; the version in force on a day gives "the then listed price" of that day. A
contract keeps the unit price it was signed at: a later version never touches it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from ..errors import BadInput, PolicyError
from .money import currency_code, normalize_price
from .vocabulary import Channel, ChargeModel

CHARGE_MODELS: tuple[str, ...] = tuple(ChargeModel)
_PARTNER = re.compile(r"[a-z0-9][a-z0-9_-]{0,59}")


@attrs.frozen
class Plan:
    product: str
    name: str
    charge_model: str
    monthly_price: Decimal
    currency: str
    addon: bool
    effective: dt.date
    partner: str | None = None  # who publishes the product (and alone activates its add-ons)

    def as_dict(self) -> dict[str, object]:
        return {
            "product": self.product,
            "partner": self.partner,
            "plan": self.name,
            "type": "add-on" if self.addon else "base",
            "charge_model": self.charge_model,
            "monthly_price": str(self.monthly_price),
            "currency": self.currency,
            "effective": self.effective.isoformat(),
        }


@attrs.frozen
class Version:
    effective: dt.date
    plans: Mapping[tuple[str, str], Plan]


class Catalog:
    """All versions, ordered by effective date."""

    def __init__(self, versions: list[Version], source: str = "") -> None:
        self.versions = sorted(versions, key=lambda v: v.effective)
        self.source = source

    def __repr__(self) -> str:
        return f"Catalog({len(self.versions)} versions from {self.source or 'memory'})"

    def version_at(self, day: dt.date) -> Version | None:
        current = None
        for version in self.versions:
            if version.effective <= day:
                current = version
        return current

    def plans_at(self, day: dt.date, product: str | None = None) -> list[Plan]:
        version = self.version_at(day)
        if version is None:
            return []
        return [p for (prod, _), p in version.plans.items() if product in (None, prod)]

    def find(self, product: str, plan: str, day: dt.date) -> Plan | None:
        version = self.version_at(day)
        return None if version is None else version.plans.get((product, plan))

    def require_base_plan(self, product: str, plan: str, day: dt.date) -> Plan:
        """The base plan an admin may select on the marketplace; an unknown plan or an add-on is
        refused. An unlisted plan answers where to go (remedy ``plan_not_listed``, seed 002: "If
        you can't find the App Base Plan you contracted, please contact Talkdesk Support via
        'Technical and Product Support' > 'AppConnect' > 'App Install/Uninstall'")."""
        found = self.find(product, plan, day)
        bases = sorted(p.name for p in self.plans_at(day, product) if not p.addon)
        if found is None:
            raise BadInput(
                f"{product} plan",
                plan,
                f"a base plan listed on the marketplace: {', '.join(bases) or '(none listed)'}",
                remedy="plan_not_listed",
                context={"product": product, "plan": plan},
            )
        if found.addon:
            raise BadInput(
                f"{product} plan",
                plan,
                f"a base plan (one of {', '.join(bases)}); {plan!r} is an add-on plan, which "
                "only the partner activates, under contracted terms",
            )
        return found

    def partner_of(self, product: str, day: dt.date) -> str | None:
        """The partner who publishes ``product`` in the version in force on ``day`` (None: the
        catalog names none, or does not list the product)."""
        return next((p.partner for p in self.plans_at(day, product) if p.partner), None)

    def partners(self, day: dt.date) -> dict[str, list[str]]:
        """Partner -> the products it publishes, as of ``day``."""
        out: dict[str, set[str]] = {}
        for p in self.plans_at(day):
            if p.partner:
                out.setdefault(p.partner, set()).add(p.product)
        return {k: sorted(v) for k, v in sorted(out.items())}

    def require_addon_plan(self, product: str, plan: str, day: dt.date) -> Plan:
        """An add-on plan of ``product`` listed on ``day``; :class:`BadInput` naming the add-on
        plans otherwise (a base plan is the admin's to select, seed 002)."""
        found = self.find(product, plan, day)
        addons = sorted(p.name for p in self.plans_at(day, product) if p.addon)
        if found is None or not found.addon:
            raise BadInput(
                f"{product} add-on plan",
                plan,
                f"an add-on plan of {product}: {', '.join(addons) or '(none listed)'}",
            )
        return found

    def charge_model(self, product: str, plan: str, day: dt.date) -> str:
        """The plan's charge model; a plan not in the catalog (a negotiated one) is per seat."""
        found = self.find(product, plan, day) or self._any_version(product, plan)
        return found.charge_model if found else "per_seat"

    def check_contract_plan(self, product: str, plan: str, day: dt.date, channel: str) -> bool:
        """Whether a contract's base plan is the catalog's. A marketplace or self-serve contract's
        plan must be a base plan the catalog lists for the product on ``day``; an order-form
        contract may carry a negotiated plan of its own (seed 002, "Buying through a Signed Order
        Form": its unit price and charge model come with it), but never an add-on plan under a
        base plan's name. Products the catalog does not list at all (a third-party adapter's) are
        not checked. Returns False for an order-form plan of its own; raises :class:`BadInput`."""
        if not self.plans_at(day, product):
            return False
        found = self.find(product, plan, day)
        if channel == Channel.ORDER_FORM and found is None:
            return False
        self.require_base_plan(product, plan, day)
        return True

    def list_price(self, product: str, plan: str, day: dt.date) -> Plan | None:
        """The base plan as listed on ``day`` (its monthly list price and currency); None when
        the catalog does not list it as a base plan."""
        found = self.find(product, plan, day)
        return None if found is None or found.addon else found

    def listed_prices(
        self, product: str, plan: str, currency: str
    ) -> list[tuple[dt.date, Decimal]]:
        """``(effective, monthly price)`` of the base plan in each version that lists it in
        ``currency``, in date order: "the then listed price" on any day is the last one effective
        by then (a self-serve contract's, billed month to month, seed 002)."""
        out = []
        for version in self.versions:
            found = version.plans.get((product, plan))
            if found is not None and not found.addon and found.currency == currency:
                out.append((version.effective, found.monthly_price))
        return out

    def _any_version(self, product: str, plan: str) -> Plan | None:
        for version in reversed(self.versions):
            if (product, plan) in version.plans:
                return version.plans[(product, plan)]
        return None

    # -- loading ------------------------------------------------------------------------------------
    @classmethod
    def from_json(cls, data: Any, source: str = "") -> Catalog:
        where = f"catalog {source}" if source else "catalog"
        if not isinstance(data, dict) or not isinstance(data.get("versions"), list):
            raise PolicyError(f'{where}: expected an object with a "versions" list')
        versions = [_version(raw, where) for raw in data["versions"]]
        if len({v.effective for v in versions}) != len(versions):
            raise PolicyError(f"{where}: two versions have the same effective date")
        return cls(versions, source=source)


def _version(raw: Any, where: str) -> Version:
    try:
        effective = dt.date.fromisoformat(raw["effective"])
        products = raw["products"]
    except (KeyError, TypeError, ValueError):
        raise PolicyError(
            f"{where}: each version needs 'effective' (YYYY-MM-DD) and 'products'"
        ) from None
    plans: dict[tuple[str, str], Plan] = {}
    for product, spec in products.items():
        partner = spec.get("partner")
        if partner is not None and not (isinstance(partner, str) and _PARTNER.fullmatch(partner)):
            raise PolicyError(
                f"{where}: {product} partner must be an identifier (letters, digits, - and _)"
            )
        for key, addon in (("base_plans", False), ("addon_plans", True)):
            for name, p in (spec.get(key) or {}).items():
                here = f"{where}: {product} plan {name!r} of {effective}"
                if p.get("charge_model") not in CHARGE_MODELS:
                    raise PolicyError(f"{here}: charge_model must be one of {CHARGE_MODELS}")
                try:
                    price = Decimal(str(p["monthly_price"]))
                except (KeyError, InvalidOperation):
                    raise PolicyError(f"{here}: monthly_price must be a decimal string") from None
                try:
                    currency = currency_code(str(p.get("currency", "")))
                    if not price.is_finite() or price < 0:
                        raise PolicyError(f"{here}: needs a price >= 0")
                    price = normalize_price(price, currency, "monthly_price")
                except BadInput as exc:
                    raise PolicyError(f"{here}: {exc}") from None
                plans[(product, name)] = Plan(
                    product,
                    name,
                    p["charge_model"],
                    price,
                    currency,
                    addon,
                    effective,
                    partner,
                )
    return Version(effective, plans)
