"""The SAP Cloud for Customer adapter: employees are the users, over OData v2 on httpx.

What it pulls: the employees of a collection (``EmployeeCollection`` of the ``c4codataapi``
service by default), in ``$format=json``, each with its business roles through the role-assignment
navigation (``$expand=EmployeeUserBusinessRoleAssignment``) in the same request. Pages are the
server's: 1,000 rows, followed by ``__next`` (``$skiptoken``) until a page comes without one. The
order is made explicit (``$orderby`` on the key), since C4C's skip token counts rows: an employee
created during a pull can only push a row already read onto the next page, never skip one, and
rows read twice are yielded once.

Incremental pulls filter on the change stamp, inclusively:
``$filter=EntityLastChangedOn ge datetimeoffset'...'``. A business role assigned to an employee
is a node of its own with its own stamp, and is not assumed to move the employee's [I]; so with
activated roles, an incremental pull also reads the role assignments changed since the cursor (of
those roles only) and the employees they belong to that the first listing did not return. A role
assignment deleted outright leaves nothing to read: the next full pull sees it.

The mapping, and what of it is confirmed [S] or assumed [I] (reference/crm-apis.md, section 5;
every name is a setting, so a tenant whose service differs is configured, not patched):

============ ========================================= ============================================
core         C4C (setting, default)                    status
============ ========================================= ============================================
external_id  ``id_field`` ObjectID                     [S] the key of EmployeeCollection
email        ``email_field`` Email                     [S] in the metadata
name         ``name_field`` BusinessPartnerFormattedName  [S] in the metadata
active       not ``locked_field`` UserLockedIndicator  [S] the lock; [I] that an employee without
             and a ``user_id_field`` UserID            a ``UserID`` has no user, so no seat
roles        ``roles_navigation``/``role_field``        [S] EmployeeUserBusinessRoleAssignment /
             EmployeeUserBusinessRoleAssignment /      BusinessRoleID (seen expanded so in public
             BusinessRoleID                            code)
modified_at  ``changed_field`` EntityLastChangedOn      [S] filterable Edm.DateTimeOffset
role changes ``role_changes_collection``               [S] in the metadata, filterable on
             EmployeeUserBusinessRoleAssignmentColl.    EntityLastChangedOn; [I] readable at the
             with ``role_parent_field`` ParentObjectID  top level by the integration user
============ ========================================= ============================================

Install and uninstall write one record per platform account to a custom business object the C4C
admin deploys (``install_service``/``install_collection``, fields ``AccountID`` and ``Product``);
its shape is seatgate's own, so nothing there is inferred but its existence on the tenant, which
the hooks check (an empty ``install_collection`` writes nothing).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import time
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

from seatgate.adapters.sap_c4c.client import (
    CRM,
    DEFAULT_SERVICE_PATH,
    Client,
    filter_literal,
    identifier,
    parse_date,
    quote_string,
)
from seatgate.adapters.sap_c4c.declaration import FEATURES, NAME, PRODUCTS
from seatgate.core.plugins import (
    AdapterInfo,
    BadInput,
    ConfigSchema,
    ExternalUser,
    Field,
    MalformedResponse,
    RequestContext,
    RetryPolicy,
    UserPage,
    hookimpl,
    kit,
    timeout_field,
)

T = TypeVar("T")

VERSION = "0.1.0"
PAGE_SIZE = 1000  # "Server side paging: page size fixed at 1000" (C4C OData dev guide)
# Employees read by key per request (``ObjectID eq '...' or ...``): about 2 KB of URL.
KEYS_PER_REQUEST = 40
# Activated roles named in the role-changes filter; past this the filter would make the URL too
# long, and every changed assignment is read instead (still one listing).
ROLES_IN_FILTER = 40
# How far before the cursor an incremental pull re-reads, in seconds. C4C stamps a record when it
# is changed, and a reader sees it when its transaction commits. Saves from the UI or the API
# commit at once, but mass changes (data workbench imports, mass data runs, the role assignments of
# a business-role change) run as background jobs that commit in packages, minutes after the
# first stamps. Ten minutes covers those; it costs one re-read of what changed in them,
# 1,000 employees a page.
LOOKBACK_SECONDS = 600

DEFAULT_INSTALL_SERVICE = "/sap/c4c/odata/cust/v1/seatgate"
DEFAULT_INSTALL_COLLECTION = "SeatgateInstallationRootCollection"

CONFIG_SCHEMA = ConfigSchema(
    fields=(
        Field(
            "base_url",
            required=True,
            description="the tenant, https://myNNNNNN.crm.ondemand.com; http only on "
            "127.0.0.1/localhost (the sandbox)",
        ),
        Field("username", description="Basic auth: the integration (technical) user"),
        Field("password", secret=True, description="Basic auth: its password"),
        Field(
            "access_token",
            secret=True,
            description="bearer auth: an OAuth token of the SAML bearer flow (C4C's OAuth "
            "client registration); it does not refresh",
        ),
        Field("service_path", default=DEFAULT_SERVICE_PATH, description="the OData service"),
        Field(
            "collection",
            default="EmployeeCollection",
            description="the entity set of the users (EmployeeCollection, or a custom one)",
        ),
        Field(
            "filter",
            default="",
            description="an OData $filter that scopes the users (e.g. \"CountryCode eq 'DE'\"); "
            "C4C allows `or` on one property only. Users leaving the scope read as removed",
        ),
        timeout_field(60),
        Field("id_field", default="ObjectID", description="the users' key [S]"),
        Field("email_field", default="Email", description="the e-mail property [S]"),
        Field(
            "name_field",
            default="BusinessPartnerFormattedName",
            description="the display-name property [S]",
        ),
        Field(
            "locked_field",
            default="UserLockedIndicator",
            description="true: the user is locked, so inactive [S]",
        ),
        Field(
            "user_id_field",
            default="UserID",
            description="the business user's id; an employee without one is inactive [I]; "
            "empty: every employee is a user",
        ),
        Field(
            "changed_field",
            default="EntityLastChangedOn",
            description="the change stamp incremental pulls filter on (ge, inclusive) [S]",
        ),
        Field(
            "roles_navigation",
            default="EmployeeUserBusinessRoleAssignment",
            description="the navigation to the business-role assignments, expanded in the same "
            "request [S]; empty: no roles",
        ),
        Field(
            "role_field", default="BusinessRoleID", description="the role's id in an assignment [S]"
        ),
        Field(
            "role_changes_collection",
            default="EmployeeUserBusinessRoleAssignmentCollection",
            description="where an incremental pull reads the role assignments changed since the "
            "cursor (only with activated roles) [I]; empty: role changes show at the next full pull",
        ),
        Field(
            "role_parent_field",
            default="ParentObjectID",
            description="an assignment's employee key (the user's id_field) [S]",
        ),
        Field(
            "install_service",
            default=DEFAULT_INSTALL_SERVICE,
            description="the custom OData service of seatgate's installation object",
        ),
        Field(
            "install_collection",
            default=DEFAULT_INSTALL_COLLECTION,
            description="the installation object's entity set (fields AccountID, Product); "
            "empty: install and uninstall write nothing",
        ),
    ),
    auth={"basic": ("username", "password"), "bearer": ("access_token",)},
)

EXAMPLE_CONFIG: dict[str, Any] = {
    "base_url": "https://my000000.crm.ondemand.com",
    "username": "SEATGATE_INT",
    "password": "${SAP_C4C_PASSWORD}",
    "timeout": 60,
}

INSTALL_PERMISSION = (
    "create, read and delete rights on seatgate's installation object ({path}; deploy it and "
    "grant it through the integration user's business role)"
)


@dataclasses.dataclass(frozen=True, slots=True)
class Options:
    """The settings that shape queries and the mapping, checked: every name an OData name."""

    collection: str
    filter: str
    id_field: str
    email_field: str
    name_field: str
    locked_field: str
    user_id_field: str
    changed_field: str
    roles_navigation: str
    role_field: str
    role_changes_collection: str
    role_parent_field: str
    install_service: str
    install_collection: str

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> Options:
        """:raises BadInput: a name that is not an OData name, a filter on several lines."""

        def name(key: str, default: str, *, optional: bool = False) -> str:
            value = settings.get(key, default)
            if optional and value == "":
                return ""
            return identifier(value, key)

        text = settings.get("filter") or ""
        if not isinstance(text, str) or "\n" in text or "\r" in text:
            raise BadInput("config filter", text, "one OData $filter expression")
        service = str(settings.get("install_service") or DEFAULT_INSTALL_SERVICE).rstrip("/")
        if not service.startswith("/") or "?" in service:
            raise BadInput("config install_service", service, "a path such as /sap/c4c/odata/…")
        return cls(
            collection=name("collection", "EmployeeCollection"),
            filter=text.strip(),
            id_field=name("id_field", "ObjectID"),
            email_field=name("email_field", "Email"),
            name_field=name("name_field", "BusinessPartnerFormattedName", optional=True),
            locked_field=name("locked_field", "UserLockedIndicator"),
            user_id_field=name("user_id_field", "UserID", optional=True),
            changed_field=name("changed_field", "EntityLastChangedOn"),
            roles_navigation=name(
                "roles_navigation", "EmployeeUserBusinessRoleAssignment", optional=True
            ),
            role_field=name("role_field", "BusinessRoleID"),
            role_changes_collection=name(
                "role_changes_collection",
                "EmployeeUserBusinessRoleAssignmentCollection",
                optional=True,
            ),
            role_parent_field=name("role_parent_field", "ParentObjectID"),
            install_service=service,
            install_collection=name(
                "install_collection", DEFAULT_INSTALL_COLLECTION, optional=True
            ),
        )

    def employee_query(self, extra_filter: str = "") -> dict[str, str]:
        """``$select``, ``$expand``, ``$orderby`` and ``$filter`` of an employees listing: the
        mapped properties only, the roles in the same request, in key order."""
        fields = [self.id_field, self.email_field, self.locked_field, self.changed_field]
        fields += [f for f in (self.name_field, self.user_id_field) if f]
        params = {"$orderby": self.id_field}
        if self.roles_navigation:
            fields.append(f"{self.roles_navigation}/{self.role_field}")
            params["$expand"] = self.roles_navigation
        params["$select"] = ",".join(dict.fromkeys(fields))
        clauses = [c for c in (self.filter, extra_filter) if c]
        if clauses:
            params["$filter"] = " and ".join(f"({c})" for c in clauses)
        return params


class SapC4CAdapter:
    """The SAP Cloud for Customer plugin (product ``sap_c4c``).

    :param write_policy: the retry policy of install and uninstall, whose hooks get no request
        context of their own (tests pass one whose sleep is recorded).
    """

    name = NAME

    def __init__(self, write_policy: RetryPolicy | None = None) -> None:
        self.write_policy = write_policy or RetryPolicy()

    def __repr__(self) -> str:
        return "SapC4CAdapter()"

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
            page_size=PAGE_SIZE,
            description="SAP Cloud for Customer employees over OData v2 (httpx); roles are the "
            "business roles of the role-assignment navigation",
            lookback_seconds=LOOKBACK_SECONDS,
        )

    @hookimpl
    def seatgate_check_connection(
        self, product: str, settings: Mapping[str, Any], ctx: RequestContext
    ) -> bool:
        _check_product(product)
        options = Options.of(settings)
        with Client(settings) as client:
            query = {"$top": "1", "$select": options.id_field}
            client.page(ctx, client.collection_url(options.collection, query))
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
        # Checked now, so bad settings fail the call rather than the first page.
        options = Options.of(settings)
        client = Client(settings)
        return _pull(client, options, since, ctx, activated_roles)

    @hookimpl
    def seatgate_install(self, account: str, product: str, settings: Mapping[str, Any]) -> bool:
        _check_product(product)
        options = Options.of(settings)
        if not options.install_collection:
            return True
        ctx = RequestContext(self.write_policy)
        with Client(settings) as client:
            marker = _Installation(client, options, account, product)
            if not marker.find(ctx, fetch_token=True):
                client.create(
                    ctx,
                    marker.collection_url,
                    {"AccountID": account, "Product": product},
                    permission=marker.permission,
                    exists=marker.exists_now,
                )
        return True

    @hookimpl
    def seatgate_uninstall(self, account: str, product: str, settings: Mapping[str, Any]) -> bool:
        _check_product(product)
        options = Options.of(settings)
        if not options.install_collection:
            return True
        ctx = RequestContext(self.write_policy)
        with Client(settings) as client:
            marker = _Installation(client, options, account, product)
            for object_id in marker.find(ctx, fetch_token=True):
                client.delete(ctx, marker.entity_url(object_id), permission=marker.permission)
        return True


@contextlib.contextmanager
def _closing(pages: Iterator[T]) -> Iterator[Iterator[T]]:
    """``contextlib.closing`` for :func:`kit.pages`, typed as an Iterator though it is a
    generator: closing it stops the read-ahead worker before the client closes."""
    try:
        yield pages
    finally:
        close = getattr(pages, "close", None)
        if close is not None:
            close()


def _check_product(product: str) -> None:
    if product not in PRODUCTS:
        raise BadInput("product", product, PRODUCTS)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _pull(
    client: Client,
    options: Options,
    since: dt.datetime | None,
    ctx: RequestContext,
    activated_roles: frozenset[str],
) -> Iterator[UserPage]:
    since = _utc(since)
    with client:
        stamp = f"{options.changed_field} ge {filter_literal(since)}" if since else ""
        first = client.collection_url(options.collection, options.employee_query(stamp))
        seen: set[str] = set()
        yield from _listing(client, options, first, ctx, seen)
        if (
            since is None
            or not activated_roles
            or not options.role_changes_collection
            or not options.roles_navigation
        ):
            return
        owners = _role_changes(client, options, since, ctx, activated_roles)
        missing = sorted(owners - seen)
        for start in range(0, len(missing), KEYS_PER_REQUEST):
            keys = missing[start : start + KEYS_PER_REQUEST]
            # `or` on one property, the only `or` C4C accepts.
            by_key = " or ".join(f"{options.id_field} eq {quote_string(k)}" for k in keys)
            url = client.collection_url(options.collection, options.employee_query(by_key))
            yield from _listing(client, options, url, ctx, seen)


def _listing(
    client: Client, options: Options, first: str, ctx: RequestContext, seen: set[str]
) -> Iterator[UserPage]:
    """Every page of one employees listing, from ``first`` along ``__next``, read one page ahead
    (:func:`kit.pages`); rows are mapped here, in the caller's thread, and a row already yielded
    in this pull (``seen``) is not yielded again."""

    def fetch(url: str) -> tuple[list[Any], str | None]:
        return client.page(ctx, url)

    # closing(): a pull closed early stops its worker before the client closes.
    with _closing(kit.pages(fetch, first, name="sap-c4c-pull", crm=CRM)) as pages:
        for rows in pages:
            users = []
            for n, row in enumerate(rows, 1):
                if not n % 100:
                    # A turn for the read-ahead worker, which needs the GIL after each socket
                    # read of the next page; without one it waits a whole switch interval.
                    time.sleep(0)
                user = to_user(row, options)
                if user.external_id in seen:
                    continue
                seen.add(user.external_id)
                users.append(user)
            if users:
                yield UserPage(users=users)


def _role_changes(
    client: Client,
    options: Options,
    since: dt.datetime,
    ctx: RequestContext,
    activated_roles: frozenset[str],
) -> set[str]:
    """The keys of the employees with an assignment of an activated role changed at or after
    ``since``."""
    clauses = [f"{options.changed_field} ge {filter_literal(since)}"]
    if len(activated_roles) <= ROLES_IN_FILTER:
        # `or` on the role alone: C4C refuses `or` across properties.
        roles = " or ".join(
            f"{options.role_field} eq {quote_string(r)}" for r in sorted(activated_roles)
        )
        clauses.append(f"({roles})")
    params = {
        "$select": f"{options.role_parent_field},{options.role_field}",
        "$filter": " and ".join(clauses),
    }
    url = client.collection_url(options.role_changes_collection, params)
    owners: set[str] = set()
    with _closing(
        kit.pages(lambda u: client.page(ctx, u), url, name="sap-c4c-roles", crm=CRM)
    ) as pages:
        for rows in pages:
            for row in rows:
                owner = row.get(options.role_parent_field) if isinstance(row, dict) else None
                role = row.get(options.role_field) if isinstance(row, dict) else None
                if not isinstance(owner, str) or not owner:
                    raise _bad(options.role_parent_field, "role assignment")
                if role in activated_roles:
                    owners.add(owner)
    return owners


def _bad(field: str, what: str = "employee") -> MalformedResponse:
    return MalformedResponse(f"{CRM} sent an {what} without a valid {field}")


def to_user(row: Any, options: Options) -> ExternalUser:
    """One employee row (OData JSON) as the core's user.

    Types are checked exactly (``type(x) is str``: JSON gives no subclasses) and each property
    read once: a pull maps 1,000 rows a page while the next page is read.

    A property of one employee that cannot be read (an email, name or ``UserID`` that is no
    text, a locked flag that is no boolean, a change stamp that does not parse, a role
    assignment without its role) is that record's alone: the user comes back with its key, its
    email when readable and ``problem``, and the core quarantines it (``malformed_record``).

    :raises MalformedResponse: the page is not what was asked, and the run fails: a row that is
        not an object, a row without its key (it can be neither quarantined under it nor counted
        as seen: a full pull would deactivate its user), or roles not expanded (``$expand`` was
        not honoured: every row would lack them).
    """
    if type(row) is not dict:
        raise _bad("record")
    get = row.get
    key = get(options.id_field)
    if type(key) is not str or not key:
        raise _bad(options.id_field)
    email = get(options.email_field)
    if email is not None and type(email) is not str:
        return _unreadable(key, None, options.email_field, "is no text")
    name = get(options.name_field) if options.name_field else None
    if name is not None and type(name) is not str:
        return _unreadable(key, email, options.name_field, "is no text")
    locked = get(options.locked_field)
    if locked is not None and type(locked) is not bool:
        return _unreadable(key, email, options.locked_field, "is not true or false")
    user_id = get(options.user_id_field) if options.user_id_field else None
    if user_id is not None and type(user_id) is not str:
        return _unreadable(key, email, options.user_id_field, "is no text")
    stamp = get(options.changed_field)
    if stamp is None:
        modified = None
    elif type(stamp) is str:
        try:
            modified = parse_date(stamp)
        except ValueError:
            return _unreadable(key, email, options.changed_field, f"{stamp[:40]!r} is no date")
    else:
        return _unreadable(key, email, options.changed_field, "is no date")
    roles: tuple[str, ...] = ()
    if options.roles_navigation:
        read = _roles(get(options.roles_navigation), options)
        if isinstance(read, str):
            return _unreadable(key, email, options.roles_navigation, read)
        roles = read
    return ExternalUser(
        external_id=key,
        email=email or None,
        name=name or "",
        active=not locked and (bool(user_id) or not options.user_id_field),
        roles=roles,
        modified_at=modified,
        raw={"UserID": user_id, "locked": locked is True},
    )


def _unreadable(key: str, email: str | None, field: str, what: str) -> ExternalUser:
    return ExternalUser(external_id=key, email=email or None, problem=f"{field} {what}")


def _roles(nav: Any, options: Options) -> tuple[str, ...] | str:
    """The role ids of the expanded assignments: ``{"results": [...]}`` (OData v2), or a bare
    list as some servers write an expanded collection; a str says why one assignment cannot be
    read (the record's problem)."""
    items = nav.get("results") if type(nav) is dict else nav
    if type(items) is not list:
        # Absent or ``__deferred``: the expansion asked for did not come (the answer's, not one
        # record's).
        raise _bad(options.roles_navigation)
    field = options.role_field
    roles: list[str] = []
    for item in items:
        role = item.get(field) if type(item) is dict else None
        if type(role) is not str or not role:
            return f"holds an assignment without a valid {field}"
        if role not in roles:
            roles.append(role)
    return tuple(roles)


class _Installation:
    """Seatgate's installation record of one account on the tenant (a custom business object)."""

    def __init__(self, client: Client, options: Options, account: str, product: str) -> None:
        self.client = client
        self.service = options.install_service
        self.collection = options.install_collection
        self.path = f"{self.service}/{self.collection}"
        self.permission = INSTALL_PERMISSION.format(path=self.path)
        self.collection_url = client.collection_url(self.collection, {}, service=self.service)
        condition = f"AccountID eq {quote_string(account)} and Product eq {quote_string(product)}"
        self._lookup = client.collection_url(
            self.collection, {"$filter": condition, "$select": "ObjectID"}, service=self.service
        )
        # A stale CSRF token is fetched again from the service root.
        client.csrf_url = f"{self.service}/"

    def entity_url(self, object_id: str) -> str:
        return f"{self.path}({quote_string(object_id)})"

    def find(self, ctx: RequestContext, *, fetch_token: bool = False) -> list[str]:
        """The ObjectIDs of this account's records (normally one, or none); with
        ``fetch_token``, the same GET fetches the CSRF token the write needs."""
        headers = {"x-csrf-token": "fetch"} if fetch_token else None
        try:
            rows, _following = self.client.page(ctx, self._lookup, headers=headers)
        except MalformedResponse:
            if self.client.last_status != 404:
                raise
            raise MalformedResponse(
                f"{CRM} has no installation object at {self.path}: deploy seatgate's custom "
                "business object there, or set install_service and install_collection (empty: "
                "no installation record)"
            ) from None
        return self._ids(rows)

    def exists_now(self) -> bool:
        """One lookup without the retry policy (it runs inside a retried write)."""
        response = self.client.send("GET", self._lookup, permission=self.permission)
        try:
            rows = response.json()["d"]["results"]
        except (ValueError, KeyError, TypeError):
            raise MalformedResponse(
                f"{CRM} sent an installation lookup without d.results"
            ) from None
        return bool(self._ids(rows))

    def _ids(self, rows: list[Any]) -> list[str]:
        ids = [r.get("ObjectID") for r in rows if isinstance(r, dict)]
        if not all(isinstance(i, str) and i for i in ids) or len(ids) != len(rows):
            raise MalformedResponse(f"{CRM} sent an installation record without its ObjectID")
        return [str(i) for i in ids]


plugin = SapC4CAdapter()
