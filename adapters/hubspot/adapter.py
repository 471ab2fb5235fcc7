"""The HubSpot adapter: owners are the users, on hubspot-api-client 12.

What it pulls: HubSpot **owners** (``GET /crm/v3/owners/``) are the people a contact-center
integration routes to, with email, names, teams and ``updatedAt``. Live and archived owners are two
listings (``archived=false`` / ``archived=true``): a full pull reads both, and archived owners (the
deactivated users) come back ``active=False``.

Incremental pulls: the owners API has no server-side filter on ``updatedAt``, so ``since`` is applied
here, client-side, while still reading every page. It costs as many requests as a full pull, but the
engine then reconciles only the changed owners. ``supports_cursor`` stays True for that reason, with
one caveat the engine cannot see: ``updatedAt`` moves on owner changes (email, names, teams, archive)
but not on a user's *role* in settings, so with ``read_user_roles`` a role change shows up at the
next full pull, not at an incremental one.

Roles for auto install: the owner's team names, plus (``read_user_roles``) the names of the user's
HubSpot roles from the settings users API, which costs one more request per 100 users.

Retries: the client's urllib3 retries a 429 carrying Retry-After by itself and really sleeps; it is
built with ``Retry(0)`` so the core's policy (``ctx.call``, injectable sleep) is the only one.

What is HubSpot's stays here (tokens and their refresh, the owners and users listings, the mapping,
``updatedAt``, the ``DAILY`` policy and ``EXPIRED_AUTHENTICATION`` category); the rest comes from
the plugin kit: statuses as seatgate's errors, ``Retry-After`` and
``X-HubSpot-RateLimit-Interval-Milliseconds``, and the paged loop with read-ahead and the
repeated-cursor guard (owners, then archived owners; the settings users for their roles).

Every request, token refreshes included, passes the portal's shared throttle, on the urllib3 pool
of each API object (:mod:`seatgate.core.plugins.transports`). HubSpot's limits are per app and
portal and every portal is behind ``api.hubapi.com``, so the throttle's key is the base URL and a
digest of the app's credentials (:func:`instance_key`). A 429's wait pauses the portal for every
run; the ``DAILY`` policy pauses it for an hour (:func:`wait_rule`).

Install creates a contact property group (one per platform account); it needs the scopes
``crm.schemas.contacts.read`` and ``crm.schemas.contacts.write`` besides the pull's. A refusal is
one line naming the scope (:data:`INSTALL_SCOPES`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import urllib3
from hubspot import HubSpot
from hubspot.crm.owners.exceptions import ApiException as OwnersApiException
from hubspot.crm.properties.exceptions import ApiException as PropertiesApiException
from hubspot.crm.properties.models import PropertyGroupCreate
from hubspot.oauth.exceptions import ApiException as OAuthApiException
from hubspot.settings.users.exceptions import ApiException as UsersApiException

from seatgate.adapters.hubspot.declaration import FEATURES, NAME, PRODUCTS
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
    RequestContext,
    UserPage,
    hookimpl,
    kit,
    require_tls,
    reveal,
    timeout_field,
    unreadable,
)
from seatgate.core.plugins.throttle import QUOTA_PAUSE, InstanceThrottle
from seatgate.core.plugins.transports import throttle_pool

T = TypeVar("T")

VERSION = "0.1.0"
DEFAULT_BASE_URL = "https://api.hubapi.com"
OWNERS_PAGE_MAX = 500  # "limit: Must be less than or equal to 500"
USERS_PAGE_MAX = 100  # settings users: "maximum 100 users per page"
INSTALL_GROUP_PREFIX = "seatgate_"
INSTALL_LABEL_PREFIX = "seatgate: "
INSTALL_OBJECT_TYPE = "contacts"
CRM = "HubSpot"
# The owners API has no server-side filter: an incremental pull reads every page anyway, so a wide
# window costs no request, only re-applying the few owners changed in it. Owners are a projection
# of the portal's users, updated after a user or team change: 15 minutes cover that lag.
LOOKBACK_SECONDS = 900

# The scopes each call needs (docs/adapters.md lists them).
OWNERS_SCOPE = "the app scope crm.objects.owners.read"
USERS_SCOPE = "the app scope settings.users.read"
INSTALL_SCOPES = "the app scopes crm.schemas.contacts.read and crm.schemas.contacts.write"

_API_ERRORS = (OwnersApiException, UsersApiException, PropertiesApiException, OAuthApiException)

CONFIG_SCHEMA = ConfigSchema(
    fields=(
        Field(
            "access_token",
            secret=True,
            description="private app access token (pat-...), scope crm.objects.owners.read",
        ),
        Field("client_id", description="OAuth app client id (with client_secret, refresh_token)"),
        Field("client_secret", secret=True, description="OAuth app client secret"),
        Field("refresh_token", secret=True, description="OAuth refresh token of the installation"),
        Field(
            "base_url",
            default=DEFAULT_BASE_URL,
            description="API base URL; https, or http on 127.0.0.1/localhost (the sandbox)",
        ),
        timeout_field(30),
        Field(
            "teams",
            type="list",
            default=[],
            description="pull only owners in one of these teams (names); empty: every owner",
        ),
        Field(
            "read_user_roles",
            type="boolean",
            default=False,
            description="add each user's HubSpot role names to its roles (settings users API, "
            "scope settings.users.read; one more request per 100 users)",
        ),
    ),
    auth={
        "private_app": ("access_token",),
        "oauth": ("client_id", "client_secret", "refresh_token"),
    },
)

EXAMPLE_CONFIG: dict[str, Any] = {
    "access_token": "${HUBSPOT_ACCESS_TOKEN}",
    "base_url": DEFAULT_BASE_URL,
    "timeout": 30,
    "teams": ["Support Team"],
    "read_user_roles": True,
}


def check_base_url(url: str) -> str:
    """The base URL without a trailing slash; TLS is required except on a loopback host."""
    return require_tls(url, "base_url", "https://api.hubapi.com")


def _body(exc: Exception) -> dict[str, Any]:
    try:
        data = json.loads(getattr(exc, "body", None) or b"{}")
    except (TypeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def daily_limit_spent(status: int, body: Mapping[str, Any]) -> bool:
    """Whether an answer says the app's daily limit for the portal is spent: ``429`` with
    ``policyName: DAILY`` (HubSpot's "API usage guidelines and limits"; the ``SECONDLY`` and
    ``TEN_SECONDLY_ROLLING`` policies are waits of seconds)."""
    return status == 429 and str(body.get("policyName") or "") == "DAILY"


def wait_rule(status: int, headers: Mapping[str, str], body: Callable[[], bytes]) -> float | None:
    """What an answer asks of every run on the portal (:class:`InstanceThrottle`): the daily
    limit spent (it resets at midnight in the portal's time zone, which the API does not say)
    :data:`QUOTA_PAUSE`; otherwise a 429/503's ``Retry-After`` or rate-limit window."""
    if status == 429:
        try:
            data = json.loads(body() or b"{}")
        except ValueError:
            data = {}
        if isinstance(data, dict) and daily_limit_spent(status, data):
            return QUOTA_PAUSE
    return kit.retry_after_rule(status, headers, body)


def instance_key(base_url: str, settings: Mapping[str, Any]) -> str:
    """The throttle key of a portal: HubSpot's limits are per app and portal, and every portal is
    behind the same base URL, so the key adds a digest of what names the app's installation on
    it (the private app's token, or the OAuth client and refresh token) -- never the secret."""
    if "access_token" in settings:
        who = reveal(settings["access_token"])
    else:
        who = f"{settings.get('client_id')}\n{reveal(settings.get('refresh_token'))}"
    digest = hashlib.blake2b(str(who).encode(), digest_size=8).hexdigest()
    return f"{base_url}#{digest}"


INSTALL_WRITE = kit.Write("create the installation property group", INSTALL_SCOPES)
UNINSTALL_WRITE = kit.Write("archive the installation property group", INSTALL_SCOPES)


def translate(
    exc: Exception,
    *,
    can_refresh: bool,
    scope: str = OWNERS_SCOPE,
    write: kit.Write | None = None,
    longest: float = 300.0,
) -> AdapterError:
    """The core's error for an exception of the client library (one line, no secret): HubSpot's
    own categories and policies first, then the kit's reading of the status. A 403 names
    ``scope``; a refused ``write`` names what it needs."""
    if isinstance(exc, _API_ERRORS):
        status = int(getattr(exc, "status", 0) or 0)
        body = _body(exc)
        category = str(body.get("category") or body.get("status") or "")
        ref = f"correlation id {body['correlationId']}" if body.get("correlationId") else ""
        if daily_limit_spent(status, body):
            return QuotaExhausted(
                f"HubSpot's daily API limit for this app is spent ({ref or 'no correlation id'}): "
                "the run stops; try again after midnight in the portal's time zone"
            )
        expired = status == 401 and category == "EXPIRED_AUTHENTICATION"
        if expired and not can_refresh:
            return AuthFailed(
                f"HubSpot says the access token expired ({ref or category}): private app tokens "
                "do not refresh; put the app's current token in access_token"
            )
        if status in (400, 401) and isinstance(exc, OAuthApiException):
            return AuthFailed(
                f"HubSpot refused the OAuth credentials ({category or status}"
                f"{', ' + ref if ref else ''}): check client_id, client_secret and refresh_token"
            )
        policy = str(body.get("policyName") or "") if status == 429 else ""
        common: dict[str, Any] = {
            "crm": CRM,
            "detail": ", ".join(p for p in (policy or category, ref) if p),
            "retry_after": kit.throttle_wait(getattr(exc, "headers", None)),
            "max_retry_after": longest,
            # Only an expired token is worth a refresh; other 401s are refused credentials.
            "can_refresh": expired,
            "credentials": "access_token (or the OAuth settings) in the config",
        }
        if write is not None:
            return kit.refused_write(
                status, action=write.action, permission=write.permission, **common
            )
        return kit.error_for_status(status, permission=scope, **common)
    if isinstance(exc, urllib3.exceptions.HTTPError):
        timed_out = isinstance(exc, urllib3.exceptions.TimeoutError)
        return kit.transport_error(CRM, exc, timed_out=timed_out)
    return MalformedResponse(
        f"HubSpot sent a response the client could not read ({type(exc).__name__})"
    )


class Client:
    """One client for one run: the API objects (each owns a connection pool) built once."""

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.base_url = check_base_url(str(settings.get("base_url") or DEFAULT_BASE_URL))
        self.timeout = float(settings.get("timeout") or 30)
        self._settings = settings
        self.oauth = "access_token" not in settings
        token = None if self.oauth else reveal(settings["access_token"])
        # Retry(0): no hidden retry nor sleep on 429 + Retry-After; the core's policy decides.
        retry = urllib3.Retry(total=0, redirect=0, respect_retry_after_header=False)
        # client_side_validation: 12.x ships it off, so a page missing required fields would
        # come back as a model full of None instead of an error.
        self.client = HubSpot(
            access_token=token, host=self.base_url, retry=retry, client_side_validation=True
        )
        # Every request (token refreshes too) passes the portal's shared throttle, on the
        # urllib3 pool of each API object.
        self.throttle = InstanceThrottle(
            CRM, key=instance_key(self.base_url, settings), rule=wait_rule
        )
        self.owners = self._throttled(self.client.crm.owners.owners_api)
        self._apis: list[Any] = [self.owners]
        self._users: Any = None
        self._roles: Any = None
        self._groups: Any = None

    @property
    def users(self) -> Any:
        if self._users is None:
            self._users = self._throttled(self.client.settings.users.users_api)
            self._roles = self._throttled(self.client.settings.users.roles_api)
            self._apis += [self._users, self._roles]
        return self._users

    @property
    def roles(self) -> Any:
        _ = self.users
        return self._roles

    @property
    def groups(self) -> Any:
        if self._groups is None:
            self._groups = self._throttled(self.client.crm.properties.groups_api)
            self._apis.append(self._groups)
        return self._groups

    def _throttled(self, api: Any) -> Any:
        throttle_pool(api.api_client.rest_client, self.throttle)
        return api

    def run(
        self,
        fn: Callable[[], T],
        *,
        scope: str = OWNERS_SCOPE,
        write: kit.Write | None = None,
        longest: float = 300.0,
    ) -> T:
        """One request; the library's exceptions become the core's errors (a 403 names
        ``scope``, a refused ``write`` what it needs)."""
        try:
            return fn()
        except (*_API_ERRORS, urllib3.exceptions.HTTPError, ValueError, TypeError) as exc:
            # from None: a chained library exception would print request details into logs.
            error = translate(
                exc, can_refresh=self.oauth, scope=scope, write=write, longest=longest
            )
        raise error from None

    def owners_page(self, after: str | None, archived: bool) -> bytes:
        """One page of owners, its body as HubSpot sent it (JSON; :func:`parse_page` reads it).

        The client still builds, authenticates and sends the request and raises its exceptions;
        only its model deserialisation is skipped (``_preload_content=False``): it parses each
        timestamp with dateutil, 80% of a 100k-owner pull. :func:`_to_user` checks the fields.
        """
        response = self.owners.get_page(
            limit=OWNERS_PAGE_MAX,
            after=after,
            archived=archived,
            _preload_content=False,
            _request_timeout=self.timeout,
        )
        try:
            return bytes(response.data)
        finally:
            response.release_conn()

    def refresh(self) -> None:
        """Get a new OAuth access token with the refresh token (the only refreshable flow)."""
        s = self._settings
        tokens = self._throttled(self.client.oauth.tokens_api)
        try:
            answer = self.run(
                lambda: tokens.create(
                    grant_type="refresh_token",
                    client_id=reveal(s["client_id"]),
                    client_secret=reveal(s["client_secret"]),
                    refresh_token=reveal(s["refresh_token"]),
                    _request_timeout=self.timeout,
                )
            )
        finally:
            _close(tokens)
        self.client.access_token = answer.access_token
        for api in self._apis:
            api.api_client.configuration.access_token = answer.access_token

    def call(
        self,
        ctx: RequestContext,
        fn: Callable[[], T],
        *,
        scope: str = OWNERS_SCOPE,
        write: kit.Write | None = None,
    ) -> T:
        """``fn`` (one request) under the run's retry policy; an expired OAuth token is
        refreshed once."""
        refresh = self.refresh if self.oauth else None
        longest = ctx.policy.max_retry_after
        self.throttle.max_wait = longest
        return ctx.call(
            lambda: self.run(fn, scope=scope, write=write, longest=longest), refresh=refresh
        )

    def start(self, ctx: RequestContext) -> None:
        self.throttle.max_wait = ctx.policy.max_retry_after
        if self.oauth:
            ctx.call(self.refresh)

    def close(self) -> None:
        for api in self._apis:
            _close(api)


def _close(api: Any) -> None:
    # The client never closes its urllib3 pools; left to the GC they warn about open sockets.
    api.api_client.rest_client.pool_manager.clear()


@contextmanager
def session(settings: Mapping[str, Any], ctx: RequestContext | None = None) -> Iterator[Client]:
    s = Client(settings)
    try:
        if ctx is not None:
            s.start(ctx)
        yield s
    finally:
        s.close()


# Where the owners listing is: (archived?, the ``after`` cursor; None for the listing's first page).
Cursor = tuple[bool, str | None]


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _group_name(account: str) -> str:
    # Property group names are lower-case identifiers; the label keeps the account as given.
    return INSTALL_GROUP_PREFIX + re.sub(r"[^a-z0-9_]", "_", account.lower())


class HubSpotAdapter:
    """The HubSpot plugin (product ``hubspot``)."""

    name = NAME

    def __repr__(self) -> str:
        return "HubSpotAdapter()"

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
            page_size=OWNERS_PAGE_MAX,
            description="HubSpot owners (live and archived) via hubspot-api-client; "
            "roles are team names and, optionally, HubSpot user roles",
            lookback_seconds=LOOKBACK_SECONDS,
        )

    @hookimpl
    def seatgate_check_connection(
        self, product: str, settings: Mapping[str, Any], ctx: RequestContext
    ) -> bool:
        _check_product(product)
        with session(settings, ctx) as s:
            s.call(ctx, lambda: s.owners.get_page(limit=1, _request_timeout=s.timeout))
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
        return self._pull(settings, _utc(since), ctx)

    def _pull(
        self, settings: Mapping[str, Any], since: dt.datetime | None, ctx: RequestContext
    ) -> Iterator[UserPage]:
        teams = frozenset(settings.get("teams") or ())
        with session(settings, ctx) as s:
            roles = _user_roles(s, ctx) if settings.get("read_user_roles") else {}

            def fetch(
                at: Cursor,
            ) -> tuple[tuple[bytes | dict[str, Any], str | None], Cursor | None]:
                archived, after = at
                body = s.call(ctx, lambda: s.owners_page(after, archived))
                # The next request needs only the cursor, read from the page's end (its last
                # member): the page itself is parsed below while the worker waits for the next
                # one. A page that does not end in its paging is parsed here, whole.
                page: bytes | dict[str, Any] = body
                found, nxt = tail_cursor(body)
                if not found:
                    page = parse_page(body)
                    nxt = _next_after(page)
                if nxt is None:  # the live listing is followed by the archived one
                    return (page, nxt), None if archived else (True, None)
                return (page, nxt), (archived, nxt)

            # Parsed and mapped here while the worker reads the next page: the next request
            # waits only for the page's cursor, not for the parse nor the mapping (an
            # incremental pull reads every page: its parse was a fifth of it). The kit stops a
            # listing that repeats a cursor. closing(): a pull closed early stops its worker
            # before the session closes.
            first: Cursor = (False, None)
            listing = kit.pages(fetch, first, name="hubspot-pull", crm=CRM)
            with contextlib.closing(listing) as pages:
                for page, nxt in pages:
                    owners = _owners_of(page, nxt)
                    users = []
                    for owner in owners:
                        if since is not None and _older_than(owner, since):
                            continue  # unchanged: not worth mapping (most of an incremental pull)
                        user = _to_user(owner, roles)
                        if user is None or (
                            teams
                            and "teams" in user.raw
                            and not teams.intersection(user.raw["teams"])
                        ):
                            continue
                        users.append(user)
                    if users:
                        yield UserPage(users=users)

    @hookimpl
    def seatgate_install(self, account: str, product: str, settings: Mapping[str, Any]) -> bool:
        _check_product(product)
        name = _group_name(account)
        create = PropertyGroupCreate(
            name=name, label=INSTALL_LABEL_PREFIX + account, display_order=-1
        )
        ctx = RequestContext()
        with session(settings, ctx) as s:
            groups = s.groups
            found = s.call(
                ctx,
                _unless(404, lambda: groups.get_by_name(INSTALL_OBJECT_TYPE, name)),
                scope=INSTALL_SCOPES,
            )
            if found is None:
                # 409: a concurrent install created it first, which is the same end state.
                s.call(
                    ctx,
                    _unless(409, lambda: groups.create(INSTALL_OBJECT_TYPE, create)),
                    write=INSTALL_WRITE,
                )
        return True

    @hookimpl
    def seatgate_uninstall(self, account: str, product: str, settings: Mapping[str, Any]) -> bool:
        _check_product(product)
        name = _group_name(account)
        ctx = RequestContext()
        with session(settings, ctx) as s:
            groups = s.groups
            # 404: already gone; uninstall is idempotent.
            s.call(
                ctx,
                _unless(404, lambda: groups.archive(INSTALL_OBJECT_TYPE, name)),
                write=UNINSTALL_WRITE,
            )
        return True


def _unless(status: int, fn: Callable[[], T]) -> Callable[[], T | None]:
    """``fn``, with the client's exception for ``status`` turned into None."""

    def call() -> T | None:
        try:
            return fn()
        except _API_ERRORS as exc:
            if getattr(exc, "status", None) == status:
                return None
            raise

    return call


def _check_product(product: str) -> None:
    if product not in PRODUCTS:
        raise BadInput("product", product, PRODUCTS)


def _user_roles(s: Client, ctx: RequestContext) -> dict[str, tuple[str, ...]]:
    """HubSpot user id -> role names. Ids and a few interned names, not user records. The users
    listing is paged through the kit: the next page is read while this one is parsed."""
    listing = s.call(ctx, lambda: s.roles.get_all(_request_timeout=s.timeout), scope=USERS_SCOPE)
    names = {str(r.id): r.name for r in listing.results}

    def fetch(after: str) -> tuple[list[Any], str | None]:
        page = s.call(
            ctx,
            lambda: s.users.get_page(
                limit=USERS_PAGE_MAX, after=after or None, _request_timeout=s.timeout
            ),
            scope=USERS_SCOPE,
        )
        nxt = page.paging.next if page.paging else None
        return list(page.results), (str(nxt.after) if nxt is not None and nxt.after else None)

    out: dict[str, tuple[str, ...]] = {}
    with contextlib.closing(kit.pages(fetch, "", name="hubspot-users", crm=CRM)) as pages:
        for users in pages:
            for user in users:
                ids = list(user.role_ids or ([user.role_id] if user.role_id else []))
                out[str(user.id)] = tuple(names.get(i, i) for i in ids)
    return out


def _older_than(owner: Mapping[str, Any], since: dt.datetime) -> bool:
    """True when the owner's ``updatedAt`` is before ``since``; a stamp that does not parse is not
    older (the full mapping then reports it)."""
    try:
        return _utc(dt.datetime.fromisoformat(owner["updatedAt"])) < since  # type: ignore[operator]
    except (KeyError, TypeError, ValueError):
        return False


def parse_page(body: bytes) -> dict[str, Any]:
    """An owners page's JSON. Raises :class:`MalformedResponse` for a body that is not JSON or
    has no ``results`` list (a page cut short)."""
    try:
        data = json.loads(body)
    except ValueError:
        raise MalformedResponse("HubSpot sent an owners page that is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise MalformedResponse("HubSpot sent an owners page without a results list")
    return data


def _owners_of(page: bytes | dict[str, Any], cursor: str | None) -> list[Any]:
    """The owners of a page: parsed already (its cursor was read from the parse), or raw
    ``page``, parsed here, whose next cursor was taken to be ``cursor`` (:func:`tail_cursor`).
    Raises :class:`MalformedResponse` for a raw page that does not parse, or whose own paging
    says otherwise (never for a well-formed page: what :func:`tail_cursor` finds is what the
    parse finds)."""
    if isinstance(page, dict):
        data = page
    else:
        data = parse_page(page)
        if _next_after(data) != cursor:
            raise MalformedResponse("HubSpot sent an owners page whose paging could not be read")
    results: list[Any] = data["results"]
    return results


_PAGING = b'"paging"'
_DECODER = json.JSONDecoder()


def tail_cursor(body: bytes) -> tuple[bool, str | None]:
    """``(found, after)``: the ``after`` cursor of an owners page read without parsing the page,
    from its end, where HubSpot puts ``paging`` (the top-level object's last member).
    ``found`` is False when the page does not end so (another order of members, a body that
    is no JSON object): the caller then parses the page whole (:func:`parse_page`).

    The same as the parse's cursor for every well-formed page: a quote inside a JSON string is
    escaped, so ``"paging"`` followed by ``:`` is a key; the last such key whose value is
    followed by nothing but the closing ``}`` is the top-level object's last member (a key of
    a nested object would be followed by that object's ``}`` and more); and a body with no
    ``"paging"`` at all has no next page. A body not well-formed fails its parse anyway.
    """
    at = body.rfind(_PAGING)
    if at < 0:
        return True, None
    try:
        tail = body[at + len(_PAGING) :].decode()  # a quote never starts inside a UTF-8 sequence
        colon = len(tail) - len(tail.lstrip())
        if tail[colon : colon + 1] != ":":
            return False, None
        start = colon + 1
        start += len(tail[start:]) - len(tail[start:].lstrip())
        value, end = _DECODER.raw_decode(tail, start)
    except ValueError:  # UnicodeDecodeError and JSONDecodeError too
        return False, None
    if tail[end:].strip() != "}":
        return False, None
    return True, _next_after({"paging": value})


def _next_after(page: Mapping[str, Any]) -> str | None:
    paging = page.get("paging")
    nxt = paging.get("next") if isinstance(paging, dict) else None
    after = nxt.get("after") if isinstance(nxt, dict) else None
    return str(after) if after else None


def _to_user(owner: Any, roles: Mapping[str, tuple[str, ...]]) -> ExternalUser | None:
    """An owner (JSON as the owners API sends it) as the core's user; None for a queue.

    A field of one owner that cannot be read (no ``type``, an email or name that is no text,
    an ``archived`` that is not a boolean, teams of the wrong shape, an ``updatedAt`` missing or
    not a date-time) is that owner's alone: the user comes back with its id, its email when
    readable and ``problem`` (and ``raw["teams"]`` when the teams were readable), and the core
    quarantines it (``malformed_record``).

    :raises MalformedResponse: an owner that is not an object, or has no id (the page is not
        what the API promises; without its id the owner can be neither quarantined nor counted
        as seen, so a full pull would deactivate its user).
    """
    key = owner.get("id") if isinstance(owner, dict) else None
    if type(key) not in (str, int) or key == "":
        raise MalformedResponse("HubSpot sent an owner without a valid id")
    key = str(key)
    email = owner.get("email")
    if email is not None and type(email) is not str:
        return ExternalUser(external_id=key, email=None, problem="email is no text")
    kind = owner.get("type")
    if kind is None:
        return _unreadable(key, email, "type is missing")
    if kind != "PERSON":
        return None  # a queue owns records but is nobody's seat
    try:
        teams = tuple(str(t["name"]) for t in owner.get("teams") or ())
    except (KeyError, TypeError):
        return _unreadable(key, email, "teams are not teams with a name")
    first, last = owner.get("firstName"), owner.get("lastName")
    if not all(p is None or type(p) is str for p in (first, last)):
        return _unreadable(key, email, "firstName or lastName is no text", teams)
    archived = owner.get("archived")
    if type(archived) is not bool:
        return _unreadable(key, email, "archived is not true or false", teams)
    stamp = owner.get("updatedAt")
    try:
        modified_at = _utc(dt.datetime.fromisoformat(stamp))
    except (TypeError, ValueError):
        return _unreadable(key, email, unreadable("updatedAt", stamp, "date-time"), teams)
    user_id = owner.get("userIdIncludingInactive") or owner.get("userId")
    extra = roles.get(str(user_id), ()) if user_id is not None else ()
    name = " ".join(p for p in (first, last) if p)
    return ExternalUser(
        external_id=key,
        email=email,
        name=name,
        active=not archived,
        roles=teams + tuple(r for r in extra if r not in teams),
        modified_at=modified_at,
        raw={"userId": user_id, "teams": teams},
    )


def _unreadable(
    key: str, email: str | None, problem: str, teams: tuple[str, ...] | None = None
) -> ExternalUser:
    # Teams read, they still scope the record (``teams`` setting); unread, it is kept.
    raw = {} if teams is None else {"teams": teams}
    return ExternalUser(external_id=key, email=email or None, problem=problem, raw=raw)


plugin = HubSpotAdapter()
