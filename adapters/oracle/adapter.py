"""The Oracle B2C Service adapter (product ``oracle_sc``): staff accounts through ROQL on the Connect
REST API v1.4, with a small typed client of its own on httpx.

Oracle ships no maintained Python client (the community ``osvc_python`` hard-codes
``https://{site}.custhelp.com``), so :class:`Client` is built on the plugin kit's
:class:`~seatgate.core.plugins.kit.HttpClient`: timeouts, one connection pool per run, every
request under the run's retry policy.

**What it pulls.** Staff members are ``Account`` objects. The thin ``accounts`` collection gives
only ``id`` and ``lookupName`` and would cost one more request per user, so the adapter reads them
with ROQL tabular queries (``GET .../queryResults/?query=...``), which return the columns asked
for as rows of strings::

    SELECT ID, UpdatedTime, Login, LookupName, Emails.Address, Attributes.PermanentlyDisabled,
           Attributes.AccountLocked, Profile.Name, StaffGroup.Name
    FROM Account WHERE (Emails.AddressType.ID = 0) AND ID > 40000 ORDER BY ID LIMIT 20000

- Paging is keyset on ``ID`` (``ID >`` the last one read, ``ORDER BY ID``), never ``OFFSET``: a
  staff member saved during the pull keeps its ID, so nobody shifts into a page already read.
- A page holds at most 20,000 rows, the most a queryResults request returns from the operational
  database; the server cuts a larger result to that silently. So the first request also carries
  ``SELECT COUNT(ID)`` over the same filter (queryResults runs several semicolon-separated queries
  in one request): the pull then knows when its last page has come and spends no request on an
  empty page. With ``count_first = false`` it stops at the first empty page instead.
- Incremental pulls add ``UpdatedTime >= 'since'`` (inclusive: a change stamped on the cursor is
  read again, never lost). ``OSvC-CREST-Time-UTC: yes`` makes the stamps come back in UTC.
- A staff account is inactive when ``Attributes.PermanentlyDisabled`` or
  ``Attributes.AccountLocked`` is true; its roles are its profile and staff group names, read in
  the same rows at no extra request.

**Every call** sends ``OSvC-CREST-Application-Context`` (required from v1.4; at most 40
characters), echoes ``osvc-crest-api-access-token`` from the previous answer (Oracle's QoS token),
and waits the ``osvc-crest-next-request-after`` milliseconds the previous answer asked for, through
the retry policy's injectable sleep. Auth is HTTP Basic, ``Authorization: Session <id>``, a bearer
token, or an OAuth client-credentials token from the site's identity domain (refreshed once on a
401).

**Confirmed and assumed** (reference/crm-apis.md section 4: [S] sourced, [I] inferred):

- [S] ``queryResults`` and its answer: ``items`` of ``{tableName, count, columnNames, rows}``, every
  row value a string; several queries per request; 20,000 rows at most per request (Oracle's "Run
  ROQL Tabular Queries"); the Application-Context, api-access-token and next-request-after
  headers (Oracle's "Custom Headers"); Basic, Session and Bearer auth; ``ID``, ``LookupName`` and
  ``UpdatedTime`` on accounts.
- [I] the column names ``Login``, ``Emails.Address`` (with ``Emails.AddressType.ID = 0`` for the
  primary address), ``Attributes.PermanentlyDisabled``, ``Attributes.AccountLocked``,
  ``Profile.Name``, ``StaffGroup.Name``; ROQL's ``COUNT()``; ``LIMIT`` with ``ORDER BY``; booleans
  as ``"1"``/``"0"``; ``OSvC-CREST-Time-UTC``; the problem-detail error body; 429 under load; the
  OAuth client-credentials grant. Every assumed column is a setting (``email_field``,
  ``email_filter``, ``name_field``, ``inactive_fields``, ``role_fields``), ``count_first`` turns
  ``COUNT()`` off, and columns are read by position, not by the names the answer gives them.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import attrs
import httpx

from seatgate.adapters.oracle.declaration import FEATURES, NAME, PRODUCT, PRODUCTS
from seatgate.core.plugins import (
    AdapterError,
    AdapterInfo,
    AuthFailed,
    BadInput,
    ConfigSchema,
    ExternalUser,
    Field,
    MalformedResponse,
    RateLimited,
    RequestContext,
    TransientError,
    UserPage,
    hookimpl,
    kit,
    require_tls,
    reveal,
    timeout_field,
)

VERSION = "0.1.0"
CRM = "Oracle B2C Service"
MAX_ROWS = 20_000  # [S] the most one queryResults request returns from the operational database
APP_CONTEXT_HEADER = "OSvC-CREST-Application-Context"
APP_CONTEXT_MAX = 40  # [S] a longer value is answered 400
QOS_TOKEN_HEADER = "osvc-crest-api-access-token"
UTC_HEADER = "OSvC-CREST-Time-UTC"  # [I] row times in UTC rather than the site's time zone
DEFAULT_APP_CONTEXT = "seatgate user sync"
DEFAULT_INSTALL_OBJECT = "SeatGate.Installation"
API_VERSIONS = ("v1.4", "latest")

# An incremental pull re-reads the 10 minutes before its cursor. UpdatedTime is the app server's
# clock when a save starts [I]; a save that commits late (a long Connect for PHP or import
# transaction) carries an older stamp than changes already read. The re-read costs no request:
# the server filters on UpdatedTime, and ten minutes of changes fit in the page that is read anyway.
LOOKBACK_SECONDS = 600

# What a 403 needs, in Oracle's own names (profile permissions, Administration tab) [I].
READ_PERMISSION = (
    "a profile with Account Authentication > Public SOAP API (Connect REST) and read access "
    "to staff accounts"
)
AUTH_SETS: dict[str, tuple[str, ...]] = {
    "basic": ("username", "password"),
    "session": ("session_id",),
    "bearer": ("access_token",),
    "oauth": ("token_url", "client_id", "client_secret"),
}
CREDENTIALS = {
    "basic": "username and password (a staff account allowed to use the API)",
    "session": "session_id (a session of a staff account; sessions expire)",
    "bearer": "access_token (bearer tokens expire; consider the oauth settings)",
    "oauth": "token_url, client_id and client_secret",
}

CONFIG_SCHEMA = ConfigSchema(
    fields=(
        Field(
            "base_url",
            required=True,
            description="the site interface, e.g. https://mysite.custhelp.com (plain http only "
            "on 127.0.0.1/localhost: the sandbox)",
        ),
        Field(
            "api_version",
            default="v1.4",
            choices=API_VERSIONS,
            description="Connect REST version in the path",
        ),
        Field(
            "application_context",
            default=DEFAULT_APP_CONTEXT,
            description="OSvC-CREST-Application-Context sent on every call (1 to 40 characters; "
            "shows in the site's logs)",
        ),
        Field("username", description="staff account login (HTTP Basic, with password)"),
        Field("password", secret=True, description="its password"),
        Field("session_id", secret=True, description="a staff session id (Authorization: Session)"),
        Field("access_token", secret=True, description="a bearer token (Authorization: Bearer)"),
        Field(
            "token_url",
            description="OAuth token endpoint of the site's identity domain (client credentials)",
        ),
        Field("client_id", description="OAuth client id"),
        Field("client_secret", secret=True, description="OAuth client secret"),
        Field("scope", description="OAuth scope to ask for, if the identity domain needs one"),
        timeout_field(30),
        Field(
            "page_size",
            type="integer",
            default=MAX_ROWS,
            minimum=1,
            maximum=MAX_ROWS,
            description=f"rows per request, at most {MAX_ROWS:,} (queryResults' own maximum)",
        ),
        Field(
            "count_first",
            type="boolean",
            default=True,
            description="ask COUNT(ID) with the first page, so the last page is known and no "
            "request is spent on an empty one; false: stop at the first empty page",
        ),
        Field(
            "user_filter",
            default="",
            description="a ROQL condition the staff accounts must meet, e.g. "
            "\"StaffGroup.Name = 'Contact Center'\" (no ORDER BY, LIMIT or ';')",
        ),
        Field("email_field", default="Emails.Address", description="the column holding the email"),
        Field(
            "email_filter",
            default="Emails.AddressType.ID = 0",
            description="the condition that picks one address per account (the primary); "
            "empty: none",
        ),
        Field("name_field", default="LookupName", description="the column holding the name"),
        Field(
            "inactive_fields",
            type="list",
            default=["Attributes.PermanentlyDisabled", "Attributes.AccountLocked"],
            description="boolean columns; an account with any of them true is inactive",
        ),
        Field(
            "role_fields",
            type="list",
            default=["Profile.Name", "StaffGroup.Name"],
            description="columns whose values are the account's roles (activated_roles match them)",
        ),
        Field(
            "install_object",
            default=DEFAULT_INSTALL_OBJECT,
            description="custom object (Package.Object, text fields InstallKey, AccountName, "
            "Product) where install records the installation",
        ),
    ),
    auth=AUTH_SETS,
)

EXAMPLE_CONFIG: dict[str, Any] = {
    "base_url": "https://mysite.custhelp.com",
    "username": "seatgate.integration",
    "password": "${ORACLE_SC_PASSWORD}",
    "application_context": "seatgate user sync",
    "user_filter": "StaffGroup.Name = 'Contact Center'",
}

_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_OBJECT = re.compile(r"[A-Za-z][A-Za-z0-9_]*\.[A-Za-z][A-Za-z0-9_]*")
_QUOTED = re.compile(r"'(?:[^'\\]|\\.|'')*'")
_PAGING_WORDS = re.compile(r"\b(order\s+by|limit|offset)\b|;", re.IGNORECASE)
_TRUE = frozenset({"1", "true", "yes", "y"})
_FALSE = frozenset({"0", "false", "no", "n", ""})


# ---------------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------------


@attrs.frozen
class Columns:
    """The columns a page asks for, read back by position (the answer's ``columnNames`` are not
    relied on: Oracle may name ``Profile.Name`` and ``StaffGroup.Name`` both ``Name``)."""

    name: str = "LookupName"
    email: str = "Emails.Address"
    inactive: tuple[str, ...] = ("Attributes.PermanentlyDisabled", "Attributes.AccountLocked")
    roles: tuple[str, ...] = ("Profile.Name", "StaffGroup.Name")

    # ID, UpdatedTime: [S]; Login: [S] in Oracle's own example rows.
    FIXED = ("ID", "UpdatedTime", "Login")

    def select(self) -> tuple[str, ...]:
        return (*self.FIXED, self.name, self.email, *self.inactive, *self.roles)

    @property
    def inactive_slice(self) -> slice:
        return slice(5, 5 + len(self.inactive))

    @property
    def roles_slice(self) -> slice:
        start = 5 + len(self.inactive)
        return slice(start, start + len(self.roles))


@attrs.frozen
class Options:
    """Validated settings of one connector, as the client and the queries use them."""

    base_url: str
    api_path: str
    application_context: str
    auth: str  # basic | session | bearer | oauth
    secrets: Mapping[str, Any] = attrs.field(repr=False)
    timeout: float = 30.0
    page_size: int = MAX_ROWS
    count_first: bool = True
    user_filter: str = ""
    email_filter: str = ""
    columns: Columns = attrs.field(factory=Columns)
    install_object: str = DEFAULT_INSTALL_OBJECT
    token_url: str = ""
    scope: str = ""


def options(settings: Mapping[str, Any]) -> Options:
    """:class:`Options` from validated settings. Raises :class:`BadInput` (one line, naming the
    setting and what is accepted) for what the schema cannot check."""
    base_url = require_tls(
        str(settings.get("base_url") or ""), "base_url", "https://mysite.custhelp.com"
    )
    context = str(settings.get("application_context") or DEFAULT_APP_CONTEXT)
    if (
        not 1 <= len(context) <= APP_CONTEXT_MAX
        or not context.isascii()
        or not context.isprintable()
    ):
        raise BadInput(
            "config application_context",
            context,
            f"1 to {APP_CONTEXT_MAX} printable ASCII characters (Oracle answers 400 otherwise)",
        )
    given = [mode for mode, keys in AUTH_SETS.items() if all(settings.get(k) for k in keys)]
    if len(given) != 1:
        raise BadInput(
            "config auth",
            " and ".join(given) or "none",
            "exactly one of: " + "; ".join(f"{m} ({', '.join(k)})" for m, k in AUTH_SETS.items()),
        )
    page_size = settings.get("page_size", MAX_ROWS)
    if not isinstance(page_size, int) or not 1 <= page_size <= MAX_ROWS:
        raise BadInput("config page_size", page_size, f"1 to {MAX_ROWS}")
    timeout = settings.get("timeout", 30)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
        raise BadInput("config timeout", timeout, "a number of seconds above 0")
    columns = Columns(
        name=_path(settings, "name_field", "LookupName"),
        email=_path(settings, "email_field", "Emails.Address"),
        inactive=_paths(settings, "inactive_fields"),
        roles=_paths(settings, "role_fields"),
    )
    user_filter = str(settings.get("user_filter") or "").strip()
    if _PAGING_WORDS.search(_QUOTED.sub("''", user_filter)):
        raise BadInput(
            "config user_filter",
            user_filter,
            "a ROQL condition without ORDER BY, LIMIT, OFFSET or ';' (the pull pages by ID)",
        )
    install_object = str(settings.get("install_object") or DEFAULT_INSTALL_OBJECT)
    if not _OBJECT.fullmatch(install_object):
        raise BadInput("config install_object", install_object, "a custom object as Package.Object")
    token_url = str(settings.get("token_url") or "")
    if given[0] == "oauth":
        token_url = require_tls(
            token_url, "token_url", "https://idcs-xyz.identity.oraclecloud.com/oauth2/v1/token"
        )
    version = str(settings.get("api_version") or "v1.4")
    return Options(
        base_url=base_url,
        api_path=f"/services/rest/connect/{version}",
        application_context=context,
        auth=given[0],
        secrets={k: settings[k] for k in AUTH_SETS[given[0]]},
        timeout=float(timeout),
        page_size=page_size,
        count_first=bool(settings.get("count_first", True)),
        user_filter=user_filter,
        email_filter=str(settings.get("email_filter") or "").strip(),
        columns=columns,
        install_object=install_object,
        token_url=token_url,
        scope=str(settings.get("scope") or ""),
    )


def _path(settings: Mapping[str, Any], key: str, default: str) -> str:
    value = str(settings.get(key) or default)
    if not _PATH.fullmatch(value):
        raise BadInput(f"config {key}", value, "a ROQL field such as Emails.Address")
    return value


def _paths(settings: Mapping[str, Any], key: str) -> tuple[str, ...]:
    default = next(f.default for f in CONFIG_SCHEMA.fields if f.name == key)
    values = settings.get(key)
    values = default if values is None else values
    for value in values:
        if not isinstance(value, str) or not _PATH.fullmatch(value):
            raise BadInput(f"config {key}", value, "a list of ROQL fields such as Profile.Name")
    return tuple(values)


# ---------------------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------------------


class Client(kit.HttpClient):
    """Connect REST for one run: the required headers, the site's throttle hint and QoS token,
    and the chosen auth.

    :param opts: the connector's :class:`Options`.
    :param permission: what a 403 answer says the integration user needs.
    :param transport: an httpx transport (tests); the network by default.
    """

    crm = CRM

    def __init__(
        self,
        opts: Options,
        *,
        permission: str = READ_PERMISSION,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            opts.base_url,
            timeout=opts.timeout,
            headers={
                APP_CONTEXT_HEADER: opts.application_context,
                UTC_HEADER: "yes",
                "Accept": "application/json",
            },
            transport=transport,
        )
        self.opts = opts
        self.permission = permission
        self.credentials = CREDENTIALS[opts.auth]
        self.qos_token: str | None = None
        self._token: str | None = None  # the OAuth access token of this run
        self._owed = 0.0  # seconds the last answer asked to wait before the next call
        self._sleep: Callable[[float], None] | None = None
        self.refused: int | None = None  # the status of the last error answer, if any
        self.refused_detail = ""  # and Oracle's words for it

    # -- what the kit asks of a vendor client ----------------------------------------------------
    def auth_headers(self) -> dict[str, str]:
        s, headers = self.opts.secrets, {}
        if self.opts.auth == "basic":
            pair = f"{reveal(s['username'])}:{reveal(s['password'])}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        elif self.opts.auth == "session":
            headers["Authorization"] = "Session " + reveal(s["session_id"])
        elif self.opts.auth == "bearer":
            headers["Authorization"] = "Bearer " + reveal(s["access_token"])
        elif self._token is not None:
            headers["Authorization"] = "Bearer " + self._token
        if self.qos_token:
            # [S] "Always pass the token from the response of the previous API call".
            headers[QOS_TOKEN_HEADER] = self.qos_token
        return headers

    @property
    def can_refresh(self) -> bool:
        return self.opts.auth == "oauth"

    def refresh(self) -> None:
        """A new OAuth access token by the client-credentials grant [I]. Refused client
        credentials are :class:`AuthFailed` (never retried)."""
        s = self.opts.secrets
        form = {"grant_type": "client_credentials"}
        if self.opts.scope:
            form["scope"] = self.opts.scope
        try:
            response = self._http.post(
                self.opts.token_url,
                data=form,
                auth=(reveal(s["client_id"]), reveal(s["client_secret"])),
            )
        except httpx.TimeoutException:
            raise TransientError(f"{CRM}'s identity domain did not answer in time") from None
        except httpx.TransportError as exc:
            raise TransientError(
                f"could not reach {CRM}'s identity domain ({type(exc).__name__}); check token_url"
            ) from None
        if response.status_code in (400, 401):
            raise AuthFailed(
                f"{CRM}'s identity domain refused the client credentials "
                f"({response.status_code}): check token_url, client_id, client_secret and scope"
            )
        if not response.is_success:
            raise kit.error_for_status(
                response.status_code, crm=f"{CRM}'s identity domain", can_refresh=False
            )
        try:
            token = response.json()["access_token"]
        except (ValueError, KeyError, TypeError):
            token = None
        if not isinstance(token, str) or not token:
            raise MalformedResponse(f"{CRM}'s identity domain answered without an access_token")
        self._token = token

    def error_detail(self, response: httpx.Response) -> str:
        """Oracle's problem detail [I]: ``o:errorCode`` and ``detail`` (or ``title``)."""
        self.refused = response.status_code
        try:
            body = response.json()
        except ValueError:
            return ""
        if not isinstance(body, dict):
            return ""
        code, words = body.get("o:errorCode"), body.get("detail") or body.get("title")
        text = ": ".join(str(p) for p in (code, words) if p)
        self.refused_detail = " ".join(text.split())[:200]
        return self.refused_detail

    def throttle(self, response: httpx.Response) -> None:
        super().throttle(response)
        self._owed = self.last_wait or 0.0
        token = response.headers.get(QOS_TOKEN_HEADER)
        if token:
            self.qos_token = token

    # -- requests --------------------------------------------------------------------------------
    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request, first waiting what the previous answer asked for
        (``osvc-crest-next-request-after``, [S]: "must elapse before you make the subsequent REST
        API call")."""
        owed, self._owed = self._owed, 0.0
        if owed > 0 and self._sleep is not None:
            self._sleep(owed)
        self.refused, self.refused_detail = None, ""
        try:
            return super().send(method, path, **kwargs)
        except RateLimited as exc:
            if exc.retry_after is not None:
                self._owed = 0.0  # the retry policy waits this one; waiting twice would double it
            raise
        except MalformedResponse:
            if self.refused == 400:
                said = f": {self.refused_detail}" if self.refused_detail else ""
                raise AdapterError(
                    f"{CRM} refused the request (400{said}): check user_filter and the field "
                    "settings (email_field, email_filter, name_field, inactive_fields, role_fields)"
                ) from None
            raise

    def request(self, ctx: RequestContext, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self._sleep = ctx.policy.sleep
        if self.can_refresh and self._token is None:
            ctx.call(self.refresh)  # the run's first token, under the retry policy
        return super().request(ctx, method, path, **kwargs)

    def query(self, ctx: RequestContext, queries: Sequence[str]) -> list[dict[str, Any]]:
        """The result sets of ``queries`` (ROQL, run in one request), in order: each a
        ``{tableName, count, columnNames, rows}`` whose ``count`` matches its rows."""
        body = self.json(
            ctx, "GET", f"{self.opts.api_path}/queryResults", params={"query": ";".join(queries)}
        )
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list) or len(items) != len(queries):
            raise MalformedResponse(
                f"{CRM} sent a queryResults answer without one result set per query"
            )
        for item in items:
            rows = item.get("rows") if isinstance(item, dict) else None
            if not isinstance(rows, list) or not isinstance(item.get("columnNames"), list):
                raise MalformedResponse(f"{CRM} sent a result set without columnNames and rows")
            if item.get("count") != len(rows):
                raise MalformedResponse(
                    f"{CRM} sent a result set of {len(rows)} rows that says it has "
                    f"{item.get('count')}: the page was cut short"
                )
        return items


# ---------------------------------------------------------------------------------------------------
# Queries and mapping
# ---------------------------------------------------------------------------------------------------


def roql_stamp(value: dt.datetime) -> str:
    """``since`` as a ROQL literal, to the second below: UpdatedTime has one-second resolution,
    so flooring keeps the boundary inclusive."""
    # isoformat, not strftime: %Y does not pad a year below 1000 to four digits.
    return value.astimezone(dt.UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def conditions(opts: Options, since: dt.datetime | None) -> list[str]:
    """The filter every page and the count share."""
    out = []
    if opts.user_filter:
        out.append(f"({opts.user_filter})")
    if opts.email_filter:
        out.append(f"({opts.email_filter})")
    if since is not None:
        out.append(f"UpdatedTime >= '{roql_stamp(since)}'")
    return out


def count_query(opts: Options, since: dt.datetime | None) -> str:
    where = conditions(opts, since)
    return "SELECT COUNT(ID) FROM Account" + (f" WHERE {' AND '.join(where)}" if where else "")


def page_query(opts: Options, since: dt.datetime | None, after: int, limit: int) -> str:
    """One keyset page: the accounts after ID ``after``, in ID order."""
    where = " AND ".join([*conditions(opts, since), f"ID > {after}"])
    select = ", ".join(opts.columns.select())
    return f"SELECT {select} FROM Account WHERE {where} ORDER BY ID LIMIT {limit}"


def parse_stamp(value: Any) -> dt.datetime | None:
    """A row's time (``2024-05-01T10:00:00.000Z``, or without a zone: UTC, which the
    ``OSvC-CREST-Time-UTC`` header asks for) as an aware UTC datetime; None when empty.
    Raises ``ValueError`` for a time that is not a string or does not parse."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"a time that is not a string ({type(value).__name__})")
    try:
        stamp = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"a time that does not parse: {value[:40]!r}") from None
    zone = stamp.tzinfo
    if zone is dt.UTC:
        return stamp
    return stamp.replace(tzinfo=dt.UTC) if zone is None else stamp.astimezone(dt.UTC)


def parse_flag(value: Any, column: str) -> bool:
    """A boolean column as ROQL returns it: a string (``"1"``/``"0"``, or ``"true"``/``"false"``
    [I]); a null is false. Raises ``ValueError`` for anything else."""
    if value == "0" or value is None:
        return False
    if value == "1":
        return True
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{column} = {str(value)[:20]!r}, not a boolean")


def to_users(rows: Sequence[Any], columns: Columns, after: int) -> tuple[list[ExternalUser], int]:
    """Rows of one page as users, and the last ID read. Rows come in ID order above ``after``; a
    row repeating the previous ID (an account matched twice through a list field such as
    ``Emails``) is dropped.

    :raises MalformedResponse: the page is not what was asked, and the run fails: a row that is
        not a list of the columns asked for, an ID that is not a number (it drives the keyset
        paging, and without it the account can be neither quarantined nor counted as seen), IDs
        out of order. A value of one account that cannot be read (a flag that is no boolean, a
        time that does not parse, a name, email or role that is no text) is that account's
        alone: it comes back with its ID, its email when readable and ``problem``, and the core
        quarantines it (``malformed_record``).

    This is the pull's hot loop (100,000 rows a full pull), hence the local names.
    """
    width = len(columns.FIXED) + 2 + len(columns.inactive) + len(columns.roles)
    flag_at = list(zip(range(columns.inactive_slice.start, width), columns.inactive, strict=False))
    role_at = list(range(columns.roles_slice.start, columns.roles_slice.stop))
    users: list[ExternalUser] = []
    append, flag, stamp, user = users.append, parse_flag, parse_stamp, ExternalUser
    last = after
    for row in rows:
        if type(row) is not list or len(row) != width:
            raise MalformedResponse(f"{CRM} sent a row without the {width} columns asked for")
        try:
            number = int(row[0])
        except (TypeError, ValueError):
            raise MalformedResponse(f"{CRM} sent an account ID that is not a number") from None
        if number <= last:
            if number == last and users:
                continue
            raise MalformedResponse(f"{CRM} sent accounts out of ID order; the pull stops")
        last = number
        email, name = row[4], row[3]
        try:
            active = True
            for i, column in flag_at:
                if flag(row[i], column):
                    active = False
            roles: tuple[str, ...] = ()
            for i in role_at:
                role = row[i]
                if role and role not in roles:
                    if type(role) is not str:
                        raise ValueError(f"a role that is no text ({type(role).__name__})")
                    roles += (role,)
            if email is not None and type(email) is not str:
                email = None
                raise ValueError("an email that is no text")
            if name is not None and type(name) is not str:
                raise ValueError("a name that is no text")
            try:
                modified_at = stamp(row[1])
            except ValueError as exc:
                raise ValueError(f"UpdatedTime: {exc}") from None
        except ValueError as exc:
            append(user(external_id=str(number), email=email or None, problem=str(exc)))
            continue
        append(
            user(
                external_id=str(number),
                email=email or None,
                name=name or "",
                active=active,
                roles=roles,
                modified_at=modified_at,
                raw={"login": row[2]},
            )
        )
    return users, last


@attrs.frozen
class _Cursor:
    after: int  # the last ID read: the next page starts above it
    remaining: int | None  # accounts the count says are still to come; None: not counted
    first: bool = False


# ---------------------------------------------------------------------------------------------------
# The plugin
# ---------------------------------------------------------------------------------------------------


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _check_product(product: str) -> None:
    if product != PRODUCT:
        raise BadInput("product", product, PRODUCTS)


def install_key(account: str, product: str) -> str:
    """The installation's key in the custom object: readable, safe inside a ROQL literal, and
    distinct for accounts that differ only in characters the literal cannot hold."""
    safe = re.sub(r"[^A-Za-z0-9_.@-]", "_", account)
    if safe != account:
        safe += "-" + hashlib.blake2s(account.encode(), digest_size=4).hexdigest()
    return f"seatgate.{product}.{safe}"[:255]


class OracleAdapter:
    """The Oracle B2C Service plugin (product ``oracle_sc``)."""

    name = NAME

    def __repr__(self) -> str:
        return "OracleAdapter()"

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
            page_size=MAX_ROWS,
            lookback_seconds=LOOKBACK_SECONDS,
            description="Oracle B2C Service staff accounts via ROQL queryResults (Connect REST "
            "v1.4, httpx); roles are profile and staff group names",
        )

    @hookimpl
    def seatgate_check_connection(
        self, product: str, settings: Mapping[str, Any], ctx: RequestContext
    ) -> bool:
        """Runs the pull's own page query for one row, so a misspelt field or filter shows now."""
        _check_product(product)
        opts = options(settings)
        with Client(opts) as client:
            client.query(ctx, [page_query(opts, None, 0, 1)])
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
        # Built before the generator, so a bad setting fails at the call rather than mid-sync.
        return _pull(options(settings), _utc(since), ctx)

    @hookimpl
    def seatgate_install(self, account: str, product: str, settings: Mapping[str, Any]) -> bool:
        """Records the installation in the custom object ``install_object``; a second install
        finds it and writes nothing."""
        _check_product(product)
        opts = options(settings)
        key = install_key(account, product)
        ctx = RequestContext()
        with _install_client(opts) as client:
            if _installation_ids(client, ctx, key):
                return True
            response = client.request(
                ctx,
                "POST",
                f"{opts.api_path}/{opts.install_object}",
                json={"InstallKey": key, "AccountName": account[:255], "Product": product},
            )
            try:
                created = response.json()
            except ValueError:
                created = None
            if not isinstance(created, dict) or "id" not in created:
                raise MalformedResponse(
                    f"{CRM} answered the installation record's creation without its id"
                )
        return True

    @hookimpl
    def seatgate_uninstall(self, account: str, product: str, settings: Mapping[str, Any]) -> bool:
        """Deletes the installation's records; none left means already uninstalled."""
        _check_product(product)
        opts = options(settings)
        ctx = RequestContext()
        with _install_client(opts) as client:
            for record in _installation_ids(client, ctx, install_key(account, product)):
                with _gone_is_fine(client):
                    client.request(ctx, "DELETE", f"{opts.api_path}/{opts.install_object}/{record}")
        return True


def _install_client(opts: Options) -> Client:
    return Client(
        opts,
        permission=f"read, create and delete on the custom object {opts.install_object} "
        "(profile > Permissions > Custom Objects)",
    )


def _installation_ids(client: Client, ctx: RequestContext, key: str) -> list[int]:
    roql = f"SELECT ID FROM {client.opts.install_object} WHERE InstallKey = '{key}'"
    try:
        (result,) = client.query(ctx, [roql])
    except AdapterError as exc:
        if client.refused in (400, 404):
            raise AdapterError(
                f"{CRM} has no custom object {client.opts.install_object} with a text field "
                "InstallKey: deploy it (Object Designer) or set install_object"
            ) from None
        raise exc
    try:
        return [int(row[0]) for row in result["rows"]]
    except (TypeError, ValueError, IndexError):
        raise MalformedResponse(
            f"{CRM} sent an installation record ID that is not a number"
        ) from None


@contextlib.contextmanager
def _gone_is_fine(client: Client) -> Iterator[None]:
    """A 404 on delete: the record is already gone, which is what uninstall wants."""
    try:
        yield
    except MalformedResponse:
        if client.refused != 404:
            raise


def _pull(opts: Options, since: dt.datetime | None, ctx: RequestContext) -> Iterator[UserPage]:
    with Client(opts) as client:

        def fetch(cursor: _Cursor) -> tuple[list[Any], _Cursor | None]:
            queries = [page_query(opts, since, cursor.after, opts.page_size)]
            counted = cursor.first and opts.count_first
            if counted:
                queries.insert(0, count_query(opts, since))
            items = client.query(ctx, queries)
            rows = items[-1]["rows"]
            remaining = cursor.remaining
            if counted:
                remaining = _count(items[0])
            if remaining is not None:
                # COUNT(ID) counts accounts, and a page repeats an account once per address a
                # list field (Emails) matched: count the page's accounts, not its rows, or the
                # pull ends before the last accounts and a full sync deactivates them.
                remaining -= len({row[0] for row in rows if type(row) is list and row})
            if not rows or (remaining is not None and remaining <= 0):
                return rows, None
            last = rows[-1][0] if isinstance(rows[-1], list) and rows[-1] else None
            try:
                after = int(last)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise MalformedResponse(f"{CRM} sent an account ID that is not a number") from None
            return rows, _Cursor(after, remaining)

        after = 0
        # closing(): a pull closed early stops the read-ahead worker before the client closes.
        with contextlib.closing(
            kit.pages(
                fetch,
                _Cursor(0, None, first=True),
                name="oracle-pull",
                crm=CRM,
                key=lambda c: c.after,
            )
        ) as bodies:
            for rows in bodies:
                # Mapped here, in the caller's thread, while the worker reads the next page.
                users, after = to_users(rows, opts.columns, after)
                if users:
                    yield UserPage(users=users)


def _count(item: Mapping[str, Any]) -> int:
    try:
        (row,) = item["rows"]
        return int(row[0])
    except (TypeError, ValueError, KeyError):
        raise MalformedResponse(f"{CRM} sent a COUNT(ID) that is not one number") from None


plugin = OracleAdapter()
