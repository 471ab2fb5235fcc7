"""Outbound webhooks as a built-in listener plugin (like :mod:`.default_billing`), and the HTTP
client the sender posts with.

:class:`WebhookListener` hears every domain event on ``seatgate_event`` after the transaction
that made it committed (the event was written to the event outbox with the change) and writes one
delivery per subscribed endpoint — durable, idempotent on the event id
(:meth:`~seatgate.core.services.webhooks.WebhookService.enqueue`). Sending is the sender's:
``seatgate webhook deliver`` in the foreground, or a server's background task, never the
listener (a slow receiver must not hold up the write that made the event).

:class:`HttpxPoster` posts with httpx: no redirects followed (a receiver that moved is an error
to fix, not a place to send signed data), a bounded timeout, and an error text without the
request's headers (the signature) or body.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import httpx

from ..domain.events import Event
from ..services.ports import Ports
from ..services.ports.orders import PostResult
from ..services.webhooks import WebhookService
from .hookspecs import hookimpl

__all__ = ["PLUGIN_NAME", "TIMEOUT", "HttpxPoster", "WebhookListener"]

PLUGIN_NAME = "seatgate.webhooks"
TIMEOUT = 10.0  # seconds for one attempt (connect, write, read)


class WebhookListener:
    """Writes the deliveries of every event an endpoint subscribes to."""

    def __init__(self, ports: Ports) -> None:
        self._service = WebhookService(ports)

    def __repr__(self) -> str:
        return "WebhookListener()"

    @hookimpl
    def seatgate_event(self, event: Event) -> None:
        self._service.enqueue(event)


class HttpxPoster:
    """:class:`~seatgate.core.services.ports.orders.WebhookPoster` over one httpx client."""

    def __init__(self, timeout: float = TIMEOUT, transport: httpx.BaseTransport | None = None):
        self._client = httpx.Client(
            timeout=timeout, follow_redirects=False, transport=transport, trust_env=False
        )

    def __repr__(self) -> str:
        return "HttpxPoster()"

    def close(self) -> None:
        self._client.close()

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> PostResult:
        t0 = time.perf_counter()
        try:
            response = self._client.post(url, content=body, headers=dict(headers))
        except httpx.HTTPError as exc:
            return PostResult(None, f"{type(exc).__name__}: {exc}"[:300], time.perf_counter() - t0)
        seconds = time.perf_counter() - t0
        if 200 <= response.status_code < 300:
            return PostResult(response.status_code, "", seconds)
        return PostResult(
            response.status_code,
            f"HTTP {response.status_code} {response.reason_phrase}"[:300],
            seconds,
        )
