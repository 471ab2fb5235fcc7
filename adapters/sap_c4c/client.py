"""A small typed OData v2 client for SAP Cloud for Customer, on the plugin kit's httpx client.

Sources (``../shared/reference/crm-apis.md``, section 5): SAP's C4C OData API developer guide
(``SAP-archive/C4CODATAAPIDEVGUIDE``: authentication, ``$format=json``, server-side paging,
``$filter``, the CSRF token) and the metadata of the employee service (entity ``EmployeeCollection``
and its navigation ``EmployeeUserBusinessRoleAssignment``, as published in public projects that
import it). Marked here as the reference marks them:

- **confirmed** [S]: Basic or OAuth-bearer auth; JSON only with ``$format=json`` (Atom XML
  otherwise); the envelope ``{"d": {"results": [...], "__next": "..."}}``; server paging fixed at
  1,000 rows with a ``$skiptoken`` next link; ``$filter`` with ``eq``/``ge``/``le``/``and``, ``or``
  on one property only, ``datetimeoffset'...'`` literals; ``/Date(ms)/`` values; ``x-csrf-token``
  (fetched by a GET with ``x-csrf-token: fetch``, kept with the session cookies) on every
  modifying request, and ``403`` with ``x-csrf-token: Required`` when it is missing or stale.
- **assumed** [I]: the OData error body ``{"error": {"code", "message": {"value"}}}`` (standard
  OData v2, seen in public SAP CAP code against C4C); throttling as ``429`` or ``503`` with a
  ``Retry-After`` (C4C documents no per-call quota, only fair use); the offset of
  ``/Date(ms±mmmm)/`` read as OData v2's "minutes" added to UTC, so the instant is ``ms`` minus the
  offset (SAP's own pyodata reads it so; C4C itself sends ``+0000`` or nothing).

The adapter (``adapter.py``) says which employee fields it maps and makes every name configurable.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, urljoin, urlsplit

import httpx

from seatgate.core.plugins import (
    AuthFailed,
    BadInput,
    MalformedResponse,
    QuotaExhausted,
    RateLimited,
    RequestContext,
    TransientError,
    kit,
    require_tls,
    reveal,
)
from seatgate.core.plugins.throttle import origin

__all__ = [
    "CRM",
    "DEFAULT_SERVICE_PATH",
    "Client",
    "encode_query",
    "envelope",
    "filter_literal",
    "format_date",
    "parse_date",
    "quote_string",
]

T = TypeVar("T")

CRM = "SAP C4C"
DEFAULT_SERVICE_PATH = "/sap/c4c/odata/v1/c4codataapi"
EXAMPLE_BASE_URL = "https://my000000.crm.ondemand.com"
READ_PERMISSION = (
    "read access to employees and their business roles (a business role with the Employees and "
    "Business Users work center views; OData service c4codataapi)"
)
CREDENTIALS = (
    "username and password (Basic), or access_token (bearer; a SAML bearer token expires: put a "
    "fresh one) in the config"
)

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# /Date(1714557600000)/ (Edm.DateTime) and /Date(1714557600000+0000)/ (Edm.DateTimeOffset).
_DATE = re.compile(r"/Date\((-?[0-9]{1,15})(?:([+-])([0-9]{4}))?\)/")  # ASCII digits only
# What a query value keeps as is: OData's own punctuation; spaces, & and # are escaped.
_QUERY_SAFE = "$'(),:*/@"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def parse_date(value: str) -> dt.datetime:
    """An OData v2 JSON date as an aware UTC datetime, to the millisecond, exactly.

    ``/Date(ms)/`` is milliseconds since 1970-01-01 UTC (Edm.DateTime); ``/Date(ms+mmmm)/`` adds
    an offset in minutes (Edm.DateTimeOffset), read as the wall clock at that offset [I]. Integer
    arithmetic throughout (no float seconds), so no millisecond is lost or rounded.

    :raises ValueError: not this format, or out of the datetime range.
    """
    if value[:6] == "/Date(" and value[-2:] == ")/":
        digits = value[6:-2]
        # The common case (no offset, no sign), without the regex: a pull parses one per user.
        if 0 < len(digits) <= 15 and digits.isascii() and digits.isdigit():
            return _EPOCH + dt.timedelta(milliseconds=int(digits))
    match = _DATE.fullmatch(value)
    if match is None:
        raise ValueError(f"not an OData date: {value[:40]!r}")
    try:
        instant = _EPOCH + dt.timedelta(milliseconds=int(match[1]))
        if match[2] is not None:
            minutes = int(match[3])
            instant -= dt.timedelta(minutes=minutes if match[2] == "+" else -minutes)
    except OverflowError:
        raise ValueError(f"OData date out of range: {value[:40]!r}") from None
    return instant


def format_date(value: dt.datetime, offset_minutes: int | None = None) -> str:
    """``value`` (aware) as ``/Date(ms)/``, or ``/Date(ms±mmmm)/`` with an offset in minutes: the
    inverse of :func:`parse_date` (sub-millisecond digits are dropped, as C4C's JSON drops them)."""
    utc = value.astimezone(dt.UTC)
    if offset_minutes is None:
        return f"/Date({(utc - _EPOCH) // dt.timedelta(milliseconds=1)})/"
    local = utc + dt.timedelta(minutes=offset_minutes)
    ms = (local - _EPOCH) // dt.timedelta(milliseconds=1)
    sign = "-" if offset_minutes < 0 else "+"
    return f"/Date({ms}{sign}{abs(offset_minutes):04d})/"


def filter_literal(value: dt.datetime) -> str:
    """``value`` as an OData ``datetimeoffset'...Z'`` literal, in UTC, to the microsecond: never
    rounded up, so a ``ge`` filter on it stays inclusive."""
    utc = value.astimezone(dt.UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}"
    return f"datetimeoffset'{text}Z'"


def quote_string(value: str) -> str:
    """``value`` as an OData string literal (a quote inside is doubled)."""
    return "'" + value.replace("'", "''") + "'"


def encode_query(params: Mapping[str, str]) -> str:
    """A query string with OData's ``$`` options written as C4C's guide writes them
    (``$filter=EntityLastChangedOn ge ...``, spaces escaped), not as ``%24filter``."""
    return "&".join(f"{key}={quote(value, safe=_QUERY_SAFE)}" for key, value in params.items())


def identifier(value: object, key: str) -> str:
    """A configured OData name (entity set, property, navigation): refused unless it is one, so
    nothing but a name reaches a query."""
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise BadInput(f"config {key}", value, "an OData name (letters, digits, _)")
    return value


def envelope(body: Any) -> tuple[list[Any], str | None]:
    """The rows and the next link of an OData v2 JSON answer ``{"d": {"results": [...],
    "__next": ...}}``.

    :raises MalformedResponse: any other shape.
    """
    d = body.get("d") if isinstance(body, dict) else None
    results = d.get("results") if isinstance(d, dict) else None
    if not isinstance(results, list):
        raise MalformedResponse(
            f"{CRM} sent a page without d.results; retry later, and report it if it persists"
        )
    following = d.get("__next") if isinstance(d, dict) else None
    if following is not None and not (isinstance(following, str) and following):
        raise MalformedResponse(f"{CRM} sent a page whose __next is not a link")
    return results, following


class CsrfRequired(AuthFailed):
    """C4C refused a write for want of a (fresh) CSRF token: ``403`` + ``x-csrf-token: Required``.
    :meth:`Client.call` fetches a new token and tries once more; escaping that, it reads as the
    one-line 403 it is."""


class Client(kit.HttpClient):
    """One C4C tenant for one run: Basic or bearer auth, OData paging and errors, CSRF for writes.

    :param settings: the validated settings (``base_url``, ``service_path``, ``timeout`` and one
        auth set: ``username`` + ``password``, or ``access_token``).
    :param transport: an httpx transport (tests).
    :raises BadInput: a base URL without TLS on a real host, both auth sets, a bad service path.
    """

    crm = CRM
    permission = READ_PERMISSION
    credentials = CREDENTIALS

    def __init__(
        self, settings: Mapping[str, Any], *, transport: httpx.BaseTransport | None = None
    ) -> None:
        base = require_tls(str(settings.get("base_url") or ""), "base_url", EXAMPLE_BASE_URL)
        service = str(settings.get("service_path") or DEFAULT_SERVICE_PATH).rstrip("/")
        if not service.startswith("/") or "?" in service or "#" in service:
            raise BadInput("config service_path", service, "a path such as " + DEFAULT_SERVICE_PATH)
        basic = "username" in settings and "password" in settings
        bearer = "access_token" in settings
        if basic and bearer:
            raise BadInput(
                "config auth",
                "both",
                "one set: username and password (Basic), or access_token (bearer)",
            )
        if basic:
            pair = f"{reveal(settings['username'])}:{reveal(settings['password'])}"
            self._authorization = "Basic " + base64.b64encode(pair.encode()).decode()
        elif bearer:
            self._authorization = "Bearer " + reveal(settings["access_token"])
        else:
            raise BadInput("config auth", "incomplete", "username and password, or access_token")
        self.auth_mode = "basic" if basic else "bearer"
        super().__init__(
            base,
            timeout=float(settings.get("timeout") or 60),
            # JSON twice over: $format=json on every URL (the guide's way) and Accept.
            headers={"Accept": "application/json"},
            transport=transport,
        )
        self.service = service
        self._origin = urlsplit(self.base_url)
        self._csrf: str | None = None
        self._csrf_required = False
        self.csrf_url: str | None = None  # where a stale token is fetched again (a service root)
        self.last_status = 0
        self.last_detail = ""

    def __repr__(self) -> str:
        return f"Client({self.base_url!r}, auth={self.auth_mode!r})"

    def __enter__(self) -> Client:
        return self

    # -- what the kit asks of a vendor ---------------------------------------------------------
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": self._authorization}

    def error_detail(self, response: httpx.Response) -> str:
        """OData v2's ``{"error": {"code": ..., "message": {"value": ...}}}`` [I] as one line;
        an HTML or empty body (a refused logon) says nothing worth repeating. Kept as
        :attr:`last_detail` for the messages that name a setting."""
        self.last_detail = self._detail(response)
        return self.last_detail

    def _detail(self, response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return ""
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return super().error_detail(response)
        code = error.get("code")
        message = error.get("message")
        text = message.get("value") if isinstance(message, dict) else message
        parts = [str(p) for p in (code, text) if isinstance(p, str) and p]
        return ": ".join(parts).replace("\n", " ").replace("\r", " ")[:200]

    def throttle(self, response: httpx.Response) -> None:
        """Every answer: the throttle hint (kit), the status, and the CSRF token C4C hands out
        (``x-csrf-token: <token>``) or asks for (``x-csrf-token: Required``)."""
        super().throttle(response)
        self.last_status = response.status_code
        token = response.headers.get("x-csrf-token")
        self._csrf_required = bool(token) and token.lower() == "required"
        if token and not self._csrf_required:
            self._csrf = token

    # -- requests ------------------------------------------------------------------------------
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
        permission: str = "",
    ) -> httpx.Response:
        """The kit's one request, plus: the CSRF token on a write; ``permission``, what a 403
        names (the read permission by default); a 5xx carrying ``Retry-After`` waits as asked."""
        extra = dict(headers or {})
        if method not in ("GET", "HEAD") and self._csrf is not None:
            extra["x-csrf-token"] = self._csrf
        self.last_wait, self._csrf_required, self.last_status = None, False, 0
        self.last_detail = ""
        saved = self.permission
        if permission:
            self.permission = permission
        try:
            return super().send(
                method,
                path,
                params=params,
                json=json,
                data=data,
                headers=extra,
                max_retry_after=max_retry_after,
            )
        except AuthFailed as exc:
            if self._csrf_required:
                self._csrf = None
                raise CsrfRequired(str(exc)) from None
            raise
        except TransientError as exc:
            wait = self.last_wait
            if wait is None or not self.last_status:
                raise
            # Fair-use throttling may answer 503 with Retry-After [I]: wait what it asks.
            if wait > max_retry_after:
                raise QuotaExhausted(
                    f"{CRM} asks to wait {int(wait)} s ({self.last_status}); the run ends and "
                    "resumes at the next schedule"
                ) from None
            raise RateLimited(str(exc), wait) from None
        finally:
            self.permission = saved

    def fetch_csrf(self, ctx: RequestContext, path: str) -> None:
        """GET ``path`` asking for a CSRF token (C4C hands it out on any GET); the session
        cookies it sets stay in this client's cookie jar, with which the token is valid."""
        self.request(ctx, "GET", path, headers={"x-csrf-token": "fetch"})
        if self._csrf is None:
            raise MalformedResponse(f"{CRM} handed out no CSRF token; writes cannot be made")

    def collection_url(self, collection: str, params: Mapping[str, str], service: str = "") -> str:
        """``{service}/{collection}?$format=json&...`` (relative to ``base_url``)."""
        query = encode_query({"$format": "json", **params})
        return f"{service or self.service}/{collection}?{query}"

    def page(
        self, ctx: RequestContext, url: str, *, headers: Mapping[str, str] | None = None
    ) -> tuple[list[Any], str | None]:
        """One page: its rows and the next page's URL (relative), or None after the last.

        :raises MalformedResponse: not the OData envelope, a next link to another host or
            collection (credentials never follow a link off the tenant), or no such collection.
        """
        try:
            body = self.json(ctx, "GET", url, headers=headers)
        except MalformedResponse:
            if self.last_status == 404:
                raise MalformedResponse(
                    f"{CRM} has no collection at {url.split('?', 1)[0]}: check service_path and "
                    "collection in the config"
                ) from None
            if self.last_status == 400:
                said = self.last_detail or "400"
                raise MalformedResponse(
                    f"{CRM} refused the query ({said}): check filter and the field names in the "
                    "config"
                ) from None
            raise
        rows, following = envelope(body)
        return rows, None if following is None else self.next_url(following, url)

    def next_url(self, link: str, current: str) -> str:
        """``__next`` (absolute, or relative to ``current``) as a URL relative to ``base_url``, on
        the same host and collection as ``current``, with ``$format=json`` kept."""
        base_path = self._origin.path.rstrip("/")
        absolute = urljoin(f"{self.base_url}{current}", link)
        parts = urlsplit(absolute)
        try:
            same = origin(absolute) == origin(self.base_url)  # https://h:443 is https://h
        except ValueError:  # a port that is no number
            same = False
        if not same:
            raise MalformedResponse(
                f"{CRM} sent a next link to another host; the pull stops rather than send the "
                "credentials there"
            )
        here = base_path + urlsplit(current).path
        if parts.path.rstrip("/") != here.rstrip("/"):
            raise MalformedResponse(f"{CRM} sent a next link to another collection")
        query = parts.query
        if "$format" not in dict(parse_qsl(query, keep_blank_values=True)):
            query = f"{query}&$format=json" if query else "$format=json"
        return f"{parts.path.removeprefix(base_path)}?{query}"

    def call(self, ctx: RequestContext, fn: Callable[[], T]) -> T:
        """``fn`` (requests made with :meth:`send`) under the retry policy; a write refused for a
        stale CSRF token fetches a new one (at :attr:`csrf_url`) and runs ``fn`` once more."""
        try:
            return ctx.call(fn)
        except CsrfRequired:
            if self.csrf_url is None:
                raise
            self.fetch_csrf(ctx, self.csrf_url)
            return ctx.call(fn)

    def create(
        self,
        ctx: RequestContext,
        url: str,
        body: Mapping[str, Any],
        *,
        permission: str,
        exists: Callable[[], bool],
    ) -> None:
        """POST an entity, checked: C4C must answer 201 with the entity (``d``).

        A POST is not idempotent: when an attempt failed on the way (a timeout, a 5xx) and is
        retried, ``exists()`` (one plain request, :meth:`send`) is asked first, so an entity the
        failed attempt did create is not created twice.

        :raises MalformedResponse: the write was not confirmed (names ``permission``).
        :raises AuthFailed: 401/403 (a 403 names ``permission``).
        """
        tried = False
        limit = ctx.policy.max_retry_after

        def attempt() -> httpx.Response | None:
            nonlocal tried
            if tried and exists():
                return None
            tried = True
            try:
                return self.send(
                    "POST", url, json=dict(body), permission=permission, max_retry_after=limit
                )
            except CsrfRequired:
                tried = False  # refused before anything was written
                raise

        response = self.call(ctx, attempt)
        if response is None:
            return
        try:
            created = response.json().get("d")
        except (ValueError, AttributeError):
            created = None
        if response.status_code != 201 or not isinstance(created, dict):
            raise MalformedResponse(
                f"{CRM} did not confirm the write ({response.status_code}): the integration "
                f"user needs {permission}"
            )

    def delete(self, ctx: RequestContext, url: str, *, permission: str) -> bool:
        """DELETE an entity, checked: True when C4C removed it (204), False when it was gone
        already (404: a delete is idempotent).

        :raises MalformedResponse: the delete was not confirmed (names ``permission``).
        """
        limit = ctx.policy.max_retry_after
        try:
            response = self.call(
                ctx,
                lambda: self.send("DELETE", url, permission=permission, max_retry_after=limit),
            )
        except MalformedResponse:
            if self.last_status == 404:
                return False
            raise
        if response.status_code != 204:
            raise MalformedResponse(
                f"{CRM} did not confirm the delete ({response.status_code}): the integration "
                f"user needs {permission}"
            )
        return True
