"""The adapter kit: what every CRM adapter needs besides its vendor's own ways.

An adapter keeps what is its CRM's (auth, the query, the field mapping, the change stamp) and takes
the rest from here:

- :func:`throttle_wait` — how long a CRM asks us to wait, from ``Retry-After`` (seconds or an
  HTTP-date) and the vendors' own throttle headers (:data:`THROTTLE_HEADERS`);
- :func:`error_for_status` — an HTTP status (and the vendor's words) as seatgate's error: 401 is an
  expired token when the adapter can refresh it and refused credentials otherwise, 403 names the
  permission the integration user lacks, 408/5xx are transient, 429 waits or ends the run when
  the wait is longer than the policy accepts (a spent quota);
- :func:`refused_write` — the same for a write an install or uninstall makes (a :class:`Write`):
  a refusal (403, 404, any other 4xx) names the permission or scope the write needs, so an install
  never reports success when the CRM said no;
- :func:`transport_error` — a timeout, reset or refused connection as a :class:`TransientError`
  naming the CRM and the kind of failure, never the URL;
- :func:`pages` — the paged loop: fetches the next page in a worker thread while the caller stores
  the current one (:func:`~.readahead.read_ahead`), and refuses a CRM that hands back a cursor it
  already gave (a loop that would never end);
- :class:`HttpClient` — a small JSON client on ``httpx`` (timeouts set, one connection pool per run
  on the process's one TLS context, each request under the run's retry policy), for CRMs without a maintained Python client. It
  shares each instance's throttle (:mod:`.throttle`, keyed by the base URL): a ``Retry-After`` or
  a spent quota one run is given pauses every run on that instance — in this process, or across a
  fleet of workers when the store is Redis.

Messages name the CRM and what to do; they never carry a credential, a URL's query or a body.
"""

from __future__ import annotations

import datetime as dt
import ssl
import threading
from collections.abc import Callable, Generator, Mapping
from typing import Any, Self, TypeVar

import attrs
import httpx

from ..errors import (
    AdapterError,
    AuthFailed,
    MalformedResponse,
    QuotaExhausted,
    RateLimited,
    TokenExpired,
    TransientError,
)
from .readahead import read_ahead
from .retry import RequestContext, parse_retry_after
from .throttle import InstanceThrottle

__all__ = [
    "THROTTLE_HEADERS",
    "HttpClient",
    "Write",
    "error_for_status",
    "pages",
    "refused_write",
    "retry_after_rule",
    "throttle_wait",
    "transport_error",
]

C = TypeVar("C")
R = TypeVar("R")

# Throttle headers besides Retry-After, and what their value means.
THROTTLE_HEADERS: dict[str, str] = {
    # ServiceNow: when the rate-limit window resets, as Unix epoch seconds.
    "x-ratelimit-reset": "epoch_seconds",
    # HubSpot: the rolling window, in milliseconds (the longest wait that helps).
    "x-hubspot-ratelimit-interval-milliseconds": "milliseconds",
    # Oracle B2C Service: milliseconds to wait before the next call (sent on every answer).
    "osvc-crest-next-request-after": "milliseconds",
}


def throttle_wait(
    headers: Mapping[str, str] | None, *, now: Callable[[], dt.datetime] | None = None
) -> float | None:
    """Seconds the CRM asks to wait: ``Retry-After`` first, then the vendor headers of
    :data:`THROTTLE_HEADERS`. None when the answer says nothing (the policy's backoff applies).

    ``now`` gives the current instant for epoch headers (the network's clock, not a business
    rule: the real clock by default).
    """
    if not headers:
        return None
    lower = {k.lower(): v for k, v in headers.items()}
    seconds = parse_retry_after(lower.get("retry-after"))
    if seconds is not None:
        return seconds
    for name, kind in THROTTLE_HEADERS.items():
        raw = lower.get(name)
        if raw is None:
            continue
        try:
            value = float(raw.strip())
        except ValueError:
            continue
        if kind == "milliseconds":
            return max(0.0, value / 1000)
        current = (now or (lambda: dt.datetime.now(dt.UTC)))()
        return max(0.0, value - current.timestamp())
    return None


def retry_after_rule(
    status: int, headers: Mapping[str, str], body: Callable[[], bytes]
) -> float | None:
    """The shared throttle's rule (:class:`~.throttle.InstanceThrottle`): a ``429`` or ``503``
    that carries a wait (:func:`throttle_wait`) pauses the instance that long for every run."""
    if status not in (429, 503):
        return None
    return throttle_wait(headers) or None


def error_for_status(
    status: int,
    *,
    crm: str,
    detail: str = "",
    retry_after: float | None = None,
    max_retry_after: float = 300.0,
    can_refresh: bool = False,
    permission: str = "",
    credentials: str = "the credentials in the config",
) -> AdapterError:
    """Seatgate's error for an HTTP answer of ``status`` from ``crm``.

    :param detail: the vendor's own words (an error code or message, already cut to one line).
    :param retry_after: the wait the CRM asked for (:func:`throttle_wait`), in seconds.
    :param max_retry_after: a longer wait is a spent quota: the run ends (no hot retries).
    :param can_refresh: the adapter can get a new token, so a 401 is an expired one (refreshed
        once by the retry policy).
    :param permission: what the integration user needs, named in a 403's message.
    :param credentials: which settings to check, named in a 401's message.
    """
    said = f" ({detail})" if detail else ""
    if status == 401:
        if can_refresh:
            return TokenExpired(f"{crm} rejected the access token{said}")
        return AuthFailed(f"{crm} refused the credentials{said}: check {credentials}")
    if status == 403:
        need = f": the integration user needs {permission}" if permission else ""
        return AuthFailed(f"{crm} denied access (403){said}{need}")
    if status == 429:
        if retry_after is not None and retry_after > max_retry_after:
            return QuotaExhausted(
                f"{crm} asks to wait {int(retry_after)} s{said}; the run ends and resumes at the "
                "next schedule"
            )
        return RateLimited(f"{crm} throttled the request (429){said}", retry_after)
    if status == 408 or status >= 500 or status == 0:
        return TransientError(f"{crm} answered {status or 'nothing'}{said}; retrying may succeed")
    return MalformedResponse(f"{crm} answered {status}{said}: not expected here")


@attrs.frozen
class Write:
    """A write an install or uninstall makes, for the error that names what it needs when the CRM
    refuses it (:func:`refused_write`)."""

    action: str  # what the write does, as a verb phrase: "create the installation marker"
    permission: str  # the permission or scope it needs, in the vendor's words


def refused_write(
    status: int,
    *,
    crm: str,
    action: str,
    permission: str,
    detail: str = "",
    retry_after: float | None = None,
    max_retry_after: float = 300.0,
    can_refresh: bool = False,
    credentials: str = "the credentials in the config",
) -> AdapterError:
    """Seatgate's error for a write (an install's marker, an uninstall's delete) that ``crm``
    answered with ``status``.

    A 401, 408, 429 or 5xx means what it means for any request (:func:`error_for_status`: an
    expired token is refreshed, throttling waits, a transient failure is retried). Any other
    refusal -- 403, a 404 for an object or table the integration user cannot see, a 400 for a
    write it may not make -- is :class:`AuthFailed` in one line naming ``permission``: the write
    did not happen, and the install must not report success.

    :param action: what the write does, as a verb phrase ("create the installation marker").
    :param permission: the permission or scope the write needs, as the vendor names it.
    """
    if status == 401 or status == 408 or status == 429 or status >= 500 or status == 0:
        return error_for_status(
            status,
            crm=crm,
            detail=detail,
            retry_after=retry_after,
            max_retry_after=max_retry_after,
            can_refresh=can_refresh,
            permission=permission,
            credentials=credentials,
        )
    said = f", {detail}" if detail else ""
    return AuthFailed(
        f"{crm} refused to {action} ({status}{said}): the integration user needs {permission}"
    )


def transport_error(
    crm: str, exc: BaseException, *, timed_out: bool = False, url_setting: str = "base_url"
) -> TransientError:
    """A request to ``crm`` that got no answer: a timeout (``timed_out``), or a reset or refused
    connection, where ``url_setting`` (the config key of the CRM's address) is worth checking.
    The message names the kind of failure (the exception's class), never the URL, which may carry
    a query."""
    kind = type(exc).__name__
    if timed_out:
        return TransientError(f"{crm} did not answer in time ({kind}); retrying may succeed")
    return TransientError(f"could not reach {crm} ({kind}); check {url_setting} and the network")


def pages(
    fetch: Callable[[C], tuple[R, C | None]],
    first: C,
    *,
    name: str,
    crm: str,
    key: Callable[[C], object] = lambda cursor: cursor,
) -> Generator[R, None, None]:
    """The paged loop with read-ahead: yields ``fetch(cursor)``'s results from ``first`` until a
    fetch returns no next cursor.

    A next cursor whose ``key`` was seen before means the CRM repeats itself: the pull would never
    end, or would read the same users twice, so it fails with :class:`MalformedResponse`.

    A generator: closing it (``contextlib.closing``, or leaving a ``for`` early and dropping it)
    cancels the fetch not yet started, or waits for the one running, so no request outlives the
    pull.
    """
    seen: set[object] = {key(first)}

    def guarded(cursor: C) -> tuple[R, C | None]:
        result, nxt = fetch(cursor)
        if nxt is not None:
            k = key(nxt)
            if k in seen:
                raise MalformedResponse(
                    f"{crm} handed back a page cursor it already gave; the pull stops rather "
                    "than read the same users again"
                )
            seen.add(k)
        return result, nxt

    return read_ahead(guarded, first, name)


_ssl_lock = threading.Lock()
_ssl: ssl.SSLContext | None = None


def ssl_context() -> ssl.SSLContext:
    """The process's TLS context for CRM clients, built once: httpx's default (certifi's CA
    bundle, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``). Loading the CA bundle costs ~60 ms of CPU,
    as much as syncing a few hundred users, so a client per run must not load it again; one
    context is safe to share between clients and threads."""
    global _ssl
    if _ssl is None:
        with _ssl_lock:
            if _ssl is None:
                _ssl = httpx.create_ssl_context()
    return _ssl


class HttpClient:
    """A JSON client for one CRM on ``httpx``: one connection pool for a run, timeouts on
    connect/read/write/pool, and every request under the run's retry policy.

    Subclasses (each adapter's ``Client``) say how to authenticate (:meth:`auth_headers`,
    :meth:`refresh`), how to read the vendor's error body (:meth:`error_detail`) and what a 403
    needs (``permission``). A transport failure (timeout, reset, refused connection) is a
    :class:`TransientError` naming the CRM, never the URL.
    """

    crm = "the CRM"
    permission = ""
    credentials = "the credentials in the config"

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout),
            headers=dict(headers or {}),
            transport=transport,
            follow_redirects=False,
            verify=ssl_context(),
        )
        self.last_wait: float | None = None  # the CRM's latest throttle hint, seconds
        # The instance is the base URL: every run on it shares its pauses.
        self._throttle = InstanceThrottle(self.crm, key=self.base_url, rule=retry_after_rule)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- what a subclass says -------------------------------------------------------------------
    def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate a request (Basic, Bearer, a session...)."""
        return {}

    @property
    def can_refresh(self) -> bool:
        """True when :meth:`refresh` can get a new token (a 401 is then an expired one)."""
        return False

    def refresh(self) -> None:
        """Get a new token; called once by the retry policy after a :class:`TokenExpired`."""

    def error_detail(self, response: httpx.Response) -> str:
        """The vendor's words for an error answer, one line (no secrets, no URLs)."""
        try:
            body = response.json()
        except ValueError:
            return ""
        if isinstance(body, dict):
            for key in ("detail", "title", "message", "error_description", "error"):
                value = body.get(key)
                if isinstance(value, str) and value:
                    return value.replace("\n", " ")[:200]
        return ""

    def throttle(self, response: httpx.Response) -> None:
        """Called on every answer; records the CRM's throttle hint (``last_wait``). A subclass
        may sleep on it, through the policy's clock, before its next call."""
        self.last_wait = throttle_wait(response.headers)

    # -- requests -------------------------------------------------------------------------------
    def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        max_retry_after: float = 300.0,
    ) -> httpx.Response:
        """One request, no retry: a 2xx answer, or the error for its status.

        While the instance is paused (a ``Retry-After`` or a spent quota another run was given,
        :mod:`.throttle`), nothing is sent: :class:`RateLimited` for the time left (the retry
        policy waits it out, and does not count it as a request), or :class:`QuotaExhausted`
        when that is longer than ``max_retry_after``. A 429 or 503 with a wait pauses the
        instance for every run."""
        throttle = self._throttle
        throttle.max_wait = max_retry_after
        throttle.before(self.base_url)
        try:
            response = self._http.request(
                method,
                path,
                params=params,
                json=json,
                data=data,
                headers={**self.auth_headers(), **(headers or {})},
            )
        except httpx.TransportError as exc:
            timed_out = isinstance(exc, httpx.TimeoutException)
            raise transport_error(self.crm, exc, timed_out=timed_out) from None
        # httpx binds a response's stream to the response (a reference cycle), so its body -- up
        # to a megabyte a page -- lived until the cyclic collector ran, and not at all while a
        # sync pauses it (80 MB more peak memory over a 100,000-user pull). The body is read and
        # the stream closed by now (no streaming request): the response lets go of the stream.
        response.stream = httpx.ByteStream(b"")
        self.throttle(response)
        if response.is_success:
            return response
        # A 429 or 503 with a wait pauses every run on this instance, not only this one.
        throttle.after(self.base_url, response.status_code, response.headers, lambda: b"")
        wait = throttle_wait(response.headers)
        raise error_for_status(
            response.status_code,
            crm=self.crm,
            detail=self.error_detail(response),
            retry_after=wait,
            max_retry_after=max_retry_after,
            can_refresh=self.can_refresh,
            permission=self.permission,
            credentials=self.credentials,
        )

    def request(
        self,
        ctx: RequestContext,
        method: str,
        path: str,
        **kwargs: Any,
    ) -> httpx.Response:
        """:meth:`send` under the run's retry policy (``ctx.call``): throttling and transient
        errors are retried, an expired token is refreshed once."""
        kwargs.setdefault("max_retry_after", ctx.policy.max_retry_after)
        refresh = self.refresh if self.can_refresh else None
        return ctx.call(lambda: self.send(method, path, **kwargs), refresh=refresh)

    def json(self, ctx: RequestContext, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON body of :meth:`request`; a body that is not JSON is
        :class:`MalformedResponse`."""
        response = self.request(ctx, method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise MalformedResponse(
                f"{self.crm} sent an answer that is not JSON; retry later, and report it if it "
                "persists"
            ) from None
