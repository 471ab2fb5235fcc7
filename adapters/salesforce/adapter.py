"""The Salesforce adapter, serving two products: ``salesforce`` and ``salesforce_voice``.

Every call to the org goes through simple-salesforce (1.12): SOQL ``query``/``query_more`` on the
``User`` object for pulls, an SObject upsert/delete by external id for install/uninstall. What is
Salesforce's stays here (the logins, the SOQL, the field mapping, ``SystemModstamp``, the error
codes); the rest comes from the plugin kit (:mod:`seatgate.core.plugins.kit`): HTTP statuses as
seatgate's errors, ``Retry-After``, and the paged loop with read-ahead and the repeated-cursor guard.

Who is pulled, per product (each licence is its own set of seats):

* ``salesforce`` — the integration users: with ``namespace`` set, the holders of that managed
  package's licence (a ``UserPackageLicense`` semi-join), else every ``UserType = 'Standard'`` user.
* ``salesforce_voice`` — the users of the configured call centers (``CallCenterId IN (...)``) or of
  one permission set (an ``PermissionSetAssignment`` semi-join); with neither configured, every user
  assigned to any call center. SOQL refuses semi-joins under ``OR``, so the two are exclusive.

Roles for auto install: the profile name and the user role name (relationship fields), the
permission set names with ``read_permission_sets`` (a child subquery, in the same request), and
``package:<namespace>`` for the licence holders pulled by the ``salesforce`` product.

Incremental pulls filter ``SystemModstamp >= <since, floored to the second>``: inclusive, so a user
stamped on the boundary is never lost (SOQL compares datetimes to the second and its literals carry
no fraction). One caveat: granting or removing a permission set or a package licence does not move
``User.SystemModstamp``, so such a change shows at the next full pull. The core re-reads
:data:`LOOKBACK_SECONDS` before the cursor (a transaction commits its stamp late).

A lost query locator (``INVALID_QUERY_LOCATOR``: an org that binds locators to the session that
opened them, after a re-login; or a locator that expired) does not end the pull: the query is
asked again from the last record read, on the order the pull already uses (``ORDER BY
SystemModstamp, Id``: ``SystemModstamp >=`` that record's second), and the records already read are
skipped. It counts as one retry (``ctx.retries``).

Retries are the core's alone: simple-salesforce logs in again and repeats a 401
``INVALID_SESSION_ID`` up to three times by itself when it holds the login; the adapter takes that
login away from each client after it is built, so a 401 surfaces as :class:`TokenExpired` and
``ctx.call`` refreshes once (a new client, a new login). ``requests`` does not retry by default and
is left so. Pages are asked at 2000 records (``Sforce-Query-Options: batchSize=2000``), the most
Salesforce returns, one ``ctx.call`` per page.

Every request, logins included, passes the shared throttle of the host it goes to (the org's
instance, or the login server): a transport adapter on the session simple-salesforce is given
(:mod:`seatgate.core.plugins.transports`). A 429/503 ``Retry-After`` pauses the org for every run
on it, in this process or across a fleet; a spent daily limit (403 ``REQUEST_LIMIT_EXCEEDED``,
"TotalRequests") pauses it for an hour (:func:`wait_rule`).

Install writes the managed package's installation object (``Seatgate_Installation__c``, upserted by
external id) for the products that have the package (``managed_package`` among their features):
``salesforce`` only. ``salesforce_voice`` runs on the org's call centers: its install and uninstall
write nothing. A refused write is one line naming the permission.

Loopback hosts: simple-salesforce writes ``https://`` into every URL it builds. When the configured
login or instance URL is plain http on 127.0.0.1/localhost (the sandbox), the adapter's
``requests.Session`` rewrites those URLs back; real hosts keep TLS and are never rewritten.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit
from xml.parsers.expat import ExpatError

import jwt
import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceResourceNotFound,
)
from simple_salesforce.format import format_external_id, format_soql

from seatgate.adapters.salesforce.declaration import FEATURES, NAME, PRODUCTS
from seatgate.core.plugins import (
    LOOPBACK_HOSTS,
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
    TransientError,
    UserPage,
    hookimpl,
    kit,
    require_tls,
    reveal,
    timeout_field,
    unreadable,
)
from seatgate.core.plugins.throttle import QUOTA_PAUSE, InstanceThrottle
from seatgate.core.plugins.transports import throttle_session

T = TypeVar("T")

VERSION = "0.1.0"
API_VERSION = "59.0"
DEFAULT_LOGIN_URL = "https://login.salesforce.com"
BATCH_SIZE = 2000  # Sforce-Query-Options batchSize: 200..2000, 2000 being the default and the most
BATCH_HEADERS = {"Sforce-Query-Options": f"batchSize={BATCH_SIZE}"}
SF_SUFFIX = ".salesforce.com"
INSTALL_OBJECT = "Seatgate_Installation__c"
INSTALL_KEY = "Account_Key__c"
CRM = "Salesforce"
# A transaction's SystemModstamp is taken when it writes and seen when it commits: an Apex
# transaction may run up to 10 minutes, so a change can appear that much older than the cursor.
LOOKBACK_SECONDS = 600

# What the integration user needs (docs/adapters.md lists them): reading users for every pull and
# check, and writing the managed package's installation object for an install of a product that
# has the package.
READ_PERMISSION = "API Enabled and Read on User (View Setup and Configuration)"
INSTALL_PERMISSION = (
    f"Create, Edit and Delete on {INSTALL_OBJECT} (the object the managed package installs)"
)

USER_FIELDS = (
    "Id",
    "Username",
    "Email",
    "Name",
    "FirstName",
    "LastName",
    "IsActive",
    "UserType",
    "CallCenterId",
    "Profile.Name",
    "UserRole.Name",
    "SystemModstamp",
)
# Permission sets owned by a profile are the profile itself, already a role.
PERMSET_SUBQUERY = (
    "(SELECT PermissionSet.Name FROM PermissionSetAssignments"
    " WHERE PermissionSet.IsOwnedByProfile = false)"
)

CONFIG_SCHEMA = ConfigSchema(
    fields=(
        Field("session_id", secret=True, description="an existing session id / access token"),
        Field(
            "instance_url",
            description="the org's URL with session_id, e.g. https://acme.my.salesforce.com",
        ),
        Field("username", description="the integration user's username"),
        Field("password", secret=True, description="its password (SOAP login)"),
        Field("security_token", secret=True, description="its security token (SOAP login)"),
        Field("consumer_key", description="the connected app's consumer key (JWT or client)"),
        Field("private_key", secret=True, description="PEM private key of the app's certificate"),
        Field("private_key_file", description="path of that PEM key, instead of private_key"),
        Field("consumer_secret", secret=True, description="the connected app's consumer secret"),
        Field(
            "domain",
            description="My Domain prefix (acme.my) for client credentials; for the other logins "
            "it is read from login_url",
        ),
        Field(
            "login_url",
            default=DEFAULT_LOGIN_URL,
            description="where logins go: https://login.salesforce.com, https://test.salesforce.com "
            "or https://<my domain>.salesforce.com; plain http only on 127.0.0.1/localhost",
        ),
        Field("api_version", default=API_VERSION, description="REST API version, e.g. 59.0"),
        timeout_field(30),
        Field(
            "namespace",
            description="namespace prefix of the managed package: the salesforce product pulls "
            "its licence holders; unset, every standard user",
        ),
        Field(
            "voice_call_centers",
            type="list",
            default=[],
            description="CallCenterIds whose users hold salesforce_voice seats",
        ),
        Field(
            "voice_permission_set",
            description="permission set (API name) whose holders hold salesforce_voice seats, "
            "instead of voice_call_centers; neither: users of any call center",
        ),
        Field(
            "read_permission_sets",
            type="boolean",
            default=False,
            description="add each user's permission set names to its roles (same request)",
        ),
    ),
    auth={
        "session": ("session_id", "instance_url"),
        "password": ("username", "password", "security_token"),
        "jwt": ("username", "consumer_key", "private_key"),
        "jwt_file": ("username", "consumer_key", "private_key_file"),
        "client_credentials": ("consumer_key", "consumer_secret", "domain"),
    },
)

EXAMPLE_CONFIG: dict[str, Any] = {
    "username": "cti-integration@acme.example",
    "password": "${SALESFORCE_PASSWORD}",
    "security_token": "${SALESFORCE_SECURITY_TOKEN}",
    "login_url": DEFAULT_LOGIN_URL,
    "timeout": 30,
    "namespace": "seatgate",
    "voice_call_centers": ["04v000000000001AAA"],
    "read_permission_sets": True,
}


def parse_stamp(text: str) -> dt.datetime:
    """``2024-05-01T10:00:00.000+0000`` (Salesforce's datetime) as an aware UTC datetime."""
    # fromisoformat reads this form since 3.11, ~25x faster than strptime: it runs once per user.
    stamp = dt.datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        raise ValueError("a change stamp without a UTC offset")
    return stamp.astimezone(dt.UTC)


def _readable_stamp(text: str) -> bool:
    try:
        parse_stamp(text)
    except ValueError:
        return False
    return True


def check_url(url: str, key: str) -> str:
    """The URL without a trailing slash; TLS is required except on a loopback host."""
    return require_tls(url, key, "https://login.salesforce.com")


def auth_flow(settings: Mapping[str, Any]) -> str:
    """The login flow the settings give, first complete one in the schema's order."""
    for name, keys in CONFIG_SCHEMA.auth.items():
        if all(settings.get(k) is not None for k in keys):
            return name
    raise BadInput(
        "config auth", "incomplete", "one complete set of " + str(dict(CONFIG_SCHEMA.auth))
    )


def user_filter(product: str, settings: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """The SOQL condition selecting ``product``'s users, and the roles every one of them holds."""
    if product == "salesforce":
        namespace = settings.get("namespace")
        if namespace:
            semi_join = format_soql(
                "Id IN (SELECT UserId FROM UserPackageLicense"
                " WHERE PackageLicense.NamespacePrefix = {})",
                namespace,
            )
            return semi_join, (f"package:{namespace}",)
        return "UserType = 'Standard'", ()
    if product == "salesforce_voice":
        centers = list(settings.get("voice_call_centers") or [])
        permission_set = settings.get("voice_permission_set")
        if centers and permission_set:
            raise BadInput(
                "config voice_permission_set",
                permission_set,
                "either voice_call_centers or voice_permission_set, not both",
            )
        if permission_set:
            semi_join = format_soql(
                "Id IN (SELECT AssigneeId FROM PermissionSetAssignment"
                " WHERE PermissionSet.Name = {})",
                permission_set,
            )
            return semi_join, ()
        if centers:
            return format_soql("CallCenterId IN {}", centers), ()
        return "CallCenterId != null", ()
    raise BadInput("product", product, PRODUCTS)


def build_query(product: str, settings: Mapping[str, Any], since: dt.datetime | None) -> str:
    condition, _ = user_filter(product, settings)
    fields = list(USER_FIELDS)
    if settings.get("read_permission_sets"):
        fields.append(PERMSET_SUBQUERY)
    if since is not None:
        # format_soql drops the sub-second part, i.e. floors: the filter stays inclusive.
        since = since if since.tzinfo else since.replace(tzinfo=dt.UTC)
        condition = format_soql("SystemModstamp >= {} AND ", since) + condition
    return f"SELECT {', '.join(fields)} FROM User WHERE {condition} ORDER BY SystemModstamp, Id"


class LoopbackSession(requests.Session):
    """A ``requests.Session`` with a default timeout that, for a loopback org only, undoes the
    ``https://`` simple-salesforce hard-codes (and sends its login URL to the configured one).

    It also keeps the wait the last throttled answer asked for (:func:`kit.throttle_wait`):
    simple-salesforce's exceptions carry the body but not the headers.
    """

    def __init__(self, timeout: float, rewrites: Mapping[str, str]) -> None:
        super().__init__()
        self.timeout = timeout
        self.rewrites = dict(rewrites)
        self.retry_after: float | None = None
        if rewrites:
            # A loopback sandbox must not be sent through an environment proxy.
            self.trust_env = False

    def __repr__(self) -> str:
        return "LoopbackSession()"

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        target = url.decode() if isinstance(url, bytes) else url
        for prefix, replacement in self.rewrites.items():
            if target.startswith(prefix) and target[len(prefix) : len(prefix) + 1] in ("", "/"):
                target = replacement + target[len(prefix) :]
                break
        kwargs.setdefault("timeout", self.timeout)
        verb = method.decode() if isinstance(method, bytes) else method
        response = super().request(verb, target, *args, **kwargs)
        throttled = response.status_code in (429, 503)
        self.retry_after = kit.throttle_wait(response.headers) if throttled else None
        return response


def _error_field(exc: SalesforceError, key: str) -> str:
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], Mapping):
        return str(content[0].get(key, ""))
    return ""


def _error_code(exc: SalesforceError) -> str:
    return _error_field(exc, "errorCode")


def _error_message(exc: SalesforceError) -> str:
    return _error_field(exc, "message")


def daily_limit_spent(status: int, code: str, message: str) -> bool:
    """Whether an answer says the org's daily API request limit is spent: ``403
    REQUEST_LIMIT_EXCEEDED`` ("TotalRequests Limit exceeded"), not its concurrent-requests form
    ("ConcurrentPerOrgLongTxn Limit exceeded", a wait of seconds). Salesforce's REST API guide,
    "Status Codes and Error Responses"."""
    return status == 403 and code == "REQUEST_LIMIT_EXCEEDED" and "Concurrent" not in message


def wait_rule(status: int, headers: Mapping[str, str], body: Callable[[], bytes]) -> float | None:
    """What an answer of the org asks of every run on it (:class:`InstanceThrottle`): a 429/503
    ``Retry-After`` its wait; the daily limit spent (a rolling 24 hours, no reset given)
    :data:`QUOTA_PAUSE`."""
    wait = kit.retry_after_rule(status, headers, body)
    if wait is None and status == 403:
        try:
            errors = json.loads(body())
            first = errors[0] if isinstance(errors, list) and errors else {}
            code, message = str(first.get("errorCode", "")), str(first.get("message", ""))
        except (ValueError, AttributeError):
            return None
        if daily_limit_spent(status, code, message):
            return QUOTA_PAUSE
    return wait


def _network_error(exc: requests.RequestException) -> AdapterError:
    return kit.transport_error(
        CRM, exc, timed_out=isinstance(exc, requests.Timeout), url_setting="login_url"
    )


class LocatorLost(AdapterError):
    """Salesforce no longer knows a query locator (``INVALID_QUERY_LOCATOR``); the pull asks its
    query again from the last record read (:class:`_Pull`)."""


INSTALL_WRITE = kit.Write("write the installation record", INSTALL_PERMISSION)
UNINSTALL_WRITE = kit.Write("delete the installation record", INSTALL_PERMISSION)


class Client:
    """One product's settings, a logged-in simple-salesforce client, and the translation of the
    client's errors into seatgate's (through the kit, after Salesforce's own error codes)."""

    def __init__(self, product: str, settings: Mapping[str, Any]) -> None:
        self.product = product
        self.settings = settings
        self.flow = auth_flow(settings)
        self.timeout = float(settings.get("timeout") or 30)
        self.version = str(settings.get("api_version") or API_VERSION)
        # Every request (logins too) passes the shared throttle of the host it goes to: the
        # org's own instance, or the login server.
        self.throttle = InstanceThrottle(CRM, rule=wait_rule)
        self.session = self._session()
        self._client: Salesforce | None = None

    def __repr__(self) -> str:
        return f"Client(product={self.product!r}, auth={self.flow!r})"

    @property
    def can_refresh(self) -> bool:
        """A login flow can log in again; a session id given in the config cannot be renewed."""
        return self.flow != "session"

    # -- login ---------------------------------------------------------------------------------
    def _login_url(self) -> str:
        login_url = check_url(str(self.settings.get("login_url") or DEFAULT_LOGIN_URL), "login_url")
        if self.flow == "client_credentials":
            host = urlsplit(login_url).hostname or ""
            if host not in LOOPBACK_HOSTS:
                return f"https://{self.settings['domain']}{SF_SUFFIX}"
        return login_url

    def _domain(self) -> str:
        if self.settings.get("domain"):
            return str(self.settings["domain"])
        host = urlsplit(self._login_url()).hostname or ""
        if host.endswith(SF_SUFFIX):
            return host[: -len(SF_SUFFIX)]
        return "login"

    def _session(self) -> LoopbackSession:
        rewrites: dict[str, str] = {}
        if self.flow == "session":
            endpoint = check_url(str(self.settings["instance_url"]), "instance_url")
        else:
            endpoint = self._login_url()
            if not endpoint.startswith("https://"):
                # The client builds https://{domain}.salesforce.com for its login calls.
                rewrites[f"https://{self._domain()}{SF_SUFFIX}"] = endpoint
            elif not endpoint.endswith(SF_SUFFIX):
                raise BadInput(
                    "config login_url", endpoint, "a https://<name>.salesforce.com login URL"
                )
        parts = urlsplit(endpoint)
        if parts.scheme == "http":
            # Only a loopback endpoint gets here (check_url); the org it logs in to is the same one.
            rewrites[f"https://{parts.netloc}"] = f"http://{parts.netloc}"
            for host in LOOPBACK_HOSTS:
                rewrites.setdefault(f"https://{host}:{parts.port}", f"http://{host}:{parts.port}")
        session = LoopbackSession(self.timeout, rewrites)
        throttle_session(session, self.throttle)
        return session

    def login(self) -> Salesforce:
        """A client logged in with the configured flow (with a session id: no request at all)."""
        error: AdapterError | None = None
        try:
            client = self._new_client()
        except Exception as exc:
            error = self._login_error(exc)
            if error is None:
                raise
        if error is not None:
            # Raised outside the except block, so no library exception (which may carry the
            # request) rides along as __context__.
            raise error
        # The client would log in again by itself on a 401 (up to three times); without the login
        # it raises instead, and ctx.call's single refresh is the only retry.
        client._salesforce_login_partial = None
        return client

    def _new_client(self) -> Salesforce:
        s = self.settings
        common: dict[str, Any] = {
            "session": self.session,
            "version": self.version,
            # Plain dicts (json's C fast path) instead of the client's default OrderedDict.
            "object_pairs_hook": None,
        }
        if self.flow == "session":
            return Salesforce(
                session_id=reveal(s["session_id"]), instance_url=s["instance_url"], **common
            )
        if self.flow == "password":
            return Salesforce(
                username=s["username"],
                password=reveal(s["password"]),
                security_token=reveal(s["security_token"]),
                domain=self._domain(),
                **common,
            )
        if self.flow in ("jwt", "jwt_file"):
            return Salesforce(
                username=s["username"],
                consumer_key=s["consumer_key"],
                domain=self._domain(),
                privatekey=reveal(s["private_key"]) if self.flow == "jwt" else None,
                privatekey_file=str(s["private_key_file"]) if self.flow == "jwt_file" else None,
                **common,
            )
        return Salesforce(
            consumer_key=s["consumer_key"],
            consumer_secret=reveal(s["consumer_secret"]),
            domain=self._domain(),
            **common,
        )

    def _login_error(self, exc: Exception) -> AdapterError | None:
        if isinstance(exc, requests.RequestException):
            return _network_error(exc)
        if isinstance(exc, OSError):
            return AuthFailed(
                f"cannot read private_key_file ({type(exc).__name__}); check the path in the config"
            )
        if isinstance(exc, jwt.PyJWTError) or (
            self.flow in ("jwt", "jwt_file") and isinstance(exc, ValueError | TypeError)
        ):
            # PyJWT/cryptography refuse a key that is not a PEM RSA private key.
            return AuthFailed("the JWT private key is not a PEM RSA private key; check private_key")
        if isinstance(exc, ExpatError | ValueError | KeyError | TypeError | AttributeError):
            return MalformedResponse(
                f"the Salesforce login ({self.flow}) answered something unreadable; "
                "check login_url and try again"
            )
        if not isinstance(exc, SalesforceAuthenticationFailed):
            return None
        # The login answers SOAP faults and OAuth error codes, not statuses: Salesforce's words.
        code = str(exc.code)
        if code == "200":
            return MalformedResponse(
                f"the Salesforce login ({self.flow}) answered a body that is not JSON; try again"
            )
        if code in ("SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION", "temporarily_unavailable") or (
            code.isdigit() and int(code) >= 500
        ):
            return TransientError(f"the Salesforce login is unavailable ({code}); try again later")
        if code.upper() == "REQUEST_LIMIT_EXCEEDED":
            return QuotaExhausted(
                "Salesforce refused the login: the org's daily API limit is spent "
                "(REQUEST_LIMIT_EXCEEDED); sync again once usage drops"
            )
        if code in ("429", "rate_limit_exceeded"):
            return RateLimited(f"Salesforce throttled the login ({code})", self.session.retry_after)
        return AuthFailed(
            f"Salesforce refused the {self.flow} login ({code}); check the credentials "
            "and login_url / domain in the config"
        )

    # -- requests ------------------------------------------------------------------------------
    @property
    def client(self) -> Salesforce:
        assert self._client is not None, "call connect() first"
        return self._client

    def connect(self, ctx: RequestContext) -> Salesforce:
        if self._client is None:
            # A session id needs no login request, so none is counted.
            self._client = self.login() if self.flow == "session" else ctx.call(self.login)
        return self._client

    def refresh(self) -> None:
        """Log in again (the ``refresh`` given to ``ctx.call``)."""
        self._client = self.login()

    def call(
        self, ctx: RequestContext, fn: Callable[[Salesforce], T], *, write: kit.Write | None = None
    ) -> T:
        """Run one request on the current client (a refresh replaces it) under ``ctx``; a
        ``write`` names what it needs when the org refuses it."""
        longest = ctx.policy.max_retry_after
        self.throttle.max_wait = longest
        self.connect(ctx)
        refresh = self.refresh if self.can_refresh else None
        return ctx.call(
            lambda: self.translate(lambda: fn(self.client), write=write, longest=longest),
            refresh=refresh,
        )

    def translate(
        self, fn: Callable[[], T], *, write: kit.Write | None = None, longest: float = 300.0
    ) -> T:
        """Run ``fn``; the client's exceptions become the core's (raised without the original)."""
        error: AdapterError | None = None
        try:
            return fn()
        except Exception as exc:
            error = self._request_error(exc, write, longest)
            if error is None:
                raise
        raise error

    def _request_error(
        self, exc: Exception, write: kit.Write | None, longest: float
    ) -> AdapterError | None:
        # Messages carry the status and Salesforce's errorCode, never the body, URL or headers.
        if isinstance(exc, SalesforceError):
            return self._status_error(exc, write, longest)
        # requests' JSONDecodeError is a RequestException too: a broken body is not retried.
        if isinstance(exc, ValueError):
            return MalformedResponse(
                "Salesforce answered a body that is not JSON; the run stops, try again later"
            )
        if isinstance(exc, requests.RequestException):
            return _network_error(exc)
        return None

    def _status_error(
        self, exc: SalesforceError, write: kit.Write | None, longest: float
    ) -> AdapterError:
        status, code = int(exc.status), _error_code(exc)
        # Salesforce's own codes first: what the status alone does not say.
        if status == 403 and code == "REQUEST_LIMIT_EXCEEDED":
            if not daily_limit_spent(status, code, _error_message(exc)):
                # ConcurrentPerOrgLongTxn: too many long requests at once, not the daily limit.
                return RateLimited(
                    "Salesforce is throttling concurrent requests (REQUEST_LIMIT_EXCEEDED)",
                    self.session.retry_after,
                )
            return QuotaExhausted(
                "Salesforce's daily API request limit is spent (REQUEST_LIMIT_EXCEEDED); "
                "the run stops: sync again once the org's usage drops"
            )
        if status == 400 and code == "INVALID_QUERY_LOCATOR":
            return LocatorLost(
                "Salesforce no longer knows the query locator (INVALID_QUERY_LOCATOR)"
            )
        credentials = (
            "the login settings in the config"
            if self.can_refresh
            else "session_id: give a fresh one, or configure a login flow that can renew it"
        )
        common: dict[str, Any] = {
            "crm": CRM,
            "detail": code,
            "retry_after": self.session.retry_after,
            "max_retry_after": longest,
            "can_refresh": self.can_refresh,
            "credentials": credentials,
        }
        if write is not None:
            return kit.refused_write(
                status, action=write.action, permission=write.permission, **common
            )
        if status == 400:
            # The org refused the query it was sent: the settings that shape it are to check.
            return AdapterError(
                f"Salesforce refused the user query ({code or 'HTTP 400'}); check "
                "namespace, voice_call_centers, voice_permission_set and api_version"
            )
        if status == 404:
            return AdapterError(
                f"Salesforce answered not found ({code or 'HTTP 404'}); check api_version and "
                "the instance"
            )
        return kit.error_for_status(status, permission=READ_PERMISSION, **common)

    def check(self, ctx: RequestContext) -> None:
        """One user of the product read (``LIMIT 1``): the credentials and read access work."""
        condition, _ = user_filter(self.product, self.settings)
        soql = f"SELECT Id FROM User WHERE {condition} LIMIT 1"
        _page_parts(self.call(ctx, lambda c: c.query(soql, timeout=self.timeout)))


class _Pull:
    """One pull: its query, asked page by page through :func:`kit.pages` (the next page is read
    while this one is mapped and stored), and what it needs to ask it again when the org loses
    the query locator."""

    def __init__(self, client: Client, ctx: RequestContext, since: dt.datetime | None) -> None:
        self.client, self.ctx, self.since = client, ctx, since
        self.soql = build_query(client.product, client.settings, since)
        _, self.implied_roles = user_filter(client.product, client.settings)
        self.read: set[str] = set()  # every record Id read so far
        self.last_stamp: str | None = None  # SystemModstamp of the last record read
        self.restarted = False
        self.moved = True  # a record was read since the last restart

    def pages(self) -> Iterator[UserPage]:
        implied = self.implied_roles
        # closing(): a pull closed early stops the worker before the client goes away.
        with contextlib.closing(
            kit.pages(self.fetch, "", name="salesforce-pull", crm=CRM)
        ) as results:
            for records in results:
                yield UserPage(users=[to_user(r, implied) for r in records])

    def fetch(self, next_url: str) -> tuple[list[Any], str | None]:
        timeout = self.client.timeout
        if not next_url:
            soql = self.soql
            result = self.client.call(
                self.ctx, lambda c: c.query(soql, headers=BATCH_HEADERS, timeout=timeout)
            )
        else:
            try:
                result = self.client.call(
                    self.ctx, partial(_query_more, url=next_url, timeout=timeout)
                )
            except LocatorLost:
                result = self._restart()
        records, done, following = _page_parts(result)
        if records:
            try:
                ids = [r["Id"] for r in records]
            except (KeyError, TypeError):
                raise MalformedResponse("Salesforce answered a User record without an Id") from None
            stamp = records[-1].get("SystemModstamp")
            if isinstance(stamp, str) and _readable_stamp(stamp):
                # (an unreadable one is its record's problem; a restart resumes from the last
                # readable stamp, earlier: what was read again is skipped)
                self.last_stamp = stamp
            if self.restarted:
                # The asked-again query starts on the last record's second: what was read is
                # skipped (a user changed since it was read comes again, later in the order).
                read = self.read
                records = [r for r, i in zip(records, ids, strict=True) if i not in read]
            self.read.update(ids)
            self.moved = self.moved or bool(records)
        return records, None if done else following

    def _restart(self) -> Any:
        """Ask the query again from the last record read, keyset on ``SystemModstamp``: the
        locator is lost (bound to a session that ended, or expired)."""
        if not self.moved:
            raise AdapterError(
                "Salesforce lost the query locator again before another record was read; "
                "the pull stops, try again"
            )
        self.ctx.retries += 1
        self.restarted, self.moved = True, False
        try:
            resume = parse_stamp(self.last_stamp) if self.last_stamp else self.since
        except ValueError:
            raise MalformedResponse(
                "Salesforce answered a User record with a bad SystemModstamp"
            ) from None
        soql = build_query(self.client.product, self.client.settings, resume)
        timeout = self.client.timeout
        return self.client.call(
            self.ctx, lambda c: c.query(soql, headers=BATCH_HEADERS, timeout=timeout)
        )


def _query_more(client: Salesforce, *, url: str, timeout: float) -> Any:
    return client.query_more(url, identifier_is_url=True, headers=BATCH_HEADERS, timeout=timeout)


def _page_parts(result: Any) -> tuple[list[Any], bool, str]:
    try:
        records = result["records"]
        done = result["done"]
        next_url = "" if done else result["nextRecordsUrl"]
    except (KeyError, TypeError):
        raise MalformedResponse(
            "Salesforce answered a query page without records/done/nextRecordsUrl"
        ) from None
    if not isinstance(records, list) or not isinstance(done, bool) or not isinstance(next_url, str):
        raise MalformedResponse("Salesforce answered a query page of the wrong shape")
    return records, done, next_url


def _name(related: Any) -> str | None:
    return related.get("Name") if isinstance(related, Mapping) else None


def to_user(record: Any, implied_roles: tuple[str, ...] = ()) -> ExternalUser:
    """Map one ``User`` record onto the core's :class:`ExternalUser`.

    A field of the record that cannot be read (a ``SystemModstamp`` that does not parse, an
    ``IsActive`` that is not a boolean, a name, email or role name that is no text, permission
    set assignments of the wrong shape) is this record's alone: the user comes back with its
    ``Id``, its email when readable and ``problem``, and the core quarantines it
    (``malformed_record``).

    :raises MalformedResponse: the record is not an object or has no ``Id`` (the page is not
        what the query asked; without its Id the record can be neither quarantined nor counted
        as seen, so a full pull would deactivate its user).
    """
    try:
        key = record["Id"]
    except (KeyError, TypeError, IndexError):
        raise MalformedResponse("Salesforce answered a User record without an Id") from None
    if not isinstance(record, Mapping) or not isinstance(key, str) or not key:
        raise MalformedResponse("Salesforce answered a User record without an Id")
    email = record.get("Email")
    if email is not None and not isinstance(email, str):
        return ExternalUser(external_id=key, email=None, problem="Email is no text")
    try:
        roles = [_name(record.get("Profile")), _name(record.get("UserRole"))]
        assignments = record.get("PermissionSetAssignments")
        if isinstance(assignments, Mapping):
            roles.extend(_name(a.get("PermissionSet")) for a in assignments.get("records") or ())
    except (TypeError, AttributeError):
        return _unreadable(key, email, "PermissionSetAssignments are not records")
    if not all(r is None or isinstance(r, str) for r in roles):
        return _unreadable(key, email, "a profile, role or permission set Name is no text")
    name = record.get("Name")
    if name is not None and not isinstance(name, str):
        return _unreadable(key, email, "Name is no text")
    active = record.get("IsActive")
    if not isinstance(active, bool):
        # bool("false") is True: a flag of another kind would be guessed, maybe wrongly.
        return _unreadable(key, email, "IsActive is not true or false")
    stamp = record.get("SystemModstamp")
    try:
        modified_at = parse_stamp(stamp) if stamp else None
    except (TypeError, ValueError):
        return _unreadable(key, email, unreadable("SystemModstamp", stamp, "date-time"))
    return ExternalUser(
        external_id=key,
        email=email,
        name=name or "",
        active=active,
        roles=tuple(dict.fromkeys(r for r in (*roles, *implied_roles) if r)),
        modified_at=modified_at,
        raw={
            "Username": record.get("Username"),
            "UserType": record.get("UserType"),
            "CallCenterId": record.get("CallCenterId"),
        },
    )


def _unreadable(key: str, email: str | None, problem: str) -> ExternalUser:
    return ExternalUser(external_id=key, email=email or None, problem=problem)


def installation_key(account: str, product: str) -> str:
    return f"{account}:{product}"


class SalesforceAdapter:
    """The pluggy plugin: hookimpls for the adapter hooks; holds no state between calls."""

    def __repr__(self) -> str:
        return "SalesforceAdapter()"

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
            page_size=BATCH_SIZE,
            description="Salesforce users (managed package licence holders) and Salesforce Voice "
            "users (call centers or a permission set), on simple-salesforce",
            lookback_seconds=LOOKBACK_SECONDS,
        )

    @hookimpl
    def seatgate_check_connection(
        self, product: str, settings: Mapping[str, Any], ctx: RequestContext
    ) -> bool:
        Client(product, settings).check(ctx)
        return True

    @hookimpl
    def seatgate_pull_users(
        self,
        product: str,
        settings: Mapping[str, Any],
        since: dt.datetime | None,
        ctx: RequestContext,
    ) -> Iterator[UserPage]:
        # Built before the generator so a bad product or config fails at the call, not later.
        pull = _Pull(Client(product, settings), ctx, since)
        return pull.pages()

    @hookimpl
    def seatgate_install(self, account: str, product: str, settings: Mapping[str, Any]) -> bool:
        if not has_package(product):
            # Nothing of ours lives in the org (a Voice-only org has no package): nothing to
            # write. The install service has checked the connection just before.
            return True
        client = Client(product, settings)
        ctx = RequestContext()
        record_id = format_external_id(INSTALL_KEY, installation_key(account, product))
        fields = {"Account__c": account, "Product__c": product}
        client.call(
            ctx,
            lambda c: _installation_object(c).upsert(record_id, fields),
            write=INSTALL_WRITE,
        )
        return True

    @hookimpl
    def seatgate_uninstall(self, account: str, product: str, settings: Mapping[str, Any]) -> bool:
        if not has_package(product):
            return True  # its install wrote nothing
        client = Client(product, settings)
        record_id = format_external_id(INSTALL_KEY, installation_key(account, product))

        def delete(c: Salesforce) -> None:
            # Already gone means already uninstalled: uninstall is idempotent.
            with contextlib.suppress(SalesforceResourceNotFound):
                _installation_object(c).delete(record_id)

        client.call(RequestContext(), delete, write=UNINSTALL_WRITE)
        return True


def has_package(product: str) -> bool:
    """Whether ``product`` comes with the managed package, whose installation object the install
    writes (the declaration's ``managed_package`` feature): ``salesforce``, not
    ``salesforce_voice``."""
    if product not in PRODUCTS:
        raise BadInput("product", product, PRODUCTS)
    return "managed_package" in FEATURES[product]


def _installation_object(client: Salesforce) -> Any:
    # simple-salesforce builds an SFType per attribute name: the object's API name.
    return getattr(client, INSTALL_OBJECT)


plugin = SalesforceAdapter()
