"""Outbound events (webhooks): endpoints an account adds, a durable delivery per subscribed
endpoint and event, and the sender that posts them.

- :meth:`WebhookService.add` registers a URL for some events (:data:`~seatgate.core.domain.
  webhooks.EVENT_NAMES`) and returns its signing secret, shown once. The secret is stored
  **encrypted** with the server secret (``SEATGATE_SECRET_KEY``), not hashed: the sender has to
  compute an HMAC with it on every request, which a hash would not allow. The database alone
  cannot sign (or read) anything.
- :meth:`WebhookService.enqueue` is what the built-in listener plugin calls for every domain
  event after its transaction committed (the events were written to the outbox with the change):
  one delivery per subscribed endpoint, idempotent on the event id — an event delivered twice to
  the listeners makes one delivery.
- :meth:`WebhookService.deliver` posts what is due (``seatgate webhook deliver`` once, or in the
  background of a server), signed (:func:`~seatgate.core.domain.webhooks.headers_for`), retried
  with exponential backoff and jitter for a day by the injected clock, then given up and kept
  for a manual :meth:`redeliver`. An endpoint that failed every attempt for a day is disabled,
  with a ``webhook.disabled`` event; enabling it again sends what it missed.
"""

from __future__ import annotations

import builtins
import datetime as dt
import ipaddress
import random
import secrets
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

import attrs

from ..domain.events import Event, WebhookDisabled
from ..domain.webhooks import (
    DISABLE_AFTER,
    DISABLE_MIN_FAILURES,
    RETRY_FOR,
    address_refusal,
    body_of,
    check_events,
    headers_for,
    payload_of,
    retry_delay,
    webhook_event_of,
)
from ..errors import BadInput, Conflict
from .base import read, require_manage, transaction
from .install_links import require_keys
from .ports import Ports
from .ports.orders import ClaimedDelivery, DeliveryRow, EndpointRow, PostResult

__all__ = [
    "DELIVERY_STATUSES",
    "DeliveryInfo",
    "DeliveryRun",
    "EndpointCreated",
    "EndpointInfo",
    "WebhookService",
]

SECRET_PREFIX = "whsec_"
LEASE = dt.timedelta(minutes=5)  # a sender that died holding deliveries lets them go after this
DELIVERY_STATUSES = ("pending", "delivered", "failed")


def check_url(url: str, *, allow_private: bool = False) -> str:
    """An endpoint URL: ``https://``, or ``http://`` to a loopback address (a receiver on the
    same machine); no user or password in it (the signature authenticates seatgate); a literal IP
    address that :func:`~seatgate.core.domain.webhooks.address_refusal` allows (no link-local,
    metadata, private or reserved address: a host name is checked where it is resolved, at each
    delivery). Raises :class:`BadInput`."""
    text = url.strip()
    parts = urlsplit(text)
    accepted = "an https:// URL (http:// only to localhost), without a user or password"
    if parts.scheme not in ("https", "http") or not parts.hostname or len(text) > 2048:
        raise BadInput("url", url, accepted)
    if parts.username or parts.password:
        raise BadInput("url", "***", accepted)
    if parts.scheme == "http":
        host = parts.hostname
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise BadInput("url", url, accepted)
    try:
        literal = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return text
    refusal = address_refusal(literal, allow_private=allow_private)
    if refusal is not None:
        raise BadInput(
            "url",
            url,
            f"an address the server may post to, not a {refusal} one "
            "(a public address, or loopback)",
        )
    return text


@attrs.frozen
class EndpointInfo:
    id: int
    account: str
    url: str
    events: tuple[str, ...]
    enabled: bool
    created_at: dt.datetime
    created_by: str | None
    disabled_at: dt.datetime | None
    disabled_reason: str
    failing_since: dt.datetime | None
    failures: int

    @classmethod
    def of(cls, row: EndpointRow) -> EndpointInfo:
        return cls(
            row.id,
            row.account,
            row.url,
            row.events,
            row.enabled,
            row.created_at,
            row.created_by,
            row.disabled_at,
            row.disabled_reason,
            row.failing_since,
            row.failures,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "account": self.account,
            "url": self.url,
            "events": list(self.events),
            "enabled": self.enabled,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "disabled_at": self.disabled_at,
            "disabled_reason": self.disabled_reason,
            "failing_since": self.failing_since,
            "failures": self.failures,
        }


@attrs.frozen
class EndpointCreated:
    """An endpoint just added; ``secret`` is shown this once."""

    endpoint: EndpointInfo
    secret: str = attrs.field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {**self.endpoint.as_dict(), "secret": self.secret}


@attrs.frozen
class DeliveryInfo:
    id: int
    endpoint: int
    url: str
    event_id: str
    event: str
    status: str
    attempts: int
    created_at: dt.datetime
    next_attempt_at: dt.datetime | None
    retry_until: dt.datetime | None
    last_attempt_at: dt.datetime | None
    last_status: int | None
    last_error: str
    delivered_at: dt.datetime | None
    log: tuple[dict[str, Any], ...] = ()

    @classmethod
    def of(cls, row: DeliveryRow, log: Iterable[dict[str, Any]] = ()) -> DeliveryInfo:
        return cls(
            row.id,
            row.endpoint_id,
            row.url,
            row.event_id,
            row.event,
            row.status,
            row.attempts,
            row.created_at,
            row.next_attempt_at if row.status == "pending" else None,
            row.retry_until,
            row.last_attempt_at,
            row.last_status,
            row.last_error,
            row.delivered_at,
            tuple(log),
        )

    def as_dict(self) -> dict[str, Any]:
        out = {
            "id": self.id,
            "endpoint": self.endpoint,
            "url": self.url,
            "event_id": self.event_id,
            "event": self.event,
            "status": self.status,
            "attempts": self.attempts,
            "created_at": self.created_at,
            "next_attempt_at": self.next_attempt_at,
            "retry_until": self.retry_until,
            "last_attempt_at": self.last_attempt_at,
            "last_status": self.last_status,
            "last_error": self.last_error,
            "delivered_at": self.delivered_at,
        }
        if self.log:
            out["log"] = list(self.log)
        return out


@attrs.define
class DeliveryRun:
    """What one run of the sender did: attempts made, delivered, to be retried, given up
    (retried for a day), and the endpoints it disabled."""

    attempted: int = 0
    delivered: int = 0
    retrying: int = 0
    given_up: int = 0
    disabled: list[int] = attrs.field(factory=list)

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


class WebhookService:
    def __init__(self, ports: Ports, rng: random.Random | None = None) -> None:
        self.ports = ports
        self._rng = rng or random.Random()

    # -- endpoints ----------------------------------------------------------------------------------
    def add(
        self, account: str, url: str, events: Iterable[str], actor: str | None
    ) -> EndpointCreated:
        """Add an endpoint of ``account`` for ``events`` (names, or ``*``); needs ``manage``
        (audited refusal). Returns the signing secret once. Raises :class:`BadInput` (URL,
        events), :class:`Conflict` (no server secret, remedy ``set_secret_key``)."""
        keys = require_keys(self.ports)
        target = check_url(url, allow_private=self.ports.orders.webhook_private)
        names = check_events(events)
        at = self.ports.now()
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        with transaction(self.ports) as uow:
            acct = uow.accounts.get(account)
            who = require_manage(uow, acct, actor, "webhook.add", at, {"url": target})
            endpoint_id = uow.webhooks.add_endpoint(
                acct.id, target, names, keys.seal(secret), at, who
            )
            uow.audit.record(
                at=at,
                action="webhook.add",
                outcome="ok",
                account=account,
                actor=who,
                detail={"endpoint": endpoint_id, "url": target, "events": list(names)},
            )
            row = uow.webhooks.endpoint(acct.id, endpoint_id)
        return EndpointCreated(EndpointInfo.of(row), secret)

    def list(self, account: str) -> list[EndpointInfo]:
        with read(self.ports) as uow:
            acct = uow.accounts.get(account)
            return [EndpointInfo.of(r) for r in uow.webhooks.endpoints(acct.id)]

    def remove(self, account: str, endpoint_id: int, actor: str | None) -> EndpointInfo:
        """Stop and forget an endpoint (its delivery log is kept); needs ``manage``."""
        return self._change(account, endpoint_id, actor, "webhook.remove")

    def enable(self, account: str, endpoint_id: int, actor: str | None) -> EndpointInfo:
        """Send to an endpoint again: what it missed while disabled is due now, with a new day of
        retries. Needs ``manage``."""
        return self._change(account, endpoint_id, actor, "webhook.enable")

    def disable(self, account: str, endpoint_id: int, actor: str | None) -> EndpointInfo:
        """Stop sending to an endpoint; its deliveries are kept (and still written). Needs
        ``manage``."""
        return self._change(account, endpoint_id, actor, "webhook.disable")

    def _change(
        self, account: str, endpoint_id: int, actor: str | None, action: str
    ) -> EndpointInfo:
        at = self.ports.now()
        with transaction(self.ports) as uow:
            acct = uow.accounts.get(account)
            who = require_manage(uow, acct, actor, action, at, {"endpoint": endpoint_id})
            row = uow.webhooks.endpoint(acct.id, endpoint_id, lock=True)
            if action == "webhook.remove":
                uow.webhooks.set_endpoint(row.id, removed_at=at, enabled=False)
                uow.webhooks.end_pending(row.id, "the endpoint was removed")
            elif action == "webhook.enable":
                uow.webhooks.set_endpoint(
                    row.id,
                    enabled=True,
                    disabled_at=None,
                    disabled_reason="",
                    failing_since=None,
                    failures=0,
                )
                uow.webhooks.reschedule_held(row.id, at)
            else:
                uow.webhooks.set_endpoint(
                    row.id, enabled=False, disabled_at=at, disabled_reason=f"disabled by {who}"
                )
            uow.audit.record(
                at=at,
                action=action,
                outcome="ok",
                account=account,
                actor=who,
                detail={"endpoint": row.id, "url": row.url},
            )
            if action == "webhook.remove":
                return EndpointInfo.of(attrs.evolve(row, enabled=False, removed_at=at))
            return EndpointInfo.of(uow.webhooks.endpoint(acct.id, row.id))

    # -- the listener's side ------------------------------------------------------------------------
    def enqueue(self, event: Event) -> int:
        """One delivery per endpoint of the event's account subscribed to it (enabled or not:
        a disabled endpoint gets what it missed once enabled); idempotent on ``event.id``.
        Returns how many deliveries were new."""
        return self.enqueue_all([event])

    def enqueue_all(self, events: Sequence[Event]) -> int:
        """:meth:`enqueue` for each of ``events`` (in order), with one read of each account's
        endpoints and one write transaction for the whole batch (none when no endpoint
        subscribes: most events reach none). Returns how many deliveries were new."""
        named = [
            (event, name)
            for event in events
            if event.account and (name := webhook_event_of(event)) is not None
        ]
        if not named:
            return 0
        at = self.ports.now()
        with read(self.ports) as uow:
            endpoints = {
                account: uow.webhooks.subscribed(account)
                for account in dict.fromkeys(event.account for event, _ in named)
            }
        rows: list[dict[str, Any]] = []
        for event, name in named:
            targets = [t for t in endpoints[event.account] if name in t.events]
            if isinstance(event, WebhookDisabled):  # never to the endpoint that stopped answering
                targets = [t for t in targets if str(t.id) != event.endpoint]
            if not targets:
                continue
            payload = payload_of(event, name)
            rows += [
                {
                    "endpoint_id": t.id,
                    "event_id": event.id,
                    "event": name,
                    "payload": payload,
                    "status": "pending",
                    "attempts": 0,
                    "created_at": at,
                    "next_attempt_at": at,
                    "last_error": "",
                }
                for t in targets
            ]
        if not rows:
            return 0
        with transaction(self.ports) as uow:
            return uow.webhooks.add_deliveries(rows)

    # -- the sender ---------------------------------------------------------------------------------
    def deliver(
        self,
        account: str | None = None,
        *,
        batch: int = 100,
        should_stop: Callable[[], bool] | None = None,
    ) -> DeliveryRun:
        """Post every delivery due now (of ``account``, or all), ``batch`` at a time, until none
        is due: a success is ``delivered``; a failure is retried after
        :func:`~seatgate.core.domain.webhooks.retry_delay` while the day of retries lasts, then
        ``failed``. Leases keep two senders off the same delivery. Requests are made outside any
        transaction. Raises :class:`Conflict` when something is due and there is no server secret
        to sign it with (nothing due: a cron run on a deployment without webhooks is a no-op).

        :param should_stop: asked before each batch is claimed (a server shutting down): True
            ends the run there; a batch already claimed is always posted and recorded, so
            nothing is left leased."""
        run = DeliveryRun()
        account_id = None
        if account is not None:
            with read(self.ports) as uow:
                account_id = uow.accounts.get(account).id
        seen: set[int] = set()
        secrets_of: dict[int, str] = {}  # endpoint -> its signing secret, unsealed once a run
        while True:
            if should_stop is not None and should_stop():
                return run
            now = self.ports.now()
            with read(self.ports) as uow:  # an idle sender (a server's) takes no write lock
                if not uow.webhooks.any_due(now, account_id):
                    return run
            # Before claiming: a refusal must not leave deliveries leased (held for LEASE).
            keys = require_keys(self.ports)
            with transaction(self.ports) as uow:
                claimed = [
                    c
                    for c in uow.webhooks.claim_due(now, now + LEASE, account_id, batch)
                    if c.id not in seen
                ]
            if not claimed:
                return run
            poster = self.ports.orders.poster
            assert poster is not None, "bootstrap always gives an HTTP client"
            results: builtins.list[tuple[ClaimedDelivery, PostResult, dt.datetime]] = []
            for item in claimed:
                seen.add(item.id)
                body = body_of(item.payload)
                at = self.ports.now()
                if item.endpoint_id not in secrets_of:
                    secrets_of[item.endpoint_id] = keys.unseal(item.secret_sealed)
                headers = headers_for(item.event_id, secrets_of[item.endpoint_id], body, at)
                results.append((item, poster.post(item.url, body, headers), at))
            self._record(results, run)

    def _record(
        self,
        results: builtins.list[tuple[ClaimedDelivery, PostResult, dt.datetime]],
        run: DeliveryRun,
    ) -> None:
        with transaction(self.ports) as uow:
            endpoints: dict[int, EndpointRow] = {}
            for item, result, at in results:
                run.attempted += 1
                attempts = item.attempts + 1
                if item.endpoint_id not in endpoints:
                    endpoints[item.endpoint_id] = uow.webhooks.endpoint_by_id(
                        item.endpoint_id, lock=True
                    )
                endpoint = endpoints[item.endpoint_id]
                if result.ok:
                    run.delivered += 1
                    uow.webhooks.record_attempt(
                        item.id,
                        at,
                        result,
                        status="delivered",
                        attempts=attempts,
                        delivered_at=at,
                    )
                    if endpoint.failures or endpoint.failing_since is not None:
                        uow.webhooks.set_endpoint(endpoint.id, failing_since=None, failures=0)
                        endpoints[endpoint.id] = attrs.evolve(
                            endpoint, failing_since=None, failures=0
                        )
                    continue
                until = item.retry_until or at + RETRY_FOR
                retry_at = at + dt.timedelta(seconds=retry_delay(attempts, self._rng.random()))
                gives_up = retry_at > until
                run.given_up += gives_up
                run.retrying += not gives_up
                uow.webhooks.record_attempt(
                    item.id,
                    at,
                    result,
                    status="failed" if gives_up else "pending",
                    attempts=attempts,
                    retry_until=until,
                    next_attempt_at=retry_at if not gives_up else at,
                )
                since = endpoint.failing_since or at
                failures = endpoint.failures + 1
                uow.webhooks.set_endpoint(endpoint.id, failing_since=since, failures=failures)
                endpoint = endpoints[endpoint.id] = attrs.evolve(
                    endpoint, failing_since=since, failures=failures
                )
                # Keeps failing: nothing it was sent succeeded for a day, or since the first
                # attempt of a delivery now given up (its day of retries ran out).
                failed_for_a_day = at - since >= DISABLE_AFTER or (
                    gives_up and since <= until - RETRY_FOR
                )
                if endpoint.enabled and failed_for_a_day and failures >= DISABLE_MIN_FAILURES:
                    reason = f"every attempt failed since {since:%Y-%m-%d %H:%M} UTC ({failures})"
                    uow.webhooks.set_endpoint(
                        endpoint.id, enabled=False, disabled_at=at, disabled_reason=reason
                    )
                    endpoints[endpoint.id] = attrs.evolve(endpoint, enabled=False)
                    uow.audit.record(
                        at=at,
                        action="webhook.disabled",
                        outcome="ok",
                        account=endpoint.account,
                        actor="system",
                        detail={"endpoint": endpoint.id, "url": endpoint.url, "reason": reason},
                    )
                    uow.record(
                        WebhookDisabled(
                            account=endpoint.account,
                            product="",
                            at=at,
                            endpoint=str(endpoint.id),
                            url=endpoint.url,
                            failures=failures,
                            failing_since=since.isoformat(),
                        )
                    )
                    run.disabled.append(endpoint.id)

    # -- the log ------------------------------------------------------------------------------------
    def deliveries(
        self,
        account: str,
        *,
        endpoint: int | None = None,
        status: str | None = None,
        limit: int = 50,
    ) -> builtins.list[DeliveryInfo]:
        """The account's deliveries, newest first (``status``: pending, delivered, failed)."""
        if status is not None and status not in DELIVERY_STATUSES:
            raise BadInput("status", status, DELIVERY_STATUSES)
        with read(self.ports) as uow:
            acct = uow.accounts.get(account)
            rows = uow.webhooks.deliveries(acct.id, endpoint, status, limit)
        return [DeliveryInfo.of(r) for r in rows]

    def delivery(self, account: str, delivery_id: int) -> DeliveryInfo:
        """One delivery with its log of attempts."""
        with read(self.ports) as uow:
            acct = uow.accounts.get(account)
            row = uow.webhooks.delivery(acct.id, delivery_id)
            return DeliveryInfo.of(row, uow.webhooks.attempts(row.id))

    def redeliver(self, account: str, delivery_id: int, actor: str | None) -> DeliveryInfo:
        """Send a delivery again (the same event id and body): due now, with a new day of
        retries. Needs ``manage``."""
        at = self.ports.now()
        with transaction(self.ports) as uow:
            acct = uow.accounts.get(account)
            who = require_manage(
                uow, acct, actor, "webhook.redeliver", at, {"delivery": delivery_id}
            )
            row = uow.webhooks.delivery(acct.id, delivery_id)
            if row.status == "pending" and row.attempts == 0:
                raise Conflict(f"delivery {delivery_id} has not been tried yet", field="delivery")
            uow.webhooks.set_delivery(
                row.id,
                status="pending",
                next_attempt_at=at,
                retry_until=None,
                leased_until=None,
                delivered_at=None,
            )
            uow.audit.record(
                at=at,
                action="webhook.redeliver",
                outcome="ok",
                account=account,
                actor=who,
                detail={"delivery": row.id, "event_id": row.event_id},
            )
            return DeliveryInfo.of(uow.webhooks.delivery(acct.id, row.id))
