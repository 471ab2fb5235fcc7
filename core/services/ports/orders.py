"""The ports of issue 18: install links and their mail, add-ons the partner activates, outbound
webhooks — their stores, and the outside world they need (the server secret, an SMTP server, an
HTTP client), which bootstrap builds (:class:`OrdersIO`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

import attrs

if TYPE_CHECKING:
    from ...domain.billing import AddOn


__all__ = [
    "AddOnRow",
    "AddOnStore",
    "ClaimedDelivery",
    "DeliveryRow",
    "EndpointRow",
    "InstallLinkStore",
    "LinkRow",
    "MailNotSent",
    "MailRow",
    "Mailer",
    "OrdersIO",
    "PostResult",
    "ServerKeys",
    "WebhookPoster",
    "WebhookStore",
]


# -- the outside world --------------------------------------------------------------------------------
class ServerKeys(Protocol):
    """Operations under the server secret (``SEATGATE_SECRET_KEY``), which never leaves it."""

    def check(self) -> None:
        """Raise :class:`~seatgate.core.errors.BadInput` when the secret is unusable (too
        short): asked before anything is written or claimed."""
        ...

    def sign(self, purpose: str, data: bytes) -> bytes:
        """HMAC-SHA256 of ``data`` under a key derived from the secret for ``purpose``."""
        ...

    def seal(self, text: str) -> str:
        """``text`` encrypted (authenticated): only :meth:`unseal` with the same secret reads it."""
        ...

    def unseal(self, sealed: str) -> str:
        """The text :meth:`seal` encrypted; raises :class:`~seatgate.core.errors.Conflict` when
        it was sealed under another secret."""
        ...


class MailNotSent(Exception):
    """The SMTP server refused or could not be reached; the message carries no credential."""


class Mailer(Protocol):
    def check(self) -> None:
        """Raise :class:`~seatgate.core.errors.BadInput` when the configuration is unusable (a
        bad URL): asked before anything is written, so a bad setting writes nothing."""
        ...

    def send(self, recipient: str, subject: str, body: str) -> None:
        """Send one plain-text message; raises :class:`MailNotSent`."""
        ...


@attrs.frozen
class PostResult:
    """One attempt: the HTTP status (None: no answer — refused, reset, timed out), what went
    wrong (no secret in it), and how long it took in seconds."""

    status: int | None
    error: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class WebhookPoster(Protocol):
    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> PostResult:
        """POST ``body`` to ``url``; never raises for what the receiver does."""
        ...


@attrs.frozen
class OrdersIO:
    """What bootstrap hands the order services. ``keys`` is None without a server secret (install
    links and webhooks are refused, remedy ``set_secret_key``); ``mailer`` is None without
    ``SEATGATE_SMTP_URL`` (mail stays in the outbox and is printed)."""

    keys: ServerKeys | None = None
    mailer: Mailer | None = None
    poster: WebhookPoster | None = None
    console_url: str = "http://localhost:8000"
    # The operator's SEATGATE_WEBHOOK_ALLOW_PRIVATE: endpoints may be at private addresses.
    webhook_private: bool = False


# -- install links ------------------------------------------------------------------------------------
@attrs.frozen
class LinkRow:
    id: str
    account: str
    product: str
    contract_id: int
    email: str
    created_at: dt.datetime
    created_by: str | None
    expires_at: dt.datetime
    used_at: dt.datetime | None = None
    used_by: str | None = None
    revoked_at: dt.datetime | None = None
    revoked_by: str | None = None
    mail_status: str = ""


@attrs.frozen
class MailRow:
    id: int
    recipient: str
    subject: str
    body: str  # ``{link}`` stands where the install link goes
    link_id: str | None
    status: str
    error: str


class InstallLinkStore(Protocol):
    def add(self, row: LinkRow, account_id: int) -> None: ...

    def get(self, link_id: str, *, lock: bool = False) -> LinkRow | None: ...

    def list(
        self,
        account_id: int,
        created_by: dt.datetime,
        *,
        after: tuple[dt.datetime, str] | None = None,
        limit: int | None = None,
    ) -> list[LinkRow]:
        """The account's links made on or before ``created_by``, newest first (then by id);
        ``after``: the (created_at, id) of the last link of the previous page."""
        ...

    def mark_used(self, link_id: str, at: dt.datetime, actor: str) -> None: ...

    def revoke(self, link_id: str, at: dt.datetime, actor: str | None) -> None: ...

    def queue_mail(
        self, recipient: str, subject: str, body: str, link_id: str | None, at: dt.datetime
    ) -> int: ...

    def mail(self, mail_id: int) -> MailRow: ...

    def mark_mail(self, mail_id: int, status: str, at: dt.datetime, error: str = "") -> None: ...


# -- add-ons ------------------------------------------------------------------------------------------
@attrs.frozen
class AddOnRow:
    id: int
    account: str
    product: str
    contract_id: int
    plan: str
    charge_model: str
    quantity: int
    unit_price: Decimal
    currency: str
    effective: dt.date
    at: dt.datetime
    partner: str
    actor: str
    ends: dt.date | None = None
    deactivated_at: dt.datetime | None = None
    deactivated_by: str | None = None

    def as_addon(self) -> AddOn:
        from ...domain.billing import AddOn

        return AddOn(
            self.id,
            self.plan,
            self.charge_model,
            self.quantity,
            self.unit_price,
            self.effective,
            self.ends,
        )


class AddOnStore(Protocol):
    def add(self, contract_id: int, values: Mapping[str, Any]) -> int: ...

    def latest(self, contract_id: int, plan: str) -> AddOnRow | None:
        """The last activation of ``plan`` on the contract, deactivated or not."""
        ...

    def list(
        self,
        account: str,
        at: dt.datetime,
        product: str | None = None,
        *,
        products: Sequence[str] | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> list[AddOnRow]:
        """The account's activations written on or before ``at`` (deactivations after it not
        seen), oldest first; ``products``: only those products'; ``after``: ids above it."""
        ...

    def deactivate(self, addon_id: int, ends: dt.date, at: dt.datetime, actor: str) -> None: ...


# -- webhooks -----------------------------------------------------------------------------------------
@attrs.frozen
class EndpointRow:
    id: int
    account: str
    url: str
    events: tuple[str, ...]
    enabled: bool
    created_at: dt.datetime
    created_by: str | None
    secret_sealed: str = attrs.field(repr=False)
    removed_at: dt.datetime | None = None
    disabled_at: dt.datetime | None = None
    disabled_reason: str = ""
    failing_since: dt.datetime | None = None
    failures: int = 0


@attrs.frozen
class DeliveryRow:
    id: int
    endpoint_id: int
    account: str
    url: str
    event_id: str
    event: str
    status: str
    attempts: int
    created_at: dt.datetime
    next_attempt_at: dt.datetime
    retry_until: dt.datetime | None
    last_attempt_at: dt.datetime | None
    last_status: int | None
    last_error: str
    delivered_at: dt.datetime | None


@attrs.frozen
class ClaimedDelivery:
    """A delivery a sender holds (leased) for one attempt."""

    id: int
    endpoint_id: int
    url: str
    secret_sealed: str = attrs.field(repr=False)
    event_id: str = ""
    payload: Mapping[str, Any] = attrs.field(factory=dict)
    attempts: int = 0
    retry_until: dt.datetime | None = None


class WebhookStore(Protocol):
    def add_endpoint(
        self,
        account_id: int,
        url: str,
        events: Sequence[str],
        secret_sealed: str,
        at: dt.datetime,
        actor: str | None,
    ) -> int: ...

    def endpoint(self, account_id: int, endpoint_id: int, *, lock: bool = False) -> EndpointRow:
        """Raises :class:`~seatgate.core.errors.NotFound` for an id of another account too."""
        ...

    def endpoint_by_id(self, endpoint_id: int, *, lock: bool = False) -> EndpointRow:
        """The endpoint a claimed delivery is for (the sender's side: no account to scope)."""
        ...

    def endpoints(
        self, account_id: int, *, after: int | None = None, limit: int | None = None
    ) -> list[EndpointRow]:
        """The account's endpoints (not removed) by id; ``after``: ids above it."""
        ...

    def subscribed(self, account: str, event: str | None = None) -> list[EndpointRow]:
        """The account's endpoints (enabled or not, not removed) subscribed to ``event`` (None:
        all of them), by id."""
        ...

    def set_endpoint(self, endpoint_id: int, **values: Any) -> None: ...

    def add_deliveries(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert deliveries, skipping any (endpoint, event id) already there; returns how many
        were new."""
        ...

    def any_due(self, now: dt.datetime, account_id: int | None) -> bool:
        """Whether :meth:`claim_due` would find something (a read: an idle sender writes
        nothing)."""
        ...

    def claim_due(
        self, now: dt.datetime, lease_until: dt.datetime, account_id: int | None, limit: int
    ) -> list[ClaimedDelivery]:
        """Pending deliveries of enabled endpoints due by ``now`` and not leased, oldest first,
        leased until ``lease_until`` (a concurrent sender skips them)."""
        ...

    def record_attempt(
        self,
        delivery_id: int,
        at: dt.datetime,
        result: PostResult,
        **values: Any,
    ) -> None:
        """Log the attempt and update the delivery with ``values`` (lease released)."""
        ...

    def deliveries(
        self,
        account_id: int,
        endpoint_id: int | None,
        status: str | None,
        limit: int,
        *,
        before: int | None = None,
    ) -> list[DeliveryRow]:
        """The account's deliveries, newest first; ``before``: ids below it."""
        ...

    def delivery(self, account_id: int, delivery_id: int) -> DeliveryRow:
        """Raises :class:`~seatgate.core.errors.NotFound` for an id of another account too."""
        ...

    def attempts(self, delivery_id: int) -> list[dict[str, Any]]: ...

    def set_delivery(self, delivery_id: int, **values: Any) -> None: ...

    def end_pending(self, endpoint_id: int, reason: str) -> int:
        """Mark an endpoint's pending deliveries ``failed`` with ``reason`` (it was removed)."""
        ...

    def reschedule_held(self, endpoint_id: int, now: dt.datetime) -> int:
        """An endpoint enabled again: its pending deliveries are due now, with a new day."""
        ...
