"""The Salesforce adapter: products ``salesforce`` and ``salesforce_voice`` on simple-salesforce.

Every call to the org goes through simple-salesforce, one request per :meth:`RequestContext.call`,
so retries, Retry-After, the one re-login and request counting are the core's. The client's own
hidden retry (it logs in again and repeats a 401 up to three times when it holds the login) is kept
out of the way by logging in here with :func:`simple_salesforce.SalesforceLogin` and handing the
client the session id ("direct" auth), which it never refreshes by itself. requests does not retry.

Who is pulled (see ``reference/crm-apis.md`` section 1):

* ``salesforce``: the holders of the managed package licence (``UserPackageLicense``) when
  ``package_namespace`` is set, else every standard user;
* ``salesforce_voice``: the users of ``voice_call_center_ids`` and/or the holders of
  ``voice_permission_set``; with neither, every user assigned to a call center.

Roles for auto install: profile name, user role name, the permission sets the user holds when
``roles_from_permission_sets`` is on, and ``package:<namespace>`` for package licence holders.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import hashlib
import ipaddress
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from simple_salesforce import (
    Salesforce,
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceLogin,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
    format_external_id,
    format_soql,
)

from seatgate.core.clock import as_utc
from seatgate.core.config import ConfigSchema, Field, Secret
from seatgate.core.errors import (
    AdapterError,
    AuthFailed,
    BadInput,
    MalformedResponse,
    QuotaExhausted,
    RateLimited,
    TokenExpired,
    TransientError,
)
from seatgate.core.hookspecs import hookimpl
from seatgate.core.records import FEATURES, AdapterInfo, ExternalUser, UserPage
from seatgate.core.retry import RequestContext

T = TypeVar("T")

NAME = "salesforce"
VERSION = "0.1.0"
PRODUCTS = ("salesforce", "salesforce_voice")
API_VERSION = "59.0"
# Sforce-Query-Options batchSize accepts 200..2000; 2000 is the largest page the REST query gives.
PAGE_SIZE = 2000
INSTALL_OBJECT = "Seatgate_Installation__c"
INSTALL_KEY = "Account_Key__c"

# Salesforce Voice runs in the org's own Service Cloud Voice console: no managed package of ours.
PRODUCT_FEATURES: dict[str, tuple[str, ...]] = {
    "salesforce": FEATURES,
    "salesforce_voice": tuple(f for f in FEATURES if f != "managed_package"),
}

USER_FIELDS = (
    "Id, Username, Email, Name, FirstName, LastName, IsActive, UserType, CallCenterId, "
    "Profile.Name, UserRole.Name, LastModifiedDate, SystemModstamp"
)
# Profile-owned permission sets are the profile again; only real assignments are roles.
PERMSET_SUBQUERY = (
    "(SELECT PermissionSet.Name FROM PermissionSetAssignments"
    " WHERE PermissionSet.IsOwnedByProfile = false)"
)

LOOPBACK_NAMES = {"localhost"}

SCHEMA = ConfigSchema(
    fields=(
        Field("instance_url", description="https://<my-domain>.my.salesforce.com (session auth)"),
        Field("session_id", secret=True, description="an access token / session id"),
        Field("username", description="the integration user's username"),
        Field("password", secret=True),
        Field("security_token", secret=True, description="appended to the password (SOAP login)"),
        Field("consumer_key", description="the connected app's consumer key"),
        Field("consumer_secret", secret=True, description="client credentials flow"),
        Field("private_key", secret=True, description="PEM key for the JWT bearer flow"),
        Field("private_key_file", description="path to the PEM key for the JWT bearer flow"),
        Field("domain", description="login domain: login, test or <my-domain>.my (default login)"),
        Field(
            "login_url", description="where login goes instead of https://<domain>.salesforce.com"
        ),
        Field("api_version", default=API_VERSION),
        Field("timeout", type="number", default=30, description="seconds per request"),
        Field("package_namespace", description="managed package whose licence holders to pull"),
        Field("voice_call_center_ids", type="list", description="call centers of Voice users"),
        Field("voice_permission_set", description="permission set held by Voice users"),
        Field("roles_from_permission_sets", type="boolean", default=False),
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
    "username": "integration@acme.example.com",
    "password": "${SALESFORCE_PASSWORD}",
    "security_token": "${SALESFORCE_SECURITY_TOKEN}",
    "domain": "acme.my",
    "timeout": 30,
    "package_namespace": "seatgate",
    "voice_call_center_ids": ["04v5e000000XYZ1AAA"],
}


def _reveal(value: Any) -> Any:
    return value.reveal() if isinstance(value, Secret) else value


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(key: str, url: str) -> bool:
    """Accept https anywhere and plain http on loopback only; True when it is plain http."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return False
    if parts.scheme == "http" and _is_loopback(parts.hostname):
        return True
    raise BadInput(
        f"config {key}", url, "an https:// URL (plain http only for 127.0.0.1/localhost)"
    )


class _Session(requests.Session):
    """Sends login to ``login_url`` and, for a loopback sandbox, https to plain http.

    simple-salesforce writes every URL as ``https://...`` (login on ``<domain>.salesforce.com``);
    this is the documented seam to point it elsewhere. It also keeps the last response's headers,
    because the client's exceptions drop them and Retry-After lives there.
    """

    def __init__(self, timeout: float, login_prefix: str, login_url: str | None, plain: bool):
        super().__init__()
        self._timeout = timeout
        self._login_prefix = login_prefix
        self._login_url = login_url.rstrip("/") + "/" if login_url else None
        self._plain = plain
        if plain:
            # A sandbox on loopback must not be sent through an environment proxy.
            self.trust_env = False
        self.last_headers: Mapping[str, str] = {}

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        target = url.decode() if isinstance(url, bytes) else url
        if self._login_url and target.startswith(self._login_prefix):
            target = self._login_url + target[len(self._login_prefix) :]
        if (
            self._plain
            and target.startswith("https://")
            and _is_loopback(urlsplit(target).hostname)
        ):
            target = "http://" + target[len("https://") :]
        kwargs.setdefault("timeout", self._timeout)
        response = super().request(method, target, *args, **kwargs)
        self.last_headers = response.headers
        return response

    def __repr__(self) -> str:
        return "<salesforce session>"


def _auth_mode(settings: Mapping[str, Any]) -> str:
    for mode, keys in SCHEMA.auth.items():
        if all(settings.get(k) is not None for k in keys):
            return mode
    options = "; ".join(f"{n}: {', '.join(keys)}" for n, keys in SCHEMA.auth.items())
    raise BadInput("config auth", "incomplete", f"one complete set of ({options})")


def _error_detail(content: Any) -> tuple[str, str]:
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode", "")), str(content[0].get("message", ""))
    return "", ""


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


class _Connection:
    """One logged-in client; ``refresh`` logs in again (only for flows that have a login)."""

    def __init__(self, adapter: SalesforceAdapter, settings: Mapping[str, Any]) -> None:
        self.settings = settings
        self.mode = _auth_mode(settings)
        self.version = str(settings.get("api_version") or API_VERSION)
        self.domain = str(settings.get("domain") or "login")
        plain = False
        for key in ("instance_url", "login_url"):
            if settings.get(key):
                plain = _check_url(key, settings[key]) or plain
        if self.mode == "client_credentials" and self.domain in ("login", "test"):
            raise BadInput(
                "config domain", self.domain, "your My Domain (e.g. acme.my) for client credentials"
            )
        self.session = _Session(
            float(settings.get("timeout") or 30),
            f"https://{self.domain}.salesforce.com/",
            settings.get("login_url"),
            plain,
        )
        self._adapter = adapter
        self.sf: Salesforce | None = None

    @property
    def can_refresh(self) -> bool:
        return self.mode != "session"

    def _key(self) -> str:
        # The cache key is a digest: the credentials themselves are never kept as a key.
        parts = [self.mode, self.domain, str(self.settings.get("login_url"))]
        parts += [str(_reveal(self.settings.get(k))) for k in SCHEMA.auth[self.mode]]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()

    def open(self, ctx: RequestContext) -> None:
        if self.mode == "session":
            self._use(_reveal(self.settings["session_id"]), self.settings["instance_url"])
            return
        cached = self._adapter._sessions.get(self._key())
        if cached is None:
            cached = ctx.call(self._login)
        self._use(*cached)

    def refresh(self) -> None:
        self._adapter._sessions.pop(self._key(), None)
        self._use(*self._login())

    def _use(self, session_id: str, instance_url: str) -> None:
        self.sf = Salesforce(
            session_id=session_id,
            instance_url=instance_url,
            session=self.session,
            version=self.version,
            # Plain dicts parse faster than the default OrderedDict, and order is not needed.
            object_pairs_hook=dict,
        )

    def _login(self) -> tuple[str, str]:
        s = self.settings
        common: dict[str, Any] = {
            "session": self.session,
            "domain": self.domain,
            "sf_version": self.version,
        }
        try:
            if self.mode == "password":
                sid, instance = SalesforceLogin(
                    username=s["username"],
                    password=_reveal(s["password"]),
                    security_token=_reveal(s["security_token"]),
                    **common,
                )
            elif self.mode in ("jwt", "jwt_file"):
                sid, instance = SalesforceLogin(
                    username=s["username"],
                    consumer_key=s["consumer_key"],
                    privatekey=_reveal(s.get("private_key")),
                    privatekey_file=s.get("private_key_file"),
                    **common,
                )
            else:
                sid, instance = SalesforceLogin(
                    consumer_key=s["consumer_key"],
                    consumer_secret=_reveal(s["consumer_secret"]),
                    **common,
                )
        except Exception as exc:
            raise self.translate(exc) from None
        result = (sid, f"https://{instance}")
        self._adapter._sessions[self._key()] = result
        return result

    def run(self, fn: Callable[[Salesforce], T]) -> T:
        """One request, with the client's exceptions turned into the core's."""
        assert self.sf is not None, "open() the connection first"
        try:
            return fn(self.sf)
        except Exception as exc:
            raise self.translate(exc) from None

    def translate(self, exc: Exception) -> Exception:
        # Messages carry the status and Salesforce's errorCode, never the response text or URL.
        if isinstance(exc, AdapterError | BadInput):
            return exc
        if isinstance(exc, SalesforceAuthenticationFailed):
            code = str(exc.code)
            if code == "REQUEST_LIMIT_EXCEEDED":
                return QuotaExhausted(
                    "Salesforce refused the login: the org's daily API limit is spent "
                    "(REQUEST_LIMIT_EXCEEDED); sync again once usage drops"
                )
            if code == "SERVER_UNAVAILABLE" or (code.isdigit() and int(code) >= 500):
                return TransientError(
                    f"Salesforce's login is unavailable ({code}); try again later"
                )
            return AuthFailed(
                f"Salesforce refused the login ({code}): check the {self.mode} credentials "
                "and the domain / login_url"
            )
        if isinstance(exc, SalesforceExpiredSession):
            if self.can_refresh:
                return TokenExpired("Salesforce ended the session (INVALID_SESSION_ID)")
            return AuthFailed(
                "Salesforce refused the session id (INVALID_SESSION_ID): configure a fresh "
                "session_id, or a login flow (password, jwt, client credentials) that can renew it"
            )
        if isinstance(exc, SalesforceRefusedRequest):
            code, message = _error_detail(exc.content)
            if code == "REQUEST_LIMIT_EXCEEDED" and "Concurrent" in message:
                return RateLimited(f"Salesforce is throttling concurrent requests ({code})")
            if code == "REQUEST_LIMIT_EXCEEDED":
                return QuotaExhausted(
                    "Salesforce's daily API request limit is spent (REQUEST_LIMIT_EXCEEDED): "
                    "sync again once the org's usage drops"
                )
            return AuthFailed(
                f"Salesforce refused the request (403 {code}): give the integration user "
                "API Enabled and View Setup and Configuration"
            )
        if isinstance(exc, SalesforceMalformedRequest):
            code, _ = _error_detail(exc.content)
            return AdapterError(
                f"Salesforce rejected the user query (400 {code}): check package_namespace, "
                "voice_permission_set and api_version"
            )
        if isinstance(exc, SalesforceResourceNotFound):
            return AdapterError(f"Salesforce has no such resource (404) at API v{self.version}")
        if isinstance(exc, SalesforceError):
            status = int(exc.status) if str(exc.status).isdigit() else 0
            code, _ = _error_detail(exc.content)
            if status == 429:
                return RateLimited(
                    f"Salesforce throttled the request (429 {code})",
                    retry_after=_retry_after(self.session.last_headers),
                )
            if status >= 500:
                return TransientError(f"Salesforce answered {status} {code}".rstrip())
            return AdapterError(f"Salesforce answered {status} {code}".rstrip())
        if isinstance(exc, requests.Timeout):
            return TransientError(
                "Salesforce did not answer in time; raise timeout if this persists"
            )
        if isinstance(exc, requests.ConnectionError):
            return TransientError("could not reach Salesforce; check instance_url / login_url")
        if isinstance(exc, ValueError | KeyError | TypeError):
            return MalformedResponse("Salesforce answered something that is not a query result")
        return exc


def _parse_stamp(value: Any) -> dt.datetime | None:
    if not value:
        return None
    return as_utc(dt.datetime.fromisoformat(str(value)))


def _selection(product: str, settings: Mapping[str, Any]) -> str:
    if product == "salesforce":
        namespace = settings.get("package_namespace")
        if namespace:
            return format_soql(
                "Id IN (SELECT UserId FROM UserPackageLicense"
                " WHERE PackageLicense.NamespacePrefix = {})",
                namespace,
            )
        return "UserType = 'Standard'"
    terms = []
    if settings.get("voice_call_center_ids"):
        terms.append(format_soql("CallCenterId IN {}", list(settings["voice_call_center_ids"])))
    if settings.get("voice_permission_set"):
        terms.append(
            format_soql(
                "Id IN (SELECT AssigneeId FROM PermissionSetAssignment"
                " WHERE PermissionSet.Name = {})",
                settings["voice_permission_set"],
            )
        )
    if not terms:
        return "CallCenterId != null"
    return terms[0] if len(terms) == 1 else "(" + " OR ".join(terms) + ")"


def user_query(product: str, settings: Mapping[str, Any], since: dt.datetime | None) -> str:
    """The SOQL of a pull: the product's users, changed at or after ``since`` when given."""
    fields = USER_FIELDS
    if settings.get("roles_from_permission_sets"):
        fields += ", " + PERMSET_SUBQUERY
    where = _selection(product, settings)
    if since is not None:
        # format_soql drops sub-seconds, i.e. rounds down: still inclusive of ``since``.
        where += format_soql(" AND SystemModstamp >= {}", as_utc(since))
    return f"SELECT {fields} FROM User WHERE {where} ORDER BY SystemModstamp, Id"


def _to_user(record: Mapping[str, Any], package_role: str | None) -> ExternalUser:
    roles: list[str] = []
    for relation in ("Profile", "UserRole"):
        related = record.get(relation)
        if related and related.get("Name"):
            roles.append(related["Name"])
    assignments = record.get("PermissionSetAssignments")
    if assignments:
        roles += [a["PermissionSet"]["Name"] for a in assignments["records"]]
    if package_role:
        roles.append(package_role)
    return ExternalUser(
        external_id=record["Id"],
        email=record.get("Email"),
        name=record.get("Name") or "",
        active=bool(record.get("IsActive")),
        roles=tuple(roles),
        modified_at=_parse_stamp(record.get("SystemModstamp")),
        raw={k: record.get(k) for k in ("Username", "UserType", "CallCenterId")},
    )


class SalesforceAdapter:
    """The Salesforce plugin (products salesforce and salesforce_voice)."""

    def __init__(self) -> None:
        # Logged-in sessions by a digest of their credentials: a sync does not log in each run.
        self._sessions: dict[str, tuple[str, str]] = {}

    def __repr__(self) -> str:
        return "SalesforceAdapter()"

    @staticmethod
    def _check_product(product: str) -> None:
        if product not in PRODUCTS:
            raise BadInput("product", product, PRODUCTS)

    @hookimpl
    def seatgate_adapter_info(self) -> AdapterInfo:
        return AdapterInfo(
            name=NAME,
            products=PRODUCTS,
            version=VERSION,
            features=PRODUCT_FEATURES,
            config_schema=SCHEMA,
            example_config=EXAMPLE_CONFIG,
            supports_cursor=True,
            page_size=PAGE_SIZE,
            description="Salesforce and Salesforce Voice users over the REST API (simple-salesforce)",
        )

    @hookimpl
    def seatgate_check_connection(
        self, product: str, settings: Mapping[str, Any], ctx: RequestContext
    ) -> bool:
        self._check_product(product)
        conn = _Connection(self, settings)
        conn.open(ctx)
        soql = f"SELECT Id FROM User WHERE {_selection(product, settings)} LIMIT 1"
        ctx.call(lambda: conn.run(lambda sf: sf.query(soql)), refresh=_refresher(conn))
        return True

    @hookimpl
    def seatgate_pull_users(
        self,
        product: str,
        settings: Mapping[str, Any],
        since: dt.datetime | None,
        ctx: RequestContext,
    ) -> Iterator[UserPage]:
        self._check_product(product)
        conn = _Connection(self, settings)
        soql = user_query(product, settings, since)
        namespace = settings.get("package_namespace")
        package_role = f"package:{namespace}" if namespace and product == "salesforce" else None
        return self._pages(conn, soql, package_role, ctx)

    @staticmethod
    def _pages(
        conn: _Connection, soql: str, package_role: str | None, ctx: RequestContext
    ) -> Iterator[UserPage]:
        conn.open(ctx)
        headers = {"Sforce-Query-Options": f"batchSize={PAGE_SIZE}"}
        refresh = _refresher(conn)
        result = ctx.call(
            lambda: conn.run(lambda sf: sf.query(soql, headers=headers)), refresh=refresh
        )
        while True:
            try:
                users = [_to_user(r, package_role) for r in result["records"]]
                done = bool(result["done"])
                next_url = None if done else str(result["nextRecordsUrl"])
            except (KeyError, TypeError, ValueError):
                raise MalformedResponse(
                    "Salesforce sent a query page without records/done/nextRecordsUrl"
                ) from None
            yield UserPage(users=users)
            if next_url is None:
                return
            result = ctx.call(
                lambda url=next_url: conn.run(
                    lambda sf: sf.query_more(url, identifier_is_url=True, headers=headers)
                ),
                refresh=refresh,
            )

    @hookimpl
    def seatgate_install(self, account: str, product: str, settings: Mapping[str, Any]) -> bool:
        self._check_product(product)
        ctx = RequestContext()
        conn = _Connection(self, settings)
        conn.open(ctx)
        record_id = format_external_id(INSTALL_KEY, f"{account}:{product}")
        fields = {"Account__c": account, "Product__c": product}
        ctx.call(
            lambda: conn.run(lambda sf: getattr(sf, INSTALL_OBJECT).upsert(record_id, fields)),
            refresh=_refresher(conn),
        )
        return True

    @hookimpl
    def seatgate_uninstall(self, account: str, product: str, settings: Mapping[str, Any]) -> bool:
        self._check_product(product)
        ctx = RequestContext()
        conn = _Connection(self, settings)
        conn.open(ctx)
        record_id = format_external_id(INSTALL_KEY, f"{account}:{product}")

        def delete(sf: Salesforce) -> None:
            # Already gone means already uninstalled: uninstall is idempotent.
            with contextlib.suppress(SalesforceResourceNotFound):
                getattr(sf, INSTALL_OBJECT).delete(record_id)

        ctx.call(lambda: conn.run(delete), refresh=_refresher(conn))
        return True


def _refresher(conn: _Connection) -> Callable[[], None] | None:
    return conn.refresh if conn.can_refresh else None


plugin = SalesforceAdapter()
