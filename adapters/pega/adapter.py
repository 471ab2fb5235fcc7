"""The Pega adapter: operators from a DX API v2 data view, on a small httpx client of its own.

Pega has no maintained Python client, so :class:`Client` is ours, on the plugin kit's
:class:`~seatgate.core.plugins.kit.HttpClient` (timeouts, one connection pool per run, every request
under the run's retry policy).

What is confirmed and what is assumed (``reference/crm-apis.md`` §6; [S] sourced, [I] inferred).
Every assumed name is a setting, so a deployment whose data view differs changes the config, not
the code:

- [S] OAuth 2.0 client credentials: ``POST {base}/prweb/PRRestService/oauth2/v1/token``, HTTP Basic
  ``client_id:client_secret``, form ``grant_type=client_credentials``; the answer carries
  ``access_token`` and ``expires_in`` (3600 s assumed when missing).
- [S] ``POST {base}/prweb/api/application/v2/data_views/{ID}`` with ``query`` (``select``,
  ``filter.filterConditions`` + ``logic``, ``sortBy``) and ``paging`` (``pageNumber``,
  ``pageSize`` <= 5,000; a larger page fails validation); ``useExtendedTimeout`` (45 s instead of
  10 s, for data views sourced by a report definition); 404 for an unknown data view.
- [S] operators are ``Data-Admin-Operator-ID``, keyed by ``pyUserIdentifier``;
  ``D_pxOperatorsList`` is a standard data page listing them (``data_view``, the default).
- [I] the answer's shape ``{"data": [...], "pageNumber", "pageSize", "resultCount"}``, and
  ``hasMoreResults``, which newer versions send: without it a page shorter than ``pageSize`` is
  the last one.
- [I] the field names: ``pyEmailAddress`` (``email_field``), ``pyUserName`` (``name_field``),
  ``pyOpDisabled`` (``disabled_field``), ``pxUpdateDateTime`` (``updated_field``),
  ``pyAccessGroup`` and ``pyAccessGroupsAdditional`` (``role_fields``).
- [I] ``pxUpdateDateTime`` comes as Pega's ``YYYYMMDDTHHMMSS.mmm GMT``; ISO 8601 with a zone is read
  too (Constellation renders DateTime so). A filter value is written in ``stamp_format``.
- [I] error bodies: v2 ``{"errorClassification", "localizedValue", "errorDetails": [...]}``, v1
  ``{"errors": [{"ID", "message"}]}``, OAuth ``{"error", "error_description"}``; throttling as 429
  or 503 from a gateway, with ``Retry-After`` when it says how long.
- [I] installation markers: a savable data page (``install_data_view``) over a data type the Pega
  admin creates, keyed by ``InstallationKey``, written with ``PUT /data/{ID}`` and removed with
  ``DELETE /data/{ID}?dataViewParameters=...``.

Request cost of a pull: ``ceil(operators / page_size)`` data view requests (5,000 a page), plus one
token request per run (and one more each time the token nears ``expires_in``). Paging is keyset by
default: every request asks page 1 of the operators whose ``pyUserIdentifier`` is greater than the
last one read, sorted on it. Page numbers (``paging = "page_number"``) would skip an operator
whenever one before it is deleted while the pull runs, and a full pull would then take the skipped
operator for deactivated; they remain for data views that cannot filter on the key. An incremental
pull adds ``pxUpdateDateTime >= since`` to the same query: 1% of 100,000 changed is one request.

Roles for auto install are the operator's access groups, which come with the record at no extra
request. Each is a setting: ``role_fields``.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import functools
import json
import re
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import Any, NamedTuple, TypeVar, cast
from urllib.parse import quote

import httpx

from seatgate.adapters.pega.declaration import FEATURES, NAME, PRODUCT, PRODUCTS
from seatgate.core.plugins import (
    AdapterError,
    AdapterInfo,
    AuthFailed,
    BadInput,
    ConfigSchema,
    ExternalUser,
    Field,
    MalformedResponse,
    QuotaExhausted,
    RateLimited,
    RequestContext,
    TokenExpired,
    TransientError,
    UserPage,
    hookimpl,
    kit,
    require_tls,
    reveal,
    timeout_field,
    unreadable,
)

T = TypeVar("T")
UTC = dt.UTC

VERSION = "0.1.0"
MAX_PAGE = 5_000  # "pageSize > 5000 fails validation" [S]
DEFAULT_DATA_VIEW = "D_pxOperatorsList"
DEFAULT_INSTALL_DATA_VIEW = "D_SeatgateInstallation"
DEFAULT_EXPIRES_IN = 3600  # seconds, when the token answer has no expires_in [S]
TOKEN_PATH = "/PRRestService/oauth2/v1/token"
API_PATH = "/api/application/v2"
PAGING_MODES = ("keyset", "page_number")
STAMP_FORMATS = ("pega", "iso")
INSTALL_KEY = "InstallationKey"
# How far before the cursor an incremental pull re-reads, in seconds. pxUpdateDateTime is stamped
# by the application node that saves the operator, from that node's clock, not the database's: in
# a multi-node cluster the nodes' clocks differ, and a batch that provisions operators (an SSO or
# LDAP import, a job scheduler) stamps each record when it is saved but commits them together at
# the end. Ten minutes covers both; the filter is server-side, so re-reading them costs at most a
# page, and re-applying an unchanged operator changes nothing.
LOOKBACK_SECONDS = 600

READ_PERMISSION = (
    "read access to the data view {view} through the DX API (the data view available to the "
    "application's DX API, and an access role granting read on Data-Admin-Operator-ID in the "
    "access group of the OAuth client's operator)"
)
WRITE_PERMISSION = (
    "write access to the savable data page {view} (an access role granting Modify on its data "
    "class, in the access group of the OAuth client's operator)"
)

_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*", re.ASCII)
_PROPERTY_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*", re.ASCII)

CONFIG_SCHEMA = ConfigSchema(
    fields=(
        Field(
            "base_url",
            required=True,
            description="the Pega server, https://host[:port] without /prweb; http only for "
            "127.0.0.1/localhost (the sandbox)",
        ),
        Field("client_id", description="OAuth 2.0 client registration: client id"),
        Field(
            "client_secret",
            secret=True,
            description="OAuth 2.0 client registration (client credentials grant): client secret",
        ),
        Field(
            "context_root",
            default="prweb",
            description="the web application's context root in every path (prweb by default)",
        ),
        Field(
            "app_alias",
            default="",
            description="application URL alias: calls go to /prweb/app/ALIAS/api/...; empty: "
            "the application of the OAuth client's operator",
        ),
        Field(
            "data_view",
            default=DEFAULT_DATA_VIEW,
            description="the data view listing operators (D_pxOperatorsList, or a report data "
            "page of your own on Data-Admin-Operator-ID); it must be queryable (filter, sort)",
        ),
        Field(
            "page_size",
            type="integer",
            default=MAX_PAGE,
            minimum=1,
            maximum=MAX_PAGE,
            description=f"operators per request, at most {MAX_PAGE}",
        ),
        Field(
            "paging",
            default="keyset",
            choices=PAGING_MODES,
            description="keyset: pyUserIdentifier greater than the last one read (no operator "
            "skipped when one is deleted during a pull); page_number: pageNumber 1, 2, ...",
        ),
        Field("id_field", default="pyUserIdentifier", description="the operator's key [confirmed]"),
        Field(
            "email_field",
            default="pyEmailAddress",
            description="the email [assumed]; pyUserIdentifier when operator ids are emails",
        ),
        Field("name_field", default="pyUserName", description="the display name [assumed]"),
        Field(
            "disabled_field",
            default="pyOpDisabled",
            description="true for a disabled operator [assumed]; empty: no such field",
        ),
        Field(
            "updated_field",
            default="pxUpdateDateTime",
            description="the change stamp incremental pulls filter on [assumed]",
        ),
        Field(
            "role_fields",
            type="list",
            default=["pyAccessGroup", "pyAccessGroupsAdditional"],
            description="fields holding the access groups, the roles of auto install [assumed]: "
            "each a name or a list of names",
        ),
        Field(
            "stamp_format",
            default="pega",
            choices=STAMP_FORMATS,
            description="how a filter writes a date-time: pega (20250101T000000.000 GMT) or iso "
            "(2025-01-01T00:00:00.000Z)",
        ),
        Field(
            "extended_timeout",
            type="boolean",
            default=True,
            description="useExtendedTimeout: 45 s instead of 10 s for a report definition to "
            "answer a 5,000-operator page",
        ),
        Field(
            "install_data_view",
            default=DEFAULT_INSTALL_DATA_VIEW,
            description="savable data page where install writes a marker per account (keyed by "
            "InstallationKey, with Account and Product); empty: install writes nothing",
        ),
        timeout_field(60),
    ),
    auth={"client_credentials": ("client_id", "client_secret")},
)

EXAMPLE_CONFIG: dict[str, Any] = {
    "base_url": "https://acme.pegacloud.io",
    "client_id": "10682735462537891234",
    "client_secret": "${PEGA_CLIENT_SECRET}",
    "data_view": DEFAULT_DATA_VIEW,
    "page_size": MAX_PAGE,
    "role_fields": ["pyAccessGroup", "pyAccessGroupsAdditional"],
}


# -- Pega's date-time stamps ------------------------------------------------------------------------

_PEGA_STAMP = re.compile(r"[0-9]{8}T[0-9]{6}\.[0-9]{3} GMT", re.ASCII)
_fromisoformat = dt.datetime.fromisoformat


def parse_stamp(value: str) -> dt.datetime:
    """A Pega date-time as an aware UTC datetime, to the millisecond.

    Pega's own format is ``YYYYMMDDTHHMMSS.mmm GMT`` (``20250101T093000.250 GMT``); ISO 8601 with
    a zone (``2025-01-01T09:30:00.250Z``) is read too. Raises ``ValueError`` for anything else,
    including a date that does not exist (``20250230T...``).
    """
    if _PEGA_STAMP.fullmatch(value) and value[9:11] < "24":
        # The shape is checked above; the C parser of ISO 8601's basic format then checks the
        # calendar, several times faster than building the datetime from its parts here.
        return _fromisoformat(value[:19] + "+00:00")
    if len(value) >= 20 and value[4:5] == "-" and value[10:11] == "T":
        parsed = dt.datetime.fromisoformat(value)
        if parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
    raise ValueError(f"not a Pega date-time: {value[:40]!r}")


def format_stamp(instant: dt.datetime, style: str = "pega") -> str:
    """``instant`` (naive means UTC) as Pega writes it, cut down to the millisecond: floored, so a
    filter ``>=`` on it still includes ``instant`` itself."""
    at = instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)
    # Field by field: strftime's %Y does not pad a year before 1000 on every platform.
    day = (at.year, at.month, at.day)
    clock = (at.hour, at.minute, at.second, at.microsecond // 1000)
    if style == "iso":
        return "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}.{:03d}Z".format(*day, *clock)
    return "{:04d}{:02d}{:02d}T{:02d}{:02d}{:02d}.{:03d} GMT".format(*day, *clock)


# -- the field mapping ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FieldMap:
    """Which data view fields make the core's user record (the settings ``*_field``)."""

    id: str = "pyUserIdentifier"
    email: str = "pyEmailAddress"
    name: str = "pyUserName"
    disabled: str = "pyOpDisabled"
    updated: str = "pxUpdateDateTime"
    roles: tuple[str, ...] = ("pyAccessGroup", "pyAccessGroupsAdditional")

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> FieldMap:
        """The mapping in ``settings``; a name that is no Pega property is :class:`BadInput`."""
        default = cls()
        values: dict[str, str] = {}
        for attr, key in (
            ("id", "id_field"),
            ("email", "email_field"),
            ("name", "name_field"),
            ("disabled", "disabled_field"),
            ("updated", "updated_field"),
        ):
            value = str(settings.get(key, getattr(default, attr)) or "")
            if value and not _PROPERTY_RE.fullmatch(value):
                raise BadInput(f"config {key}", value, "a Pega property name such as pyUserName")
            values[attr] = value
        for key in ("id_field", "updated_field"):
            if not values[key.removesuffix("_field")]:
                raise BadInput(f"config {key}", "", "a Pega property name")
        roles = tuple(str(r) for r in settings.get("role_fields", default.roles) or ())
        for role in roles:
            if not _PROPERTY_RE.fullmatch(role):
                raise BadInput(
                    "config role_fields", role, "Pega property names such as pyAccessGroup"
                )
        return cls(roles=roles, **values)

    @functools.cached_property
    def dotted(self) -> bool:
        """Whether a mapped field is an embedded page's property (``pyAddresses.Email...``)."""
        return any("." in f for f in self.select)

    @functools.cached_property
    def select(self) -> list[str]:
        """The fields a query selects, each once."""
        wanted = (self.id, self.email, self.name, self.disabled, self.updated, *self.roles)
        return list(dict.fromkeys(f for f in wanted if f))


def _get(row: Mapping[str, Any], field: str) -> Any:
    if field in row:
        return row[field]
    if "." in field:  # an embedded page's property: flattened by some versions, nested by others
        value: Any = row
        for part in field.split("."):
            if not isinstance(value, Mapping):
                return None
            value = value.get(part)
        return value
    return None


class _Unreadable(ValueError):
    """One field of one operator that cannot be read: the record is quarantined, not the run
    failed (its text is the record's ``problem``)."""


def _flag(value: Any, field: str) -> bool:
    if value is None or value == "" or value is False:
        return False  # Pega leaves false and empty properties out of a record
    if value is True:
        return True
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _Unreadable(f"{field} is not true or false")


def _names(value: Any, field: str) -> tuple[str, ...] | list[str]:
    if value is None or value == "":
        return ()
    if type(value) is str:
        return (value,)
    if type(value) is list and all(type(v) is str for v in value):
        return value
    raise _Unreadable(f"{field} is not a name or a list of names")


def to_user(row: Any, fields: FieldMap) -> ExternalUser:
    """One data view row as the core's user.

    A row that is not an object, or has no key (``pyUserIdentifier``: it drives keyset paging,
    and a record without it can be neither quarantined under its id nor counted as seen, so a
    full pull would deactivate its user), means the page is not what the data view promises:
    :class:`MalformedResponse`, the run fails. A field of one operator that cannot be read (a
    name or email that is no text, a ``pxUpdateDateTime`` that is no date-time, a disabled flag
    neither true nor false, access groups of the wrong shape) is that record's alone: the user
    comes back with its key, its email when readable and ``problem`` saying which field, and
    the core quarantines it (``malformed_record``).

    This runs once per operator (100,000 in a large pull): plain ``dict.get`` unless a mapped
    field is an embedded page's property, and no work for what the row does not have.
    """
    if not isinstance(row, dict):
        raise MalformedResponse("Pega sent a data view row that is not an object")
    get: Callable[[str], Any] = functools.partial(_get, row) if fields.dotted else row.get
    key = get(fields.id)
    if type(key) is not str or not key:
        raise MalformedResponse(f"Pega sent an operator without {fields.id}")
    email = get(fields.email) if fields.email else None
    name = get(fields.name) if fields.name else None
    try:
        if email is not None and type(email) is not str:
            email = None
            raise _Unreadable(f"{fields.email} is no text")
        if name is not None and type(name) is not str:
            raise _Unreadable(f"{fields.name} is no text")
        stamp = get(fields.updated)
        modified_at = None
        if stamp is not None:
            try:
                modified_at = parse_stamp(stamp)
            except (TypeError, ValueError):
                raise _Unreadable(unreadable(fields.updated, stamp, "date-time")) from None
        roles: tuple[str, ...] = ()
        for field in fields.roles:
            roles += tuple(_names(get(field), field))
        if len(roles) > 1 or (roles and not roles[0]):
            roles = tuple(dict.fromkeys(r for r in roles if r))  # each once, the primary first
        disabled = _flag(get(fields.disabled), fields.disabled) if fields.disabled else False
    except _Unreadable as exc:
        return ExternalUser(external_id=key, email=email or None, problem=str(exc))
    return ExternalUser(
        external_id=key,
        email=email or None,
        name=name or "",
        active=not disabled,
        roles=roles,
        modified_at=modified_at,
    )


# -- the client -------------------------------------------------------------------------------------


class Client(kit.HttpClient):
    """Pega's DX API v2 over httpx: an OAuth 2.0 client-credentials token, data views and
    savable data pages.

    The token is fetched before the first call and again when ``expires_in`` is close, by
    ``clock`` (monotonic seconds, injectable), and once more on a 401 (the kit's refresh). 429,
    and 503 with ``Retry-After``, wait what Pega asks.
    """

    crm = "Pega"
    credentials = "client_id and client_secret in the config"

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: object,
        *,
        context_root: str = "prweb",
        app_alias: str = "",
        timeout: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        base, root = _locate(base_url, context_root, app_alias)
        super().__init__(
            base, timeout=timeout, headers={"Accept": "application/json"}, transport=transport
        )
        self.token_path = f"/{root}{TOKEN_PATH}"
        self.api_path = f"/{root}/app/{app_alias}{API_PATH}" if app_alias else f"/{root}{API_PATH}"
        self._client_id = client_id
        self._client_secret = client_secret  # a Secret from the settings, revealed per token
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._status = 0  # the status of the latest answer (0: none came)
        self.last_detail = ""  # Pega's words in the latest error answer
        self.tokens_fetched = 0

    def __enter__(self) -> Client:
        return self

    # -- auth ----------------------------------------------------------------------------------
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    @property
    def can_refresh(self) -> bool:
        return True

    def refresh(self) -> None:
        """A new token (no retry here: the caller runs this under the retry policy)."""
        basic = base64.b64encode(f"{self._client_id}:{reveal(self._client_secret)}".encode())
        self._token = None
        try:
            response = self.send(
                "POST",
                self.token_path,
                data={"grant_type": "client_credentials"},
                headers={"Authorization": f"Basic {basic.decode()}"},
            )
        except TokenExpired:  # 401 from the token endpoint: the client is refused
            raise AuthFailed(
                f"Pega refused the OAuth client{self.said()}: check {self.credentials}"
            ) from None
        except MalformedResponse:
            if self._status == 400:  # unsupported_grant_type, unauthorized_client...
                raise AuthFailed(
                    f"Pega's token endpoint refused the request{self.said()}: the OAuth 2.0 "
                    "client registration must allow the client credentials grant"
                ) from None
            raise MalformedResponse(
                f"Pega's token endpoint {self.token_path} answered {self._status}{self.said()}: "
                "check base_url and context_root in the config"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise MalformedResponse("Pega's token endpoint answered without an access_token")
        expires_in = body.get("expires_in", DEFAULT_EXPIRES_IN)
        try:
            lifetime = float(expires_in)
        except (TypeError, ValueError):
            lifetime = DEFAULT_EXPIRES_IN
        # Refreshed a little early, so a token does not expire between the check and the answer.
        self._expires_at = self._clock() + lifetime - min(60.0, lifetime / 10)
        self._token = token
        self.tokens_fetched += 1

    def ensure_token(self, ctx: RequestContext) -> None:
        """Fetch a token (under the retry policy) when there is none or it is about to expire."""
        if self._token is None or self._clock() >= self._expires_at:
            ctx.call(self.refresh)

    # -- answers -------------------------------------------------------------------------------
    def throttle(self, response: httpx.Response) -> None:
        self._status = response.status_code
        super().throttle(response)

    def error_detail(self, response: httpx.Response) -> str:
        """Pega's words: the OAuth ``error``, DX API v2 ``errorDetails``/``localizedValue``, or
        v1 ``errors[].message``; one line."""
        try:
            body = response.json()
        except ValueError:
            body = None
        self.last_detail = _detail(body)
        return self.last_detail

    def said(self) -> str:
        """Pega's words in the latest error answer, in parentheses, or nothing."""
        return f" ({self.last_detail})" if self.last_detail else ""

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The kit's request, plus Pega's gateway signal: a 503 that says how long to wait is
        throttling, waited like a 429 (or the end of the run when longer than the policy takes)."""
        self._status, self.last_detail = 0, ""
        try:
            return super().send(method, path, **kwargs)
        except TransientError:
            wait = self.last_wait
            if self._status != 503 or wait is None:
                raise
            if wait > float(kwargs.get("max_retry_after", 300.0)):
                raise QuotaExhausted(
                    f"Pega is unavailable (503) and asks to wait {int(wait)} s; the run ends and "
                    "resumes at the next schedule"
                ) from None
            raise RateLimited(f"Pega is unavailable (503) for {wait:g} s", wait) from None

    def call(self, ctx: RequestContext, fn: Callable[[], T]) -> T:
        """``fn`` (one request) with a valid token, under the run's retry policy."""
        self.ensure_token(ctx)
        return ctx.call(fn, refresh=self.refresh)

    def request(self, ctx: RequestContext, method: str, path: str, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("max_retry_after", ctx.policy.max_retry_after)
        return self.call(ctx, lambda: self.send(method, path, **kwargs))

    # -- the DX API ----------------------------------------------------------------------------
    def list_data_view(
        self, ctx: RequestContext, data_view: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """One page of a list data view: ``{"data": [...], ...}`` as Pega sent it."""
        path = f"{self.api_path}/data_views/{_view(data_view)}"
        self.ensure_token(ctx)  # outside the try: a 404 below is the data view's
        try:
            page = self.json(ctx, "POST", path, json=dict(body))
        except MalformedResponse:
            if self._status == 404:
                raise MalformedResponse(
                    f"Pega has no data view {data_view}{self.said()}: check data_view in the "
                    "config, and that the data view is available to the application's DX API"
                ) from None
            raise
        if not isinstance(page, dict) or not isinstance(page.get("data", []), list):
            raise MalformedResponse(f"Pega sent a page of {data_view} without a data list")
        page.setdefault("data", [])
        return page

    def save_record(
        self, ctx: RequestContext, data_view: str, record: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Create or replace a record through a savable data page (``PUT /data/{ID}``)."""
        path = f"{self.api_path}/data/{_view(data_view)}"
        body = self.json(ctx, "PUT", path, json={"data": dict(record)})
        return body if isinstance(body, dict) else {}

    def delete_record(self, ctx: RequestContext, data_view: str, keys: Mapping[str, str]) -> bool:
        """Delete a record through a savable data page; False when it was not there (404)."""
        path = f"{self.api_path}/data/{_view(data_view)}"
        params = {"dataViewParameters": json.dumps(dict(keys), separators=(",", ":"))}

        def delete() -> bool:
            try:
                self.send("DELETE", path, params=params, max_retry_after=ctx.policy.max_retry_after)
            except MalformedResponse:
                if self._status == 404:
                    return False
                raise
            return True

        return self.call(ctx, delete)


def _locate(base_url: str, context_root: str, app_alias: str) -> tuple[str, str]:
    """The base URL (TLS unless loopback) and the context root, checked; :class:`BadInput`
    names the bad setting."""
    base = require_tls(base_url, "base_url", "https://acme.pegacloud.io")
    root = context_root.strip("/")
    if not _NAME_RE.fullmatch(root):
        raise BadInput("config context_root", context_root, "a path segment such as prweb")
    if app_alias and not re.fullmatch(r"[A-Za-z0-9_-]+", app_alias, re.ASCII):
        raise BadInput("config app_alias", app_alias, "an application URL alias such as MyApp")
    return base, root


def check_settings(settings: Mapping[str, Any]) -> tuple[FieldMap, str, int]:
    """Everything a request needs from ``settings``, checked before any request is made: the
    field mapping, the data view and the page size. :class:`BadInput` names the bad setting."""
    _locate(
        str(settings.get("base_url") or ""),
        str(settings.get("context_root") or "prweb"),
        str(settings.get("app_alias") or ""),
    )
    fields = FieldMap.of(settings)
    size = settings.get("page_size", MAX_PAGE)
    size = MAX_PAGE if size is None else size
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_PAGE:
        raise BadInput("config page_size", size, f"a whole number from 1 to {MAX_PAGE}")
    view = str(settings.get("data_view") or DEFAULT_DATA_VIEW)
    _view(view)
    install_view = str(settings.get("install_data_view") or "")
    if install_view:
        _view(install_view)
    return fields, view, size


def _view(data_view: str) -> str:
    if not _NAME_RE.fullmatch(data_view):
        raise BadInput("config data_view", data_view, "a data view ID such as D_pxOperatorsList")
    return quote(data_view, safe="")


def _detail(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    parts: list[str] = []
    if isinstance(body.get("error"), str):  # OAuth 2.0
        parts = [body["error"], str(body.get("error_description") or "")]
    elif isinstance(body.get("errorDetails"), list) or "localizedValue" in body:  # DX API v2
        details = [
            d.get("localizedValue") or d.get("message")
            for d in body.get("errorDetails") or ()
            if isinstance(d, dict)
        ]
        parts = [str(body.get("localizedValue") or body.get("errorClassification") or "")]
        parts += [str(d) for d in details[:2] if d]
    elif isinstance(body.get("errors"), list):  # DX API v1
        parts = [
            str(e.get("message") or e.get("ID") or "")
            for e in body["errors"]
            if isinstance(e, dict)
        ][:2]
    text = ": ".join(p for p in parts if p)
    return " ".join(text.split())[:200]


# -- paging -----------------------------------------------------------------------------------------


class Cursor(NamedTuple):
    """Where the next page starts: its page number, and the key of the last operator read."""

    number: int
    after: str | None


def query_body(
    fields: FieldMap,
    cursor: Cursor,
    *,
    since: dt.datetime | None,
    page_size: int,
    paging: str = "keyset",
    stamp_format: str = "pega",
    extended_timeout: bool = True,
) -> dict[str, Any]:
    """The body of one data view request: the mapped fields, sorted on the key, from ``cursor``
    (keyset: key greater than ``cursor.after``, page 1; page_number: page ``cursor.number``), and
    changed at or after ``since`` (inclusive)."""
    conditions: dict[str, Any] = {}
    if since is not None:
        conditions["F1"] = {
            "lhs": {"field": fields.updated},
            "comparator": "GTE",
            "rhs": {"value": format_stamp(since, stamp_format)},
        }
    if paging == "keyset" and cursor.after is not None:
        conditions["F2"] = {
            "lhs": {"field": fields.id},
            "comparator": "GT",
            "rhs": {"value": cursor.after},
        }
    query: dict[str, Any] = {
        "select": [{"field": f} for f in fields.select],
        "sortBy": [{"field": fields.id, "type": "ASC"}],
    }
    if conditions:
        query["filter"] = {"filterConditions": conditions, "logic": " AND ".join(conditions)}
    number = 1 if paging == "keyset" else cursor.number
    body: dict[str, Any] = {"query": query, "paging": {"pageNumber": number, "pageSize": page_size}}
    if extended_timeout:
        body["useExtendedTimeout"] = True
    return body


def next_cursor(
    page: Mapping[str, Any], cursor: Cursor, fields: FieldMap, asked: int
) -> Cursor | None:
    """The cursor after ``page``, or None when it was the last: ``hasMoreResults`` when Pega sends
    it, else a page shorter than the page size it applied."""
    rows = page["data"]
    if not rows:
        return None
    more = page.get("hasMoreResults")
    if isinstance(more, bool):
        if not more:
            return None
    else:
        size = page.get("pageSize")
        size = size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else asked
        if len(rows) < size:
            return None
    last = _get(rows[-1], fields.id) if isinstance(rows[-1], Mapping) else None
    if not isinstance(last, str) or not last:
        raise MalformedResponse(f"Pega sent an operator without {fields.id}")
    return Cursor(cursor.number + 1, last)


# -- the plugin -------------------------------------------------------------------------------------


class PegaAdapter:
    """The Pega plugin (product ``pega``). ``clock`` (monotonic seconds) times token expiry;
    ``transport`` is httpx's, for tests."""

    name = NAME

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._clock = clock
        self._transport = transport

    def __repr__(self) -> str:
        return "PegaAdapter()"

    def client(self, settings: Mapping[str, Any]) -> Client:
        """A client for one run (one connection pool); close it when the run ends."""
        return Client(
            str(settings["base_url"]),
            str(settings.get("client_id") or ""),
            settings.get("client_secret") or "",
            context_root=str(settings.get("context_root") or "prweb"),
            app_alias=str(settings.get("app_alias") or ""),
            timeout=float(settings.get("timeout") or 60),
            clock=self._clock,
            transport=self._transport,
        )

    @hookimpl
    def seatgate_adapter_info(self) -> AdapterInfo:
        return AdapterInfo(
            name=NAME,
            products=PRODUCTS,
            version=VERSION,
            features=FEATURES,
            config_schema=CONFIG_SCHEMA,
            example_config=EXAMPLE_CONFIG,
            supports_cursor=True,
            page_size=MAX_PAGE,
            lookback_seconds=LOOKBACK_SECONDS,
            description="Pega operators from a DX API v2 data view (D_pxOperatorsList by "
            "default) on httpx; roles are access groups",
        )

    @hookimpl
    def seatgate_check_connection(
        self, product: str, settings: Mapping[str, Any], ctx: RequestContext
    ) -> bool:
        _check_product(product)
        fields, view, _ = check_settings(settings)
        with self.client(settings) as client:
            client.permission = READ_PERMISSION.format(view=view)
            body = query_body(
                fields, Cursor(1, None), since=None, page_size=1, paging="page_number"
            )
            body["query"]["select"] = [{"field": fields.id}]
            client.list_data_view(ctx, view, body)
        return True

    @hookimpl
    def seatgate_pull_users(
        self,
        product: str,
        settings: Mapping[str, Any],
        since: dt.datetime | None,
        ctx: RequestContext,
    ) -> Iterator[UserPage]:
        _check_product(product)
        fields, view, size = check_settings(settings)
        return self._pull(settings, fields, view, size, since, ctx)

    def _pull(
        self,
        settings: Mapping[str, Any],
        fields: FieldMap,
        view: str,
        size: int,
        since: dt.datetime | None,
        ctx: RequestContext,
    ) -> Iterator[UserPage]:
        paging = str(settings.get("paging") or "keyset")
        body = functools.partial(
            query_body,
            fields,
            since=since,
            page_size=size,
            paging=paging,
            stamp_format=str(settings.get("stamp_format") or "pega"),
            extended_timeout=bool(settings.get("extended_timeout", True)),
        )
        with self.client(settings) as client:
            client.permission = READ_PERMISSION.format(view=view)

            def fetch(cursor: Cursor) -> tuple[list[Any], Cursor | None]:
                page = client.list_data_view(ctx, view, body(cursor))
                rows: list[Any] = page["data"]
                if paging == "keyset" and cursor.after is not None and rows:
                    first = _get(rows[0], fields.id) if isinstance(rows[0], Mapping) else None
                    if first == cursor.after:
                        raise MalformedResponse(
                            f"Pega returned {fields.id} {cursor.after} again after it: the data "
                            "view ignores the filter on its key; set paging = page_number"
                        )
                return rows, next_cursor(page, cursor, fields, size)

            # kit.pages is a generator (typed as an Iterator): closing() it stops its worker
            # before the client closes, when the pull is closed early.
            rows_pages = cast(
                Generator[list[Any], None, None],
                kit.pages(
                    fetch, Cursor(1, None), name="pega-pull", crm="Pega", key=lambda c: c.after
                ),
            )
            with contextlib.closing(rows_pages):
                for rows in rows_pages:
                    if rows:
                        yield UserPage(users=[to_user(row, fields) for row in rows])

    @hookimpl
    def seatgate_install(self, account: str, product: str, settings: Mapping[str, Any]) -> bool:
        _check_product(product)
        view = str(settings.get("install_data_view", DEFAULT_INSTALL_DATA_VIEW) or "")
        ctx = RequestContext()
        if not view:  # no marker wanted: the install only checks that Pega answers
            return self.seatgate_check_connection(product, settings, ctx)
        key = _installation_key(account, product)
        with self.client(settings) as client:
            client.permission = WRITE_PERMISSION.format(view=view)
            record = {INSTALL_KEY: key, "Account": account, "Product": product}
            try:
                saved = client.save_record(ctx, view, record)
            except (AuthFailed, QuotaExhausted, TransientError):
                raise
            except AdapterError:
                raise _write_failed("save the installation record", view, client) from None
            echoed = saved.get("data")
            if isinstance(echoed, Mapping) and echoed.get(INSTALL_KEY) not in (None, key):
                raise AdapterError(
                    f"Pega saved another record than the installation {key} in {view}: check "
                    f"the savable data page's save plan ({INSTALL_KEY} is its key)"
                )
        return True

    @hookimpl
    def seatgate_uninstall(self, account: str, product: str, settings: Mapping[str, Any]) -> bool:
        _check_product(product)
        view = str(settings.get("install_data_view", DEFAULT_INSTALL_DATA_VIEW) or "")
        if not view:
            return True
        ctx = RequestContext()
        with self.client(settings) as client:
            client.permission = WRITE_PERMISSION.format(view=view)
            try:
                # False (404): already gone; uninstall is idempotent.
                client.delete_record(ctx, view, {INSTALL_KEY: _installation_key(account, product)})
            except (AuthFailed, QuotaExhausted, TransientError):
                raise
            except AdapterError:
                raise _write_failed("delete the installation record", view, client) from None
        return True


def _installation_key(account: str, product: str) -> str:
    return f"{product}.{account}"


def _write_failed(what: str, view: str, client: Client) -> AdapterError:
    """A refused write (not auth, not transient) as one line naming what the write needs."""
    return AdapterError(
        f"Pega did not {what}{client.said()}: the integration user needs "
        f"{WRITE_PERMISSION.format(view=view)}, and {view} a save plan"
    )


def _check_product(product: str) -> None:
    if product != PRODUCT:
        raise BadInput("product", product, PRODUCTS)


plugin = PegaAdapter()
