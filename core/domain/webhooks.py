"""Outbound events (webhooks), pure: which events an endpoint may subscribe to, the payload of
each, the signature a receiver verifies, and when a failed delivery is tried again.

The signature scheme (docs/orders.md). Every request carries three headers:

- ``Seatgate-Event-Id``: the event's id — the same on every attempt and every redelivery, so a
  receiver de-duplicates on it;
- ``Seatgate-Timestamp``: the attempt's time, whole seconds since the Unix epoch (UTC);
- ``Seatgate-Signature``: ``v1=`` and the hex HMAC-SHA256 of ``"{timestamp}.{body}"`` under the
  endpoint's signing secret (the raw bytes of the body, as sent).

A receiver recomputes the HMAC over the timestamp header and the raw body with its secret,
compares in constant time (:func:`verify`), and rejects a timestamp more than
:data:`TOLERANCE_SECONDS` away from its own clock: a captured request replayed later fails, and one
replayed within the window is the same event id, which it has seen.

Retries: a delivery that fails (a connection error, a timeout, any status but 2xx) is tried
again after an exponential backoff with jitter (:func:`retry_delay`), for a day from its first
attempt (:data:`RETRY_FOR`); then it is given up (``failed``) and kept for a manual redelivery.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import BadInput
from .events import Event, SyncFinished

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "DISABLE_AFTER",
    "DISABLE_MIN_FAILURES",
    "EVENT_NAMES",
    "ID_HEADER",
    "RETRY_FOR",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "TOLERANCE_SECONDS",
    "address_refusal",
    "check_events",
    "headers_for",
    "payload_of",
    "retry_delay",
    "sign",
    "verify",
    "webhook_event_of",
]

# What an endpoint subscribes to (issue 18), and the domain event each comes from.
_NAME_OF_KIND: dict[str, str] = {
    "seats.assigned": "seat.assigned",
    "seats.unassigned": "seat.unassigned",
    "seats.refused": "seat.refused",
    "users.activated": "user.activated",
    "overage.entered": "overage.entered",
    "overage.left": "overage.left",
    "app.installed": "app.installed",
    "app.uninstalled": "app.uninstalled",
    "plan.changed": "plan.changed",
    "addon.activated": "addon.activated",
    "addon.deactivated": "addon.deactivated",
    "invoice.issued": "invoice.issued",
    "webhook.disabled": "webhook.disabled",
}
EVENT_NAMES: tuple[str, ...] = (
    "seat.assigned",
    "seat.unassigned",
    "seat.refused",
    "user.activated",
    "overage.entered",
    "overage.left",
    "app.installed",
    "app.uninstalled",
    "plan.changed",
    "addon.activated",
    "addon.deactivated",
    "invoice.issued",
    "sync.finished",
    "sync.failed",
    "webhook.disabled",
)

ID_HEADER = "Seatgate-Event-Id"
TIMESTAMP_HEADER = "Seatgate-Timestamp"
SIGNATURE_HEADER = "Seatgate-Signature"
TOLERANCE_SECONDS = 300  # a receiver rejects a timestamp further than this from its clock

RETRY_FOR = dt.timedelta(days=1)  # a delivery is retried for a day from its first attempt
BACKOFF_BASE = 30.0  # seconds before the first retry (before jitter)
BACKOFF_CAP = 3600.0  # the longest wait between two attempts (before jitter)
# An endpoint whose every attempt failed for a day (or since the first attempt of a delivery whose
# day of retries ran out), DISABLE_MIN_FAILURES times at least, is disabled (an event says so);
# its deliveries are kept for when it is enabled again.
DISABLE_AFTER = dt.timedelta(days=1)
DISABLE_MIN_FAILURES = 5


def webhook_event_of(event: Event) -> str | None:
    """The webhook event name of a domain event, or None when endpoints cannot subscribe to it.
    A sync run is ``sync.finished`` when it succeeded and ``sync.failed`` otherwise (failed,
    halted by the deletion guard, interrupted)."""
    if isinstance(event, SyncFinished):
        return "sync.finished" if event.outcome == "succeeded" else "sync.failed"
    return _NAME_OF_KIND.get(event.kind)


def check_events(names: Iterable[str]) -> tuple[str, ...]:
    """The event names an endpoint subscribes to, deduplicated in the order given; ``*`` is all.
    Raises :class:`BadInput` naming the accepted ones."""
    out: list[str] = []
    for raw in names:
        for name in raw.split(","):
            name = name.strip().lower()
            if not name:
                continue
            if name == "*":
                return EVENT_NAMES
            if name not in EVENT_NAMES:
                raise BadInput("events", name, ("*", *EVENT_NAMES))
            if name not in out:
                out.append(name)
    if not out:
        raise BadInput("events", "", ("*", *EVENT_NAMES))
    return tuple(out)


def payload_of(event: Event, name: str) -> dict[str, Any]:
    """The JSON body sent for ``event`` under its webhook ``name``::

        {"id": ..., "type": "seat.assigned", "occurred_at": "2026-02-01T12:00:00+00:00",
         "account": "acme", "product": "salesforce", "data": {...the event's other fields}}

    Events carry no secret (no settings, no tokens), so neither does a payload."""
    fields = event.as_dict()
    data = {k: v for k, v in fields.items() if k not in ("kind", "id", "account", "product", "at")}
    return {
        "id": event.id,
        "type": name,
        "occurred_at": fields["at"],
        "account": event.account,
        "product": event.product,
        "data": data,
    }


def body_of(payload: Mapping[str, Any]) -> bytes:
    """The bytes sent (compact JSON, keys in a stable order)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``v1=<hex HMAC-SHA256(secret, "{timestamp}." + body)>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def headers_for(event_id: str, secret: str, body: bytes, at: dt.datetime) -> dict[str, str]:
    """The headers of one attempt made at ``at``."""
    timestamp = int(at.timestamp())
    return {
        "Content-Type": "application/json",
        "User-Agent": "seatgate-webhooks/1",
        ID_HEADER: event_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: dt.datetime,
    tolerance: int = TOLERANCE_SECONDS,
) -> bool:
    """What a receiver does: True when the signature is the endpoint's over this timestamp and
    body, and the timestamp is within ``tolerance`` seconds of ``now``. ``headers`` looked up
    case-insensitively."""
    lower = {k.lower(): v for k, v in headers.items()}
    stamp = lower.get(TIMESTAMP_HEADER.lower(), "")
    given = lower.get(SIGNATURE_HEADER.lower(), "")
    if not stamp.isdigit():
        return False
    if abs(now.timestamp() - int(stamp)) > tolerance:
        return False
    return hmac.compare_digest(given, sign(secret, int(stamp), body))


def retry_delay(attempts: int, jitter: float) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt (1, 2, ...): an exponential
    backoff from :data:`BACKOFF_BASE` doubling up to :data:`BACKOFF_CAP`, with "equal jitter" —
    half of it fixed, half scaled by ``jitter`` in [0, 1) — so endpoints that failed together do
    not all retry together, and no wait is shorter than half the backoff."""
    if attempts < 1:
        raise ValueError("attempts counts from 1")
    if not 0.0 <= jitter < 1.0:
        raise ValueError("jitter is in [0, 1)")
    backoff = min(BACKOFF_CAP, BACKOFF_BASE * 2.0 ** min(attempts - 1, 32))
    return backoff / 2 + backoff / 2 * jitter


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Carrier-grade NAT (RFC 6598): not global, and private in all but name.
_SHARED = ipaddress.ip_network("100.64.0.0/10")


def address_refusal(address: IPAddress, *, allow_private: bool = False) -> str | None:
    """Why a webhook must not be sent to ``address``, or None when it may (the tester's item 13:
    a tenant's endpoint must not make the server reach its own network — SSRF).

    Loopback is allowed (the documented "http:// only to localhost": a receiver on the same
    machine). Link-local (169.254.0.0/16 — the cloud metadata service 169.254.169.254 — and
    fe80::/10), unspecified, multicast are always refused; private ranges (RFC 1918, fc00::/7,
    100.64.0.0/10) unless ``allow_private`` (the operator's ``SEATGATE_WEBHOOK_ALLOW_PRIVATE``);
    every other address that is not global (reserved, documentation ranges) is refused. An
    IPv4-mapped IPv6 address is judged as its IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return None
    if address.is_link_local:
        return "link-local (cloud metadata)"
    if address.is_unspecified or address.is_multicast:
        return "unspecified or multicast"
    private = address.is_private or (address.version == 4 and address in _SHARED)
    if private and not address.is_global:
        return None if allow_private else "private"
    if not address.is_global:
        return "reserved"
    return None
