"""Domain events: what happened, in the past tense, as plain data.

A service records events in its unit of work; storage writes them to the event outbox in the same
transaction as the change, and after the commit they are delivered to the listener plugins (the
billing core, metrics, a deployment's own listeners). An event that could not be delivered stays
in the outbox and is delivered again, so a listener must be idempotent on :attr:`Event.id`.

Each event is serialised as ``{"kind": ..., **fields}`` (:meth:`Event.as_dict`) and read back with
:func:`from_dict`; field values are JSON-friendly (strings, numbers, ISO dates).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, ClassVar

import attrs

__all__ = [
    "EVENT_KINDS",
    "AddOnActivated",
    "AddOnDeactivated",
    "Event",
    "Installed",
    "InvoiceIssued",
    "OverageEntered",
    "OverageLeft",
    "PlanChanged",
    "RenewalAdjusted",
    "SeatsAssigned",
    "SeatsRefused",
    "SeatsUnassigned",
    "SyncFinished",
    "Uninstalled",
    "UsersActivated",
    "WebhookDisabled",
    "from_dict",
]


def _new_id() -> str:
    return uuid.uuid4().hex


@attrs.frozen(kw_only=True)
class Event:
    """Base of every event. ``id`` identifies one occurrence (listeners de-duplicate on it)."""

    kind: ClassVar[str] = "event"
    account: str
    product: str
    at: dt.datetime
    id: str = attrs.field(factory=_new_id)

    def as_dict(self) -> dict[str, Any]:
        """``{"kind": ..., field: value, ...}`` with instants and dates as ISO text."""
        out: dict[str, Any] = {"kind": self.kind}
        for field in attrs.fields(type(self)):
            value = getattr(self, field.name)
            if isinstance(value, dt.datetime | dt.date):
                value = value.isoformat()
            elif isinstance(value, tuple):
                value = list(value)
            out[field.name] = value
        return out


@attrs.frozen(kw_only=True)
class SeatsAssigned(Event):
    """Users gained a seat: by an admin, by grandfathering at enablement, or by auto install."""

    kind: ClassVar[str] = "seats.assigned"
    emails: tuple[str, ...]
    actor: str
    reason: str  # admin | enablement | auto_install


@attrs.frozen(kw_only=True)
class SeatsUnassigned(Event):
    """Users lost their seat."""

    kind: ClassVar[str] = "seats.unassigned"
    emails: tuple[str, ...]
    actor: str
    reason: str


@attrs.frozen(kw_only=True)
class UsersActivated(Event):
    """Users were activated on a product, by an admin or by a sync's auto install (seed 002:
    "Adding Users above Contracted Quantities ... triggers Billing updates").

    :param assigned_after: seats held right after the activation.
    :param above_contract: how many of these users the contract does not cover.
    :param price_shown: the indicative price per billing period of those users, from the same
        pricing function as invoices (a decimal string; "0.00" when the contract covers them).
    """

    kind: ClassVar[str] = "users.activated"
    emails: tuple[str, ...]
    actor: str
    assigned_after: int
    above_contract: int = 0
    price_shown: str = "0.00"
    currency: str = "USD"


@attrs.frozen(kw_only=True)
class Installed(Event):
    """A product was installed (or installed again) on an account."""

    kind: ClassVar[str] = "app.installed"
    actor: str
    reinstall: bool = False


@attrs.frozen(kw_only=True)
class Uninstalled(Event):
    """An uninstall was requested; it takes effect at the end of the term (seed 002)."""

    kind: ClassVar[str] = "app.uninstalled"
    actor: str
    effective: dt.date


@attrs.frozen(kw_only=True)
class PlanChanged(Event):
    """Another base plan was selected (seed 002: billed for all selected users)."""

    kind: ClassVar[str] = "plan.changed"
    actor: str
    from_plan: str
    to_plan: str
    effective: dt.date


@attrs.frozen(kw_only=True)
class RenewalAdjusted(Event):
    """Support set the renewal quantity of a ``renewal_adjustment`` ticket (seed 002: "To trigger
    Billing adjustments at renewal, you need to issue a Billing ticket with Talkdesk Support"):
    from ``effective`` (the renewal) the contracted quantity is ``renewal_quantity``."""

    kind: ClassVar[str] = "renewal.adjusted"
    actor: str
    ticket: int
    renewal_quantity: int
    effective: dt.date


@attrs.frozen(kw_only=True)
class SyncFinished(Event):
    """A sync run ended (succeeded, failed or halted); ``at`` is when it started. The fields are
    those of :class:`~.records.SyncSummary`."""

    kind: ClassVar[str] = "sync.finished"
    run_id: int | None
    outcome: str
    full: bool
    seconds: float = 0.0
    pulled: int = 0
    created: int = 0
    updated: int = 0
    deactivated: int = 0
    quarantined: int = 0
    seated: int = 0
    gated: int = 0
    agents_synced: int = 0
    requests: int = 0
    retries: int = 0
    message: str = ""


@attrs.frozen(kw_only=True)
class SeatsRefused(Event):
    """An admin's assignment refused users (seed 000: the hard cap, the overage lock; unknown or
    inactive users). ``reasons[i]`` is why ``emails[i]`` was refused (a
    :class:`~.vocabulary.RefusalReason`). Users a sync's auto install leaves waiting are reported
    by its run, not here."""

    kind: ClassVar[str] = "seats.refused"
    emails: tuple[str, ...]
    reasons: tuple[str, ...]
    actor: str


@attrs.frozen(kw_only=True)
class OverageEntered(Event):
    """A hard-cap contract now holds more seats than it contracts (seed 000: "unable to add
    additional users until they reduce their user count to their contracted seats, or purchase
    additional seats"). ``cause``: what did it (``grandfather``, ``quantity``)."""

    kind: ClassVar[str] = "overage.entered"
    contracted: int
    assigned: int
    actor: str
    cause: str


@attrs.frozen(kw_only=True)
class OverageLeft(Event):
    """A hard-cap contract in overage holds no more seats than it contracts again (users removed,
    seats bought, a higher quantity). ``cause`` as for :class:`OverageEntered`."""

    kind: ClassVar[str] = "overage.left"
    contracted: int
    assigned: int
    actor: str
    cause: str


@attrs.frozen(kw_only=True)
class AddOnActivated(Event):
    """The partner activated an add-on plan on the account (seed 002: "App Add-on Plans ... will
    be activated in your Account by the Partner, based on contracted terms"), billed from
    ``effective`` under the contract's frequency and term. ``quantity`` is 1 for a per-account
    add-on; ``unit_price`` a monthly price (decimal string)."""

    kind: ClassVar[str] = "addon.activated"
    addon: str
    partner: str
    actor: str
    charge_model: str
    quantity: int
    unit_price: str
    currency: str
    effective: dt.date


@attrs.frozen(kw_only=True)
class AddOnDeactivated(Event):
    """The partner deactivated an add-on; like an uninstall it takes effect (and its billing
    stops) at the end of the current term, ``effective``."""

    kind: ClassVar[str] = "addon.deactivated"
    addon: str
    partner: str
    actor: str
    effective: dt.date


@attrs.frozen(kw_only=True)
class InvoiceIssued(Event):
    """A billing run issued an invoice (``product`` is empty: an invoice covers every product of
    the account in one currency; ``products`` names them). ``total`` is a decimal string."""

    kind: ClassVar[str] = "invoice.issued"
    number: str
    period: str
    total: str
    currency: str
    products: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class WebhookDisabled(Event):
    """An endpoint kept failing and seatgate stopped sending to it (``product`` is empty). Its
    deliveries are kept; enabling it again sends them."""

    kind: ClassVar[str] = "webhook.disabled"
    endpoint: str
    url: str
    failures: int
    failing_since: str


EVENT_KINDS: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        SeatsAssigned,
        SeatsUnassigned,
        SeatsRefused,
        UsersActivated,
        OverageEntered,
        OverageLeft,
        Installed,
        Uninstalled,
        PlanChanged,
        RenewalAdjusted,
        AddOnActivated,
        AddOnDeactivated,
        InvoiceIssued,
        SyncFinished,
        WebhookDisabled,
    )
}


def from_dict(data: dict[str, Any]) -> Event:
    """The event :meth:`Event.as_dict` wrote. Raises :class:`KeyError` for an unknown kind."""
    cls = EVENT_KINDS[data["kind"]]
    values: dict[str, Any] = {}
    for field in attrs.fields(cls):
        if field.name not in data:
            continue
        value = data[field.name]
        if field.name == "at":
            value = dt.datetime.fromisoformat(value)
        elif field.name == "effective":
            value = dt.date.fromisoformat(value)
        elif isinstance(value, list):  # tuples are written as lists
            value = tuple(value)
        values[field.name] = value
    return cls(**values)
