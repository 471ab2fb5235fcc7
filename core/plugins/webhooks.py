"""Outbound webhooks as a built-in listener plugin (like :mod:`.default_billing`), and the HTTP
client the sender posts with.

:class:`WebhookListener` hears every domain event on ``seatgate_events`` (a delivered batch at
once) after the transaction that made it committed (the event was written to the event outbox with the change) and writes one
delivery per subscribed endpoint — durable, idempotent on the event id
(:meth:`~seatgate.core.services.webhooks.WebhookService.enqueue`). Sending is the sender's:
``seatgate webhook deliver`` in the foreground, or a server's background task, never the
listener (a slow receiver must not hold up the write that made the event).

:class:`HttpxPoster` posts with httpx: no redirects followed (a receiver that moved is an error
to fix, not a place to send signed data), a bounded timeout, and an error text without the
request's headers (the signature) or body. It resolves the endpoint's host itself and posts only
when every address is one :func:`~seatgate.core.domain.webhooks.address_refusal` allows, to the
address it checked (the Host header and TLS name stay the host's): a name that resolves — or is
re-pointed after ``webhook add`` — to the metadata service or a private network is not posted to.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

import httpx

from ..domain.events import Event
from ..domain.webhooks import address_refusal
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
    def seatgate_events(self, events: Sequence[Event]) -> None:
        self._service.enqueue_all(events)


class HttpxPoster:
    """:class:`~seatgate.core.services.ports.orders.WebhookPoster` over one httpx client."""

    def __init__(
        self,
        timeout: float = TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        *,
        allow_private: bool = False,
        resolve: Callable[[str, int], list[str]] | None = None,
    ):
        """``allow_private``: the operator's ``SEATGATE_WEBHOOK_ALLOW_PRIVATE``. ``resolve``: host
        and port to addresses (default: the system resolver)."""
        self._client = httpx.Client(
            timeout=timeout, follow_redirects=False, transport=transport, trust_env=False
        )
        self._allow_private = allow_private
        self._resolve = resolve or _resolve

    def __repr__(self) -> str:
        return "HttpxPoster()"

    def close(self) -> None:
        self._client.close()

    def _pinned(self, url: str) -> tuple[str, dict[str, str], dict[str, str]] | str:
        """The URL to the checked address, the Host header and the TLS name to send with it; or
        why not to post (one line)."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = [host] if _literal(host) else self._resolve(host, port)
        except OSError as exc:
            return f"cannot resolve {host}: {type(exc).__name__}"
        if not addresses:
            return f"cannot resolve {host}"
        for address in addresses:
            refusal = address_refusal(
                ipaddress.ip_address(address.split("%", 1)[0]), allow_private=self._allow_private
            )
            if refusal is not None:
                return f"refused: {host} resolves to {address}, a {refusal} address"
        first = addresses[0]
        netloc = f"[{first}]" if ":" in first else first
        if parts.port is not None:
            netloc = f"{netloc}:{parts.port}"
        pinned = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
        host_header = host if parts.port is None else f"{host}:{parts.port}"
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        return pinned, {"Host": host_header}, extensions

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> PostResult:
        t0 = time.perf_counter()
        target = self._pinned(url)
        if isinstance(target, str):
            return PostResult(None, target[:300], time.perf_counter() - t0)
        pinned, host, extensions = target
        try:
            response = self._client.post(
                pinned, content=body, headers={**headers, **host}, extensions=extensions
            )
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


def _literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the system resolver), in its order."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))
