"""The ServiceNow adapter: users from the Table API (``sys_user``) through pysnow 0.7.17.

Request cost of one pull (``page_size`` = 10,000 by default):

- ``sys_user``: ``ceil(users / page_size)`` requests, the minimum: keyset paging in sys_id order
  (``sys_id>`` the last one read, ``sysparm_limit``), until ``X-Total-Count`` says the page held
  all that was left. Not ``sysparm_offset``, and not the ``Link`` headers (which pysnow's Resource
  API does not follow anyway): offsets skip a user whenever another one changes during the pull.
- roles, by ``roles_source``, for the roles that matter: the ``roles`` setting if given, else the
  connector's activated roles (``activated_roles``, the only roles the core acts on: auto install).
  ``"sys_user_has_role"`` (the default: the authoritative grants) adds ``ceil(grants / page_size)``
  requests on a full pull for the grants of those roles, read in bulk with the dot-walked
  ``role.name`` (never one request per user), and on an incremental pull only the grants of the
  users changed since the cursor (dot-walked ``user.sys_updated_on>=``): one request for a 1%
  change, plus one for the grants changed since the cursor (granting a role need not touch the
  user's sys_user record); users whose grants changed but whose record did not are then read by
  sys_id, with their grants, two requests per 100 of them. A grant deleted outright leaves no
  record to find: the next full pull sees it. A user changed while the pull runs costs one more
  request for its page (see :class:`_Roles`). When no role matters (no ``roles``, no activated roles) it reads no grants at
  all: the pull costs the minimum, and the users carry no roles, which is all auto install needs.
  ``"roles_field"`` reads the user's ``roles`` column instead, at no extra request (all of the
  user's roles when none is named).
  ``"none"`` reads no roles at no extra request.
- OAuth: one ``/oauth_token.do`` request per run (basic auth: none).

So 100,000 users cost 10 requests (plus 1 with OAuth) with ``roles_field``, ``none``, or the
default without activated roles; with one activated role each, 20 with the default; an
incremental pull of 1,000 changed users 1 (none activated) or 3 (plus 1).

The next page (of users, and of grants) is read by a worker thread while the engine maps and stores
the current one, one request in flight at a time (:func:`seatgate.core.plugins.kit.pages`, which
also stops a listing that hands back a cursor it already gave): a pull takes about the longer of
the CRM's time and the engine's, not their sum.

What is ServiceNow's stays here (basic auth and OAuth, the encoded queries, the field mapping,
``sys_updated_on``, the keyset on ``sys_id``); HTTP statuses become seatgate's errors through the
kit (:func:`~seatgate.core.plugins.kit.error_for_status`, with ``Retry-After`` and
``X-RateLimit-Reset`` read by :func:`~seatgate.core.plugins.kit.throttle_wait`).

Every request, the token request included, passes the instance's shared throttle: a transport
adapter on each session pysnow builds, and on the token request's own session (pysnow's
``generate_token`` would use one out of its reach, so the adapter makes that request itself,
the same way). A 429's wait pauses the instance for every run on it, in this process or across a
fleet (:mod:`seatgate.core.plugins.transports`).

Every request runs through :meth:`RequestContext.call`; pysnow and requests have no retries of their
own here (requests' adapters default to ``max_retries=0``; the OAuth session gets no auto-refresh
URL), so the core's policy is the only one. Every answer is read, writes included: pysnow's
``create`` returns before looking at the status, so an install whose marker ServiceNow refused
would otherwise report success. A refused write is one line naming what the integration user needs
(:data:`WRITE_PERMISSION`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import math
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pysnow
import requests
from oauthlib.oauth2 import LegacyApplicationClient, OAuth2Error, TokenExpiredError
from pysnow.exceptions import MissingResult, PysnowException, ResponseError
from requests_oauthlib import OAuth2Session

from seatgate.adapters.servicenow.declaration import FEATURES, NAME, PRODUCT
from seatgate.core.plugins import (
    AdapterError,
    AdapterInfo,
    AuthFailed,
    BadInput,
    ConfigSchema,
    ExternalUser,
    Field,
    MalformedResponse,
    RequestContext,
    TokenExpired,
    TransientError,
    UserPage,
    hookimpl,
    kit,
    require_tls,
    reveal,
    timeout_field,
)
from seatgate.core.plugins.throttle import InstanceThrottle
from seatgate.core.plugins.transports import throttle_session

T = TypeVar("T")
UTC = dt.UTC
_fromisoformat = dt.datetime.fromisoformat

VERSION = "0.1.0"
CRM = "ServiceNow"
# Each GlideRecord write commits on its own, so a change shows late only by the app nodes' clock
# skew and read-replica lag: seconds. Two minutes cover them with room; the re-read costs one page.
LOOKBACK_SECONDS = 120
# What the integration user needs (docs/adapters.md lists them).
READ_PERMISSION = "read access (ACL) to sys_user and sys_user_has_role (e.g. the user_admin role)"
WRITE_PERMISSION = (
    "read, create and delete on sys_properties for x_seatgate.installation.* "
    "(the admin role, or ACLs granting them)"
)
# The Table API's cap on sysparm_limit (glide.db.max_view_records / REST max, 10,000 by default).
MAX_PAGE = 10_000
ROLE_SOURCES = ("sys_user_has_role", "roles_field", "none")
GRANT_FIELDS = ["sys_id", "user", "role.name", "user.sys_updated_on"]
REGRANT_FIELDS = ["sys_id", "user", "sys_updated_on"]
# Users read by sys_id in one request (sys_idIN...): 100 ids keep the URL near 3.5 KB.
_BY_ID = 100
USER_FIELDS = (
    "sys_id",
    "user_name",
    "email",
    "first_name",
    "last_name",
    "name",
    "active",
    "locked_out",
    "sys_updated_on",
)
STAMP_FORMAT = "%Y-%m-%d %H:%M:%S"

# requests-oauthlib logs the token request body (password, client secret) and the tokens at DEBUG;
# those records must never reach a handler, whoever configures logging.
logging.getLogger("requests_oauthlib.oauth2_session").addFilter(
    lambda record: record.levelno > logging.DEBUG
)

CONFIG_SCHEMA = ConfigSchema(
    fields=(
        Field("instance", description="instance name: acme for https://acme.service-now.com"),
        Field(
            "base_url",
            description="instead of instance: https://host[:port]; http only for 127.0.0.1/localhost",
        ),
        Field("username", required=True, description="the integration user"),
        Field("password", secret=True, description="the integration user's password"),
        Field("client_id", description="OAuth: the application registry's client id"),
        Field("client_secret", secret=True, description="OAuth: the client secret"),
        timeout_field(60),
        Field(
            "page_size",
            type="integer",
            default=MAX_PAGE,
            minimum=1,
            maximum=MAX_PAGE,
            description=f"records per request, at most {MAX_PAGE} (lower it only if the instance does)",
        ),
        Field(
            "user_query",
            default="",
            description="encoded query selecting the integration users, e.g. department=ops; "
            "do not filter on active, full pulls must see deactivated users; no ORDERBY, the "
            "pull pages in sys_id order; no ^NQ (use ^OR)",
        ),
        Field(
            "roles_source",
            default="sys_user_has_role",
            choices=ROLE_SOURCES,
            description="where roles come from: sys_user_has_role in bulk, sys_user.roles, or "
            "none (no roles: only for installations without activated roles)",
        ),
        Field(
            "roles",
            type="list",
            default=[],
            description="role names that matter for auto install; empty means the connector's "
            "activated roles",
        ),
    ),
    auth={
        "basic": ("username", "password"),
        "oauth": ("client_id", "client_secret", "username", "password"),
    },
)

EXAMPLE_CONFIG: dict[str, Any] = {
    "instance": "dev12345",
    "username": "seatgate.integration",
    "password": "${SERVICENOW_PASSWORD}",
    "client_id": "3f0c1e2d4b5a69788796a5b4c3d2e1f0",
    "client_secret": "${SERVICENOW_CLIENT_SECRET}",
}

# ---------------------------------------------------------------------------------------------------
# Connecting
# ---------------------------------------------------------------------------------------------------


def _host_of(settings: Mapping[str, Any]) -> tuple[str, bool]:
    """``(host[:port], use_ssl)`` from ``instance`` or ``base_url``; plain http only on loopback."""
    instance, base_url = settings.get("instance"), settings.get("base_url")
    if bool(instance) == bool(base_url):
        raise BadInput("config", "instance/base_url", "exactly one of instance or base_url")
    if instance:
        return f"{instance}.service-now.com", True
    parts = urlsplit(require_tls(str(base_url), "base_url", "https://dev12345.service-now.com"))
    if parts.path not in ("", "/") or parts.query:
        raise BadInput("config base_url", base_url, "a URL without path or query")
    return parts.netloc, parts.scheme == "https"


_insecure_lock = threading.Lock()
_insecure_users = 0


@contextlib.contextmanager
def _loopback_oauth() -> Iterator[None]:
    """Let oauthlib send a token over plain http, for a loopback host (the sandbox) only.

    oauthlib refuses http unless OAUTHLIB_INSECURE_TRANSPORT is set; it reads the variable at each
    call, so it is set for the duration of the call (counted, for concurrent runs) and then removed.
    """
    global _insecure_users
    with _insecure_lock:
        if _insecure_users == 0:
            os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
        _insecure_users += 1
    try:
        yield
    finally:
        with _insecure_lock:
            _insecure_users -= 1
            if _insecure_users == 0:
                os.environ.pop("OAUTHLIB_INSECURE_TRANSPORT", None)


class Client:
    """A pysnow client for one run, and how to get a fresh session when ServiceNow says 401."""

    def __init__(self, settings: Mapping[str, Any], ctx: RequestContext) -> None:
        host, use_ssl = _host_of(settings)
        self.settings = settings
        self.ctx = ctx
        self.timeout = float(settings.get("timeout") or 60)
        self.page_size = int(settings.get("page_size") or MAX_PAGE)
        if not 1 <= self.page_size <= MAX_PAGE:
            raise BadInput("config page_size", self.page_size, f"1 to {MAX_PAGE}")
        user_query = str(settings.get("user_query") or "")
        if "ORDERBY" in user_query.upper():
            # The pull pages by sys_id (keyset); another order would break it.
            raise BadInput("config user_query", user_query, "an encoded query without ORDERBY")
        if "^NQ" in user_query:
            # ^NQ ORs whole queries and binds looser than ^: the keyset (sys_id>), since
            # (sys_updated_on>=) and lookup (sys_idIN) terms appended with ^ would bound the last
            # query alone, and the others would answer every page again.
            raise BadInput(
                "config user_query",
                user_query,
                "an encoded query without ^NQ (one query: ^OR joins alternatives within it)",
            )
        self.transport: Callable[[], contextlib.AbstractContextManager[None]] = (
            _loopback_oauth if not use_ssl else contextlib.nullcontext
        )
        self.oauth = "client_id" in settings or "client_secret" in settings
        if self.oauth and not ("client_id" in settings and "client_secret" in settings):
            raise BadInput(
                "config auth", "incomplete", "both client_id and client_secret for OAuth"
            )
        # Every request (the token's too) passes the shared throttle of the instance: a
        # Retry-After or a spent hourly rule one run is given pauses every run on it.
        self.throttle = InstanceThrottle(
            CRM, rule=kit.retry_after_rule, max_wait=ctx.policy.max_retry_after
        )
        self.client: pysnow.Client
        if self.oauth:
            self.client = pysnow.OAuthClient(
                client_id=settings["client_id"],
                client_secret=reveal(settings["client_secret"]),
                host=host,
                use_ssl=use_ssl,
            )
            self.ctx.call(self._fetch_token)
        else:
            self.client = pysnow.Client(
                host=host,
                use_ssl=use_ssl,
                user=settings["username"],
                password=reveal(settings["password"]),
            )
            throttle_session(self.client.session, self.throttle)

    def __repr__(self) -> str:
        return f"<ServiceNow connection {self.client.base_url}>"

    def _fetch_token(self) -> None:
        assert isinstance(self.client, pysnow.OAuthClient)
        # pysnow's generate_token, on a session that passes the throttle (pysnow's own would not).
        session = OAuth2Session(client=LegacyApplicationClient(client_id=self.client.client_id))
        throttle_session(session, self.throttle)
        try:
            with self.transport(), session:
                token = session.fetch_token(
                    token_url=self.client.token_url,
                    username=self.settings["username"],
                    password=reveal(self.settings["password"]),
                    client_id=self.client.client_id,
                    client_secret=self.client.client_secret,
                    timeout=self.timeout,
                )
        except OAuth2Error as exc:
            # ServiceNow answers refused credentials with 401 {"error": "server_error",
            # "error_description": "access_denied"}: the words tell, not the status.
            words = f"{exc.description} {exc.error}".lower()
            if any(w in words for w in ("access_denied", "invalid_grant", "invalid_client")):
                raise AuthFailed(
                    "ServiceNow refused the OAuth credentials: check client_id, client_secret, "
                    "username and password"
                ) from None
            raise TransientError("ServiceNow's token endpoint failed; try again later") from None
        except requests.RequestException as exc:
            raise _from_requests(exc) from None
        self.client.set_token(dict(token))

    def refresh(self) -> Callable[[], None] | None:
        """What the core calls once on TokenExpired: a new OAuth token (basic auth has none)."""
        return self._fetch_token if self.oauth else None

    def resource(self, table: str) -> Any:
        resource = self.client.resource(api_path=f"/table/{table}")
        # OAuthClient.resource() takes no request options; the Resource keeps them in .kwargs.
        resource.kwargs["timeout"] = self.timeout
        session = resource.kwargs.get("session")
        if isinstance(session, OAuth2Session):
            # Its silent refresh would be an uncounted request and a second refresh path; an
            # expired token surfaces as TokenExpiredError and the core refreshes once instead.
            session.auto_refresh_url = None
            # pysnow makes a new OAuth session for each resource: the throttle goes on each.
            throttle_session(session, self.throttle)
        return resource

    def get_page(
        self,
        table: str,
        query: str,
        fields: list[str],
        offset: int,
        limit: int,
        *,
        permission: str = READ_PERMISSION,
    ) -> tuple[list[dict[str, Any]], int | None]:
        """One GET of the Table API, under the retry policy: ``(records, total or None)``; a 403
        names ``permission``."""

        def fetch() -> tuple[list[dict[str, Any]], int | None]:
            # A new Resource each attempt: after a refresh the OAuth session carries the new token.
            resource = self.resource(table)
            try:
                with self.transport():
                    response = resource.get(
                        query=query,
                        limit=limit,
                        offset=offset,
                        fields=fields,
                        exclude_reference_link=True,
                    )
                records = response.all()
            except requests.HTTPError as exc:
                if _is_no_record(exc.response):
                    return [], 0  # older releases answer an empty match with 404
                raise self._from_http(exc, permission=permission) from None
            except Exception as exc:
                raise self._from_client(exc, table) from None
            if not isinstance(records, list):
                raise MalformedResponse(f"ServiceNow sent a {table} page that is not a list")
            total = response.headers.get("X-Total-Count")
            return records, int(total) if total and total.isdigit() else None

        return self.ctx.call(fetch, refresh=self.refresh())

    def write(self, table: str, write: kit.Write, *, record: str = "", payload: Any = None) -> None:
        """One write (a create with ``payload``, else a delete of ``record``) under the retry
        policy; its answer is read, so a refusal is an error naming ``write.permission``. A
        delete of a record already gone is done (uninstall is idempotent)."""

        def send() -> None:
            resource = self.resource(table)
            try:
                with self.transport():
                    if payload is not None:
                        response = resource.create(payload)
                    else:
                        response = resource.request("DELETE", path_append=f"/{record}")
                    # pysnow returns before looking at the status: reading the answer raises.
                    response.all()
            except requests.HTTPError as exc:
                if payload is None and exc.response is not None and exc.response.status_code == 404:
                    return
                raise self._from_http(exc, write=write) from None
            except Exception as exc:
                raise self._from_client(exc, table) from None

        self.ctx.call(send, refresh=self.refresh())

    def _from_client(self, exc: Exception, table: str) -> Exception:
        """The core's error for what pysnow, oauthlib or requests raised (not an HTTP status)."""
        if isinstance(exc, MissingResult | ValueError):
            # Before RequestException: requests' JSONDecodeError is both.
            return MalformedResponse(
                f"ServiceNow sent an unreadable {table} answer ({type(exc).__name__}); "
                "retry later, and report it if it persists"
            )
        if isinstance(exc, ResponseError):
            return MalformedResponse(f"ServiceNow answered {table} with an error: {exc.message}")
        if isinstance(exc, TokenExpiredError):
            return TokenExpired("the OAuth token for ServiceNow expired")
        if isinstance(exc, requests.RequestException):
            return _from_requests(exc)
        if isinstance(exc, PysnowException):
            return MalformedResponse(f"ServiceNow {table}: {type(exc).__name__}")
        return exc

    def _from_http(
        self,
        exc: requests.HTTPError,
        *,
        write: kit.Write | None = None,
        permission: str = READ_PERMISSION,
    ) -> AdapterError:
        response = exc.response
        status = response.status_code if response is not None else 0
        headers: Mapping[str, str] = response.headers if response is not None else {}
        rule = headers.get("X-RateLimit-Rule")
        # Rate-limit rules count per hour: the kit ends the run on a wait longer than the policy
        # accepts (a spent quota) rather than hot-retrying.
        detail = f"rate-limit rule {rule}" if status == 429 and rule else _error_message(response)
        common: dict[str, Any] = {
            "crm": CRM,
            "detail": detail,
            "retry_after": kit.throttle_wait(headers),
            "max_retry_after": self.ctx.policy.max_retry_after,
            "can_refresh": self.oauth,
            "credentials": "username and password"
            + (", client_id and client_secret" if self.oauth else ""),
        }
        if write is not None:
            return kit.refused_write(
                status, action=write.action, permission=write.permission, **common
            )
        if status == 400:
            # An encoded query the instance refuses: the connector's own part is user_query.
            return AdapterError(f"ServiceNow refused the query ({detail}); check user_query")
        return kit.error_for_status(status, permission=permission, **common)


INSTALL_WRITE = kit.Write("create the installation marker in sys_properties", WRITE_PERMISSION)
UNINSTALL_WRITE = kit.Write("delete the installation marker from sys_properties", WRITE_PERMISSION)


def _is_no_record(response: requests.Response | None) -> bool:
    return (
        response is not None
        and response.status_code == 404
        and (_error_message(response) == "No Record found")
    )


def _error_message(response: requests.Response | None) -> str:
    """ServiceNow's ``error.message``, one line; empty when the answer has none."""
    if response is None:
        return ""
    try:
        error = response.json().get("error") or {}
        return " ".join(str(error.get("message") or "").split())[:200]
    except (ValueError, AttributeError):
        return ""


def _from_requests(exc: requests.RequestException) -> AdapterError:
    # Timeouts and connection resets; the message names the kind, never the URL (it has queries).
    return kit.transport_error(
        CRM, exc, timed_out=isinstance(exc, requests.Timeout), url_setting="instance or base_url"
    )


# ---------------------------------------------------------------------------------------------------
# Mapping
# ---------------------------------------------------------------------------------------------------


def _stamp(value: Any) -> dt.datetime | None:
    if not value:
        return None
    try:
        return _parse_stamp(value if type(value) is str else str(value))
    except ValueError:
        return None


def _parse_stamp(value: str) -> dt.datetime:
    # "YYYY-MM-DD HH:MM:SS" in UTC. fromisoformat is ten times faster than strptime, and parsing
    # the offset with it is six times faster than .replace(tzinfo=...): 0.1 s a 100k-user pull.
    if len(value) == 19:
        return _fromisoformat(value + "+00:00")
    return _fromisoformat(value).replace(tzinfo=UTC)


def _value(field: Any) -> str:
    # A reference renders as {"link", "value"} unless sysparm_exclude_reference_link=true.
    if isinstance(field, dict):
        return str(field.get("value", ""))
    return "" if field is None else str(field)


_FLAG = ("true", "false")
_LOCKED = ("false", "true", "", None)  # an empty or absent locked_out is not locked


def to_user(record: Mapping[str, Any], roles: tuple[str, ...]) -> ExternalUser:
    """Map a ``sys_user`` record (string booleans, UTC date strings) to the core's user.

    An ``active`` that is neither ``"true"`` nor ``"false"``, or a ``locked_out`` that is none of
    those nor empty, is this record's problem (the core quarantines it, ``malformed_record``):
    read as false it would deactivate the user on a guess. A ``sys_updated_on`` that does not
    parse leaves the record without a stamp, as before (it only moves the cursor).

    :raises MalformedResponse: a record without ``sys_id`` (it drives the keyset paging, and the
        record could be neither quarantined nor counted as seen).
    """
    # The hot loop of a pull: plain strings are taken as they are, anything else via _value.
    get = record.get
    sys_id, email, name, user_name = get("sys_id"), get("email"), get("name"), get("user_name")
    if type(sys_id) is not str:
        sys_id = _value(sys_id)
    if not sys_id:
        raise MalformedResponse("ServiceNow sent a sys_user record without sys_id")
    if type(email) is not str:
        email = _value(email)
    if type(name) is not str or not name:
        name = f"{_value(get('first_name'))} {_value(get('last_name'))}".strip()
    stamp = get("sys_updated_on")
    if stamp:
        try:
            stamp = _parse_stamp(stamp) if type(stamp) is str else _stamp(stamp)
        except ValueError:
            stamp = None
    else:
        stamp = None
    active, locked = get("active"), get("locked_out")
    if active not in _FLAG or locked not in _LOCKED:
        field, value = ("active", active) if active not in _FLAG else ("locked_out", locked)
        shown = repr(value[:20]) if type(value) is str else type(value).__name__
        return ExternalUser(sys_id, email or None, problem=f"{field} {shown} is not true or false")
    return ExternalUser(
        sys_id,
        email or None,
        name,
        active == "true" and locked != "true",
        roles,
        stamp,
        {"user_name": user_name if type(user_name) is str else _value(user_name)},
    )


@functools.lru_cache(maxsize=4096)
def _split_roles(value: str, wanted: frozenset[str]) -> tuple[str, ...]:
    # Cached: a handful of distinct role lists cover most users.
    names = {r.strip() for r in value.split(",") if r.strip()}
    return tuple(sorted(n for n in names if not wanted or n in wanted))


# ---------------------------------------------------------------------------------------------------
# The plugin
# ---------------------------------------------------------------------------------------------------


class ServiceNowAdapter:
    """ServiceNow users (``sys_user``) and their roles, for the ``servicenow`` product."""

    def __repr__(self) -> str:
        return "ServiceNowAdapter()"

    @hookimpl
    def seatgate_adapter_info(self) -> AdapterInfo:
        return AdapterInfo(
            name=NAME,
            products=(PRODUCT,),
            version=VERSION,
            # No managed_package: ServiceNow apps are scoped Store apps, there is no managed package.
            features=FEATURES,
            config_schema=CONFIG_SCHEMA,
            example_config=EXAMPLE_CONFIG,
            supports_cursor=True,
            page_size=MAX_PAGE,
            description="ServiceNow Table API (sys_user, sys_user_has_role) via pysnow",
            lookback_seconds=LOOKBACK_SECONDS,
        )

    @hookimpl
    def seatgate_check_connection(
        self, product: str, settings: Mapping[str, Any], ctx: RequestContext
    ) -> bool:
        _check_product(product)
        conn = Client(settings, ctx)
        conn.get_page("sys_user", "ORDERBYsys_id", ["sys_id"], 0, 1)
        return True

    @hookimpl
    def seatgate_pull_users(
        self,
        product: str,
        settings: Mapping[str, Any],
        since: dt.datetime | None,
        ctx: RequestContext,
        activated_roles: frozenset[str],
    ) -> Iterator[UserPage]:
        _check_product(product)
        # Validate and connect before the first page is asked for, so bad settings fail the call.
        conn = Client(settings, ctx)
        return _pull(conn, settings, since, activated_roles)

    @hookimpl
    def seatgate_install(self, account: str, product: str, settings: Mapping[str, Any]) -> bool:
        _check_product(product)
        client = Client(settings, RequestContext())
        name = _marker(account, product)
        found, _ = client.get_page(
            "sys_properties", f"name={name}", ["sys_id"], 0, 1, permission=WRITE_PERMISSION
        )
        if not found:
            marker = {"name": name, "value": "installed", "type": "string"}
            client.write("sys_properties", INSTALL_WRITE, payload=marker)
        return True

    @hookimpl
    def seatgate_uninstall(self, account: str, product: str, settings: Mapping[str, Any]) -> bool:
        _check_product(product)
        client = Client(settings, RequestContext())
        name = _marker(account, product)
        found, _ = client.get_page(
            "sys_properties", f"name={name}", ["sys_id"], 0, MAX_PAGE, permission=WRITE_PERMISSION
        )
        for record in found:
            client.write("sys_properties", UNINSTALL_WRITE, record=_value(record.get("sys_id")))
        return True


def _check_product(product: str) -> None:
    if product != PRODUCT:
        raise BadInput("product", product, (PRODUCT,))


def _marker(account: str, product: str) -> str:
    # A system property per installation: visible to the CRM admin, removable, found by name.
    return f"x_seatgate.installation.{product}.{account}"


def _user_query(settings: Mapping[str, Any], since: dt.datetime | None, after: str) -> str:
    parts = []
    if settings.get("user_query"):
        parts.append(str(settings["user_query"]))
    if since is not None:
        parts.append(f"sys_updated_on>={_format(since)}")
    # Keyset paging on sys_id, not sysparm_offset: a user changed during the pull would move in a
    # sys_updated_on order and shift every later offset by one, so one user would be skipped (and
    # a full pull would take them for deactivated). sys_id never changes, so nobody moves.
    if after:
        parts.append(f"sys_id>{after}")
    parts.append("ORDERBYsys_id")
    return "^".join(parts)


# A grant map: user sys_id -> (the user's sys_updated_on when the grants were read, role names).
Grants = dict[str, tuple[str, tuple[str, ...]]]


def _grant_query(wanted: frozenset[str], condition: str, active: bool = True) -> str:
    terms = ["state=active"] if active else []
    if wanted:
        terms.append("role.nameIN" + ",".join(sorted(wanted)))
    return "^".join(terms) + condition + "^ORDERBYsys_id"


def _grant_records(
    conn: Client,
    wanted: frozenset[str],
    condition: str,
    fields: list[str],
    active: bool = True,
) -> Iterator[dict[str, Any]]:
    """sys_user_has_role records of the ``wanted`` roles (only active grants unless ``active`` is
    False), a page per 10,000, keyset-paged on sys_id (the next page read while this one is
    used); ``condition`` narrows them (``^...``)."""
    limit = conn.page_size

    def fetch(after: str) -> tuple[list[dict[str, Any]], str | None]:
        keyset = f"^sys_id>{after}" if after else ""
        query = _grant_query(wanted, condition + keyset, active)
        records, total = conn.get_page("sys_user_has_role", query, fields, 0, limit)
        if _done(len(records), len(records), total, limit):
            return records, None
        return records, _last_key(records, after, "sys_user_has_role")

    with contextlib.closing(kit.pages(fetch, "", name="servicenow-grants", crm=CRM)) as pages:
        for page in pages:
            yield from page


def _load_roles(conn: Client, wanted: frozenset[str], condition: str = "") -> Grants:
    """Active grants of the ``wanted`` roles, as role names per user with the dot-walked
    ``user.sys_updated_on`` (for :class:`_Roles`' staleness check)."""
    grants: dict[str, tuple[str, set[str]]] = {}
    for record in _grant_records(conn, wanted, condition, GRANT_FIELDS):
        role = _value(record.get("role.name"))
        if role:
            user = _value(record.get("user"))
            entry = grants.get(user)
            if entry is None:
                grants[user] = (_value(record.get("user.sys_updated_on")), {role})
            else:
                entry[1].add(role)
    return {user: (stamp, tuple(sorted(roles))) for user, (stamp, roles) in grants.items()}


def _regranted(conn: Client, wanted: frozenset[str], since: str) -> dict[str, str]:
    """Users with a grant of the ``wanted`` roles changed at or after ``since`` (added, or made
    active or inactive), with the newest such change: granting a role need not touch the
    user's own sys_user record, so an incremental pull of sys_user alone would not see it."""
    users: dict[str, str] = {}
    condition = f"^sys_updated_on>={since}"
    for record in _grant_records(conn, wanted, condition, REGRANT_FIELDS, active=False):
        user, stamp = _value(record.get("user")), _value(record.get("sys_updated_on"))
        if user and stamp > users.get(user, ""):
            users[user] = stamp
    return users


def _last_key(records: list[dict[str, Any]], after: str, table: str) -> str:
    """The sys_id to page on from; a page that does not move past ``after`` would loop."""
    last = _value(records[-1].get("sys_id")) if records else ""
    if records and (not last or last <= after):
        raise MalformedResponse(
            f"ServiceNow sent a {table} page out of sys_id order: the listing would loop; "
            "retry later, and report it if it persists"
        )
    return last


def _done(count: int, offset: int, total: int | None, limit: int) -> bool:
    if not count:
        return True
    if total is not None:
        return offset >= total
    return count < limit


class _Roles:
    """Role names for the users of a pull, by ``roles_source``.

    ``sys_user_has_role`` reads the grants of the roles that matter once, before the first user
    page, in bulk: ``ceil(grants / 10,000)`` requests, the fewest (a read per user page would cost
    one a page however few the grants). On a full pull all of them; on an incremental pull only
    those of the users changed since the cursor (a dot-walked ``user.sys_updated_on>=``
    condition), so a 1% incremental costs one grants page. Each grant carries its user's
    ``sys_updated_on``. A user whose record has moved on since the grants were read (changed
    during the pull), or who has no grant and changed after the newest user read so far, is not
    trusted: the grants of that page's window of change stamps are read again (one request per
    page that has such users, none in the usual case), so nobody loses roles for having changed
    during the pull.
    """

    def __init__(
        self,
        conn: Client,
        settings: Mapping[str, Any],
        since: dt.datetime | None,
        activated: frozenset[str],
    ) -> None:
        self.conn = conn
        self.wanted = frozenset(str(r) for r in settings.get("roles") or ()) or activated
        self.source = settings.get("roles_source") or ROLE_SOURCES[0]
        if self.source == "sys_user_has_role" and not self.wanted:
            # No role matters to the core: every grant read would cost requests for nothing.
            self.source = "none"
        self.grants: Grants = {}
        self.checked = ""  # users without grants changed up to this stamp truly have none
        # Incremental pulls: users whose grants changed since the cursor, with the newest change.
        self.regranted: dict[str, str] = {}
        if self.source == "sys_user_has_role":
            condition = f"^user.sys_updated_on>={_format(since)}" if since is not None else ""
            self.grants = _load_roles(conn, self.wanted, condition)
            self.checked = max((stamp for stamp, _ in self.grants.values()), default="")
            if since is not None:
                self.regranted = _regranted(conn, self.wanted, _format(since))

    @property
    def fields(self) -> list[str]:
        return [*USER_FIELDS, "roles"] if self.source == "roles_field" else list(USER_FIELDS)

    def users(self, records: list[dict[str, Any]]) -> list[ExternalUser]:
        if self.source == "none" or not records:
            return [to_user(r, ()) for r in records]
        if self.source == "roles_field":
            wanted = self.wanted
            return [to_user(r, _split_roles(_value(r.get("roles")), wanted)) for r in records]
        grants, checked = self.grants, self.checked
        keys: list[str] = []
        stale: dict[str, str] = {}
        for record in records:
            sys_id, stamp = record.get("sys_id"), record.get("sys_updated_on")
            if type(sys_id) is not str:
                sys_id = _value(sys_id)
            if type(stamp) is not str:
                stamp = _value(stamp)
            keys.append(sys_id)
            hit = grants.get(sys_id)
            if (stamp != hit[0]) if hit is not None else (stamp > checked):
                stale[sys_id] = stamp
        if stale:
            for sys_id in stale:
                grants.pop(sys_id, None)  # no grant in the fresh read: no roles any more
            self._reread(min(stale.values()), max(stale.values()))
        users = []
        for record, sys_id in zip(records, keys, strict=True):
            hit = grants.get(sys_id)
            users.append(to_user(record, hit[1] if hit is not None else ()))
        return users

    def _reread(self, low: str, high: str) -> None:
        window = f"^user.sys_updated_on>={low}^user.sys_updated_on<={high}"
        self.grants.update(_load_roles(self.conn, self.wanted, window))
        self.checked = max(self.checked, high)


def _format(since: dt.datetime) -> str:
    """``since`` as ``sys_updated_on`` compares it: UTC, floored to the second (the stamp's
    precision), so everything on the boundary second stays in. A naive ``since`` is UTC, as the
    core's instants are, never the machine's local time."""
    if since.tzinfo is None:
        since = since.replace(tzinfo=dt.UTC)
    return since.astimezone(dt.UTC).strftime(STAMP_FORMAT)


def _pull(
    conn: Client,
    settings: Mapping[str, Any],
    since: dt.datetime | None,
    activated: frozenset[str],
) -> Iterator[UserPage]:
    roles = _Roles(conn, settings, since, activated)
    fields = roles.fields
    limit = conn.page_size

    # Where a page is mapped. The worker's next request waits for the page it is mapping, so
    # mapping there puts it on the pull's critical path; the caller's thread maps while the worker
    # is already reading the next page. But mapping with sys_user_has_role can re-read grants (see
    # _Roles), a request of its own, and requests must never overlap: those pages are mapped in
    # the worker.
    in_worker = roles.source == "sys_user_has_role"

    def fetch(after: str) -> tuple[list[Any], str | None]:
        query = _user_query(settings, since, after)
        records, total = conn.get_page("sys_user", query, fields, 0, limit)
        last = _last_key(records, after, "sys_user")
        # X-Total-Count counts what is left after ``after``: no request for an empty last page.
        done = _done(len(records), len(records), total, limit)
        return (roles.users(records) if in_worker else records), None if done else last

    seen: set[str] = set()
    with contextlib.closing(kit.pages(fetch, "", name="servicenow-pull", crm=CRM)) as pages:
        for page in pages:
            users = page if in_worker else roles.users(page)
            if roles.regranted:
                seen.update(u.external_id for u in users)
            if users:
                yield UserPage(users=users)
    missing = [user for user in roles.regranted if user not in seen]
    for start in range(0, len(missing), _BY_ID):
        users = _regranted_users(conn, settings, roles, missing[start : start + _BY_ID])
        if users:
            yield UserPage(users=users)


def _regranted_users(
    conn: Client, settings: Mapping[str, Any], roles: _Roles, ids: list[str]
) -> list[ExternalUser]:
    """Users whose grants changed while their sys_user record did not: their records by sys_id,
    with all their current grants. Their change stamp is the newer of the record's and the
    grants', so the cursor moves past the grant change."""
    joined = ",".join(ids)
    grants = _load_roles(conn, roles.wanted, f"^userIN{joined}")
    terms = [str(settings["user_query"])] if settings.get("user_query") else []
    query = "^".join([*terms, f"sys_idIN{joined}", "ORDERBYsys_id"])
    records, _ = conn.get_page("sys_user", query, roles.fields, 0, len(ids))
    users = []
    for record in records:
        sys_id = _value(record.get("sys_id"))
        stamp = max(_value(record.get("sys_updated_on")), roles.regranted.get(sys_id, ""))
        held = grants.get(sys_id)
        users.append(to_user({**record, "sys_updated_on": stamp}, held[1] if held else ()))
    return users


def minimum_requests(users: int) -> int:
    """The fewest sys_user requests a full pull of ``users`` can take."""
    return max(1, math.ceil(users / MAX_PAGE))


plugin = ServiceNowAdapter()
