"""A local SAP Cloud for Customer that speaks the OData v2 the adapter uses, as C4C's developer
guide describes it (reference/crm-apis.md, section 5).

Service ``/sap/c4c/odata/v1/c4codataapi`` (:data:`SERVICE`):

* ``GET /EmployeeCollection`` — JSON only with ``$format=json`` (or ``Accept: application/json``),
  Atom XML otherwise; ``$select`` (properties, and ``Nav/Property`` of an expanded navigation),
  ``$expand=EmployeeUserBusinessRoleAssignment``, ``$orderby`` on the key, ``$filter`` (``eq ne ge
  gt le lt``, ``and``, ``or`` on one property only, ``not``, parentheses, ``datetimeoffset'...'``
  literals), ``$top``/``$skip``, ``$inlinecount=allpages`` (``__count``, a string). Server paging:
  :attr:`SapC4CSandbox.page_size` rows (1,000, fixed by the server), then an absolute ``__next``
  carrying the query and ``$skiptoken`` (the row number the next page starts at, from 1). An
  unknown property or navigation is a ``400`` with an OData error body.
* ``GET /EmployeeUserBusinessRoleAssignmentCollection`` — one row per (employee, business role),
  with its own ``EntityLastChangedOn``: a role granted with ``store.grant`` moves the assignment's
  stamp (``extra["roles_at"]``), not the employee's.

Service ``/sap/c4c/odata/cust/v1/seatgate`` (:data:`INSTALL_SERVICE`): the custom business object
install writes, ``SeatgateInstallationRootCollection`` (GET with ``$filter``, POST, DELETE
``('ObjectID')``); :attr:`installations` follows its records.

Auth: Basic (:attr:`username`/:attr:`password`) or a bearer token (``auth="bearer"``); anything
else is a ``401`` with an HTML logon page. Writes need the CSRF token of a session: a GET with
``x-csrf-token: fetch`` sets the session cookie and answers the token; a write without both is
``403`` with ``x-csrf-token: Required``.

Users map onto employees: ``SandboxUser.id`` is the ``ObjectID`` (32 hex digits, in number order),
an inactive user is ``UserLockedIndicator: true``, ``roles`` are business-role ids,
``extra["user_id"]`` overrides the ``UserID`` (``""``: an employee without a user). Change stamps
render as ``/Date(ms)/``, or ``/Date(ms+mmmm)/`` with :attr:`stamp_offset_minutes`.

Fault knobs (``inject``): ``rate_limit`` (429 + ``Retry-After: retry_after``), ``quota`` (429 +
``Retry-After: 3600``, C4C's fair-use lock-out), ``server_error`` (500, or 503 + ``Retry-After``
with :attr:`busy_retry_after`), ``timeout``, ``malformed`` (per :attr:`malformed_shape`: a page cut
short, an envelope without ``results``, an employee without its key), ``expired_token`` (bearer: a
401; Basic: every session and CSRF token is dropped, so the next write must fetch a new one).
Other knobs: :attr:`repeat_page_token`, :attr:`install_forbidden` (writes to the installation
object are 403), :attr:`install_deployed` (False: the custom service does not exist),
:attr:`lost_write_answers` (the next writes are made, then answered 504, as a gateway timing out
after the commit would), and :attr:`wire`, the last requests served (without their Authorization
header).
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import secrets
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from json.encoder import encode_basestring_ascii as _encode
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

from seatgate.core.plugins import Request, Response, Sandbox, SandboxUser, UserStore, with_raw

SERVICE = "/sap/c4c/odata/v1/c4codataapi"
INSTALL_SERVICE = "/sap/c4c/odata/cust/v1/seatgate"
EMPLOYEES = "EmployeeCollection"
ASSIGNMENTS = "EmployeeUserBusinessRoleAssignmentCollection"
ROLE_NAV = "EmployeeUserBusinessRoleAssignment"
INSTALLS = "SeatgateInstallationRootCollection"
ROLES = ("Z_SERVICE_AGENT", "Z_SALES_REP", "Z_CTI_AGENT")
PAGE_SIZE = 1000  # "Server side paging: page size fixed at 1000" (C4C OData dev guide)
SESSION_COOKIE = "SAP_SESSIONID_SBX_100"

EMPLOYEE_PROPERTIES = (
    "ObjectID",
    "EmployeeID",
    "UserID",
    "BusinessPartnerID",
    "BusinessPartnerFormattedName",
    "FirstName",
    "LastName",
    "Email",
    "CountryCode",
    "UserLockedIndicator",
    "CreatedOn",
    "EntityLastChangedOn",
)
ASSIGNMENT_PROPERTIES = (
    "ObjectID",
    "ParentObjectID",
    "EmployeeID",
    "UserID",
    "BusinessRoleID",
    "EntityLastChangedOn",
)
INSTALL_PROPERTIES = ("ObjectID", "AccountID", "Product", "CreatedOn")

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_WRITES = ("POST", "PUT", "PATCH", "MERGE", "DELETE")


# -- values as C4C writes them ----------------------------------------------------------------------
def odata_date(value: dt.datetime, offset_minutes: int | None = None) -> str:
    """``/Date(ms)/``, or ``/Date(ms±mmmm)/``: the wall clock at the offset, in milliseconds."""
    if offset_minutes is not None:
        local = value + dt.timedelta(minutes=offset_minutes)
        ms = (local - _EPOCH) // dt.timedelta(milliseconds=1)
        return f"/Date({ms}{'-' if offset_minutes < 0 else '+'}{abs(offset_minutes):04d})/"
    return f"/Date({(value - _EPOCH) // dt.timedelta(milliseconds=1)})/"


def _etag(value: dt.datetime) -> str:
    stamp = value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H%%3A%M%%3A%S")
    return f"W/\"datetimeoffset'{stamp}.{value.microsecond:06d}0Z'\""


def odata_error(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    """An OData v2 JSON error body [I]."""
    body = {"error": {"code": code, "message": {"lang": "en", "value": message}}}
    return Response(status, body, dict(headers or {}))


# -- $filter ------------------------------------------------------------------------------------------
class FilterError(ValueError):
    """A $filter the server refuses (C4C answers 400)."""


_TOKEN = re.compile(
    r"\s*(?:(?P<lp>\()|(?P<rp>\))|(?P<dto>datetimeoffset'[^']*')|(?P<dtm>datetime'[^']*')"
    r"|(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<word>[A-Za-z_][A-Za-z0-9_]*))"
)
_OPS = {"eq", "ne", "ge", "gt", "le", "lt"}
Node = tuple[Any, ...]


def _literal_datetime(text: str, with_offset: bool) -> dt.datetime:
    match = re.fullmatch(
        r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?)(?:\.(\d{1,7}))?(Z|[+-]\d{2}:\d{2})?", text
    )
    if match is None:
        raise FilterError(f"invalid literal {text!r}")
    fraction = (match[2] or "").ljust(6, "0")[:6]
    zone = match[3] or ("Z" if not with_offset else None)
    if zone is None:
        raise FilterError(f"datetimeoffset literal {text!r} has no offset")
    value = dt.datetime.fromisoformat(match[1]).replace(microsecond=int(fraction))
    offset = dt.timedelta(0)
    if zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        offset = sign * dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    return value.replace(tzinfo=dt.timezone(offset)).astimezone(dt.UTC)


def parse_filter(text: str, properties: Iterable[str]) -> Node:
    """A $filter as a small tree: ``("and"|"or", a, b)``, ``("not", a)``, ``("cmp", property, op,
    value)``. C4C refuses ``or`` across properties ("or only on the same property").

    :raises FilterError: syntax, an unknown property, a cross-property ``or``.
    """
    known = set(properties)
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise FilterError(f"invalid $filter near {text[pos : pos + 20]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match[kind]))
        pos = match.end()
    at = 0

    def peek() -> tuple[str, str] | None:
        return tokens[at] if at < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal at
        if at >= len(tokens):
            raise FilterError("the $filter ends too early")
        at += 1
        return tokens[at - 1]

    def value() -> Any:
        kind, raw = take()
        if kind == "dto":
            return _literal_datetime(raw[len("datetimeoffset'") : -1], True)
        if kind == "dtm":
            return _literal_datetime(raw[len("datetime'") : -1], False)
        if kind == "str":
            return raw[1:-1].replace("''", "'")
        if kind == "num":
            return float(raw) if "." in raw else int(raw)
        if kind == "word" and raw in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[raw]
        raise FilterError(f"expected a value, not {raw!r}")

    def primary() -> Node:
        kind, raw = take()
        if kind == "lp":
            node = disjunction()
            if take()[0] != "rp":
                raise FilterError("a parenthesis is not closed")
            return node
        if kind == "word" and raw == "not":
            return ("not", primary())
        if kind != "word":
            raise FilterError(f"expected a property, not {raw!r}")
        if raw not in known:
            raise FilterError(f"Property {raw} not found")
        op = take()
        if op[0] != "word" or op[1] not in _OPS:
            raise FilterError(f"expected an operator after {raw}, not {op[1]!r}")
        return ("cmp", raw, op[1], value())

    def conjunction() -> Node:
        node = primary()
        while peek() == ("word", "and"):
            take()
            node = ("and", node, primary())
        return node

    def disjunction() -> Node:
        node = conjunction()
        while peek() == ("word", "or"):
            take()
            right = conjunction()
            if len(_properties(node) | _properties(right)) > 1:
                raise FilterError("the operator 'or' is only supported on the same property")
            node = ("or", node, right)
        return node

    tree = disjunction()
    if at != len(tokens):
        raise FilterError(f"unexpected {tokens[at][1]!r} in $filter")
    return tree


def _properties(node: Node) -> set[str]:
    if node[0] == "cmp":
        return {node[1]}
    return set().union(*(_properties(child) for child in node[1:]))


def matches(node: Node, props: Mapping[str, Any]) -> bool:
    kind = node[0]
    if kind == "and":
        return matches(node[1], props) and matches(node[2], props)
    if kind == "or":
        return matches(node[1], props) or matches(node[2], props)
    if kind == "not":
        return not matches(node[1], props)
    _, name, op, expected = node
    actual = props.get(name)
    if op == "eq":
        return bool(actual == expected)
    if op == "ne":
        return bool(actual != expected)
    if actual is None or expected is None:
        return False
    try:
        return bool(
            {"ge": actual >= expected, "gt": actual > expected, "le": actual <= expected}.get(
                op, actual < expected
            )
        )
    except TypeError:
        raise FilterError(f"cannot compare {name} with {expected!r}") from None


class SapC4CSandbox(Sandbox):
    """SAP C4C's employee and role-assignment collections, and seatgate's installation object.

    :param users: how many employees to generate.
    :param auth: ``"basic"`` or ``"bearer"``: which credentials :meth:`settings` returns.
    :param retry_after: the ``Retry-After`` seconds of an injected ``rate_limit``.
    """

    name = "sap_c4c"
    unreadable = MappingProxyType({"EntityLastChangedOn": "yesterday"})

    def __init__(
        self, users: int = 100, *, auth: str = "basic", retry_after: int = 3, **kwargs: Any
    ) -> None:
        if auth not in ("basic", "bearer"):
            raise ValueError(f"unknown auth {auth!r}: expected basic or bearer")
        super().__init__(users, **kwargs)
        self.auth = auth
        self.username = "SEATGATE_INT"
        self.password = "sbx-" + secrets.token_urlsafe(12)
        self.access_token = "c4c-" + secrets.token_hex(20)
        # Knobs.
        self.page_size = PAGE_SIZE
        self.retry_after = retry_after
        self.quota_retry_after = 3600
        self.busy_retry_after: int | None = None
        self.repeat_page_token = False
        self.malformed_shape = "truncated"  # or "envelope", "record"
        self.stamp_offset_minutes: int | None = None
        self.install_forbidden = False
        self.install_deployed = True
        self._expire_sessions = False
        self.lost_write_answers = 0  # writes applied, then answered 504 (the answer was lost)
        self.wire: deque[Request] = deque(maxlen=100)
        # State.
        self.sessions: dict[str, str | None] = {}  # session id -> its CSRF token
        self.records: dict[str, dict[str, Any]] = {}  # installation records by ObjectID
        self._cache_lock = threading.Lock()
        self._fragments: dict[tuple[int, str], tuple[Any, bytes]] = {}
        self._listing_version: tuple[dt.datetime, int] | None = None
        self._listing: list[SandboxUser] = []

    def make_store(self, users: int) -> UserStore:
        # ObjectIDs as C4C writes them: 32 upper-case hex digits; zero-padded, so key order is
        # number order.
        return UserStore(users, id_format="00163E03A0701ED2{n:016X}", roles=ROLES)

    # -- what a client needs ------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        base = {"base_url": self.url, "timeout": 5}
        if self.auth == "bearer":
            return {**base, "access_token": self.access_token}
        return {**base, "username": self.username, "password": self.password}

    def bad_settings(self) -> dict[str, Any]:
        base = {"base_url": self.url, "timeout": 5}
        if self.auth == "bearer":
            return {**base, "access_token": "c4c-" + secrets.token_hex(20)}
        return {**base, "username": self.username, "password": "wrong-" + secrets.token_hex(6)}

    def drop_caches(self) -> None:
        with self._cache_lock:
            self._fragments.clear()

    # -- employees as C4C shows them ----------------------------------------------------------
    def user_id(self, user: SandboxUser) -> str:
        return str(user.extra.get("user_id", f"USER{user.number:06d}"))

    def employee(self, user: SandboxUser) -> dict[str, Any]:
        """An employee's properties (Python values; dates as aware datetimes)."""
        return {
            "ObjectID": user.id,
            "EmployeeID": str(8_000_000_000 + user.number),
            "UserID": self.user_id(user),
            "BusinessPartnerID": str(8_000_000_000 + user.number),
            "BusinessPartnerFormattedName": user.name,
            "FirstName": user.first_name,
            "LastName": user.last_name,
            "Email": user.email,
            "CountryCode": "US",
            "UserLockedIndicator": not user.active,
            "CreatedOn": user.created_at,
            "EntityLastChangedOn": user.modified_at,
        }

    def assignments(self, user: SandboxUser) -> list[dict[str, Any]]:
        """The user's business-role assignments; their stamp is the grant's, not the user's."""
        stamp = user.extra.get("roles_at") or user.created_at
        return [
            {
                "ObjectID": f"00163E0ABC{user.number:018X}{i:04X}",
                "ParentObjectID": user.id,
                "EmployeeID": str(8_000_000_000 + user.number),
                "UserID": self.user_id(user),
                "BusinessRoleID": role,
                "EntityLastChangedOn": stamp,
            }
            for i, role in enumerate(user.roles)
        ]

    def _value(self, value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if value is None:
            return "null"
        if isinstance(value, dt.datetime):
            return '"' + odata_date(value, self.stamp_offset_minutes) + '"'
        return _encode(str(value))

    def _entity(
        self,
        props: Mapping[str, Any],
        select: tuple[str, ...] | None,
        uri: str,
        kind: str,
        stamp: dt.datetime,
    ) -> str:
        meta = (
            f'"__metadata":{{"uri":{_encode(uri)},"type":"{kind}","etag":{_encode(_etag(stamp))}}}'
        )
        names = select if select is not None else tuple(props)
        return ",".join([meta, *(f'"{n}":{self._value(props[n])}' for n in names)])

    def _render(self, user: SandboxUser, shape: _Shape) -> bytes:
        """An employee as compact JSON, written out directly (``json.dumps`` of the dict would
        make the sandbox what a benchmark of the adapter measures); strings through the json
        module's own escaping."""
        base = f"{self.url}{SERVICE}/{EMPLOYEES}('{user.id}')"
        body = self._entity(
            self.employee(user), shape.select, base, "c4codataapi.Employee", user.modified_at
        )
        if shape.expand:
            rows = ",".join(
                "{"
                + self._entity(
                    a,
                    shape.nav_select,
                    f"{self.url}{SERVICE}/{ASSIGNMENTS}('{a['ObjectID']}')",
                    "c4codataapi.EmployeeUserBusinessRoleAssignment",
                    a["EntityLastChangedOn"],
                )
                + "}"
                for a in self.assignments(user)
            )
            body += f',"{ROLE_NAV}":{{"results":[{rows}]}}'
        elif shape.select is None:
            body += f',"{ROLE_NAV}":{{"__deferred":{{"uri":{_encode(base + "/" + ROLE_NAV)}}}}}'
        return ("{" + body + "}").encode()

    def _fragment(self, user: SandboxUser, shape: _Shape) -> bytes:
        key = (user.number, shape.key)
        version = (user.modified_at, user.extra.get("roles_at"), self.stamp_offset_minutes)
        cached = self._fragments.get(key)
        if cached is not None and cached[0] == version:
            return with_raw(cached[1], user)
        fragment = self._render(user, shape)
        self._fragments[key] = (version, fragment)
        return with_raw(fragment, user)

    def _employees_in_order(self) -> list[SandboxUser]:
        # Rebuilt only when the store changed (its clock ticked, or users were added).
        with self._cache_lock:
            version = (self.store.now, len(self.store.by_number))
            if self._listing_version != version:
                # In key order ($orderby=ObjectID, C4C's order for server paging too).
                self._listing = sorted(self.store.by_number.values(), key=lambda u: u.id)
                self._listing_version = version
            return self._listing

    # -- routing ------------------------------------------------------------------------------
    def route(self, request: Request) -> Response:
        self.wire.append(
            Request(
                request.method,
                request.path,
                request.query,
                {k: v for k, v in request.headers.items() if k != "authorization"},
                request.body,
            )
        )
        refused = self._authorized(request)
        if refused is not None:
            return refused
        session, fresh = self._session(request)
        headers: dict[str, str] = {}
        if fresh:
            headers["Set-Cookie"] = f"{SESSION_COOKIE}={session}; path=/; HttpOnly"
        if request.method == "GET" and request.headers.get("x-csrf-token", "").lower() == "fetch":
            with self._lock:
                token = self.sessions.get(session) or secrets.token_urlsafe(16)
                self.sessions[session] = token
            headers["x-csrf-token"] = token
        if request.method in _WRITES:
            with self._lock:
                expected = self.sessions.get(session)
            if not expected or request.headers.get("x-csrf-token") != expected:
                return Response(
                    403,
                    b"CSRF token validation failed",
                    {**headers, "x-csrf-token": "Required", "Content-Type": "text/plain"},
                )
        response = self._dispatch(request)
        if self._expire_sessions:
            with self._lock:
                self.sessions.clear()
                self._expire_sessions = False
        if request.method in _WRITES and response.status < 300 and self.lost_write_answers:
            with self._lock:
                self.lost_write_answers -= 1
            return odata_error(504, "GATEWAY_TIMEOUT", "The gateway timed out")
        return Response(response.status, response.body, {**headers, **response.headers})

    def _dispatch(self, request: Request) -> Response:
        path = request.path
        if path.startswith(SERVICE):
            rest = path[len(SERVICE) :].strip("/")
            if rest == "":
                return self._service_document(request, (EMPLOYEES, ASSIGNMENTS))
            if rest == EMPLOYEES and request.method == "GET":
                return self._employees(request)
            if rest == ASSIGNMENTS and request.method == "GET":
                return self._assignments(request)
            return odata_error(404, "SY/530", f"Resource not found for segment '{rest}'")
        if path.startswith(INSTALL_SERVICE) and self.install_deployed:
            rest = path[len(INSTALL_SERVICE) :].strip("/")
            if rest == "":
                return self._service_document(request, (INSTALLS,))
            return self._installs(request, rest)
        return odata_error(404, "SY/530", f"Service not found: {path}")

    def _authorized(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        if self.auth == "bearer":
            if header == f"Bearer {self.access_token}":
                return None
        else:
            expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            if header == f"Basic {expected}":
                return None
        page = (
            b"<html><head><title>Logon Error Message</title></head><body>"
            b"<p>401 Unauthorized: the user could not be authenticated.</p></body></html>"
        )
        return Response(
            401,
            page,
            {
                "Content-Type": "text/html; charset=utf-8",
                "WWW-Authenticate": 'Basic realm="SAP NetWeaver Application Server [SBX/100]"',
            },
        )

    def _session(self, request: Request) -> tuple[str, bool]:
        """The request's session (from its cookie), or a new one (to be set)."""
        for part in request.headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == SESSION_COOKIE and value in self.sessions:
                return value, False
        session = secrets.token_hex(12)
        with self._lock:
            self.sessions[session] = None
        return session, True

    def _service_document(self, request: Request, sets: tuple[str, ...]) -> Response:
        if not self._wants_json(request):
            return self._atom()
        return Response(200, {"d": {"EntitySets": list(sets)}})

    @staticmethod
    def _wants_json(request: Request) -> bool:
        fmt = request.arg("$format")
        if fmt is not None:
            return fmt == "json"
        return "application/json" in request.headers.get("accept", "")

    @staticmethod
    def _atom() -> Response:
        # The default format is Atom XML; a client that forgets $format=json gets this.
        feed = b'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"/>'
        return Response(200, feed, {"Content-Type": "application/atom+xml;type=feed"})

    # -- listings -----------------------------------------------------------------------------
    def _employees(self, request: Request) -> Response:
        if not self._wants_json(request):
            return self._atom()
        try:
            shape = _Shape.of(request, EMPLOYEE_PROPERTIES)
            tree = self._filter(request, EMPLOYEE_PROPERTIES)
            order = request.arg("$orderby")
            if order not in (None, "ObjectID", "ObjectID asc"):
                raise FilterError(f"$orderby {order!r} is not supported here")
        except FilterError as exc:
            return odata_error(400, "SY/530", str(exc))
        rows = self._select(tree)
        return self._page(request, rows, lambda u: self._fragment(u, shape))

    def _select(self, tree: Node | None) -> list[SandboxUser]:
        everyone = self._employees_in_order()
        if tree is None:
            return everyone
        rest: Node | None = tree
        candidates = everyone
        # The incremental filter is a bisect on the change-stamp order, not a scan.
        stamp = _stamp_bound(tree)
        if stamp is not None:
            bound, rest = stamp
            candidates = sorted(self.store.since(bound), key=lambda u: u.id)
        if rest is None:
            return candidates
        return [u for u in candidates if matches(rest, self.employee(u))]

    def _assignments(self, request: Request) -> Response:
        if not self._wants_json(request):
            return self._atom()
        try:
            shape = _Shape.of(request, ASSIGNMENT_PROPERTIES, navigation=False)
            tree = self._filter(request, ASSIGNMENT_PROPERTIES)
        except FilterError as exc:
            return odata_error(400, "SY/530", str(exc))
        rows = [
            a
            for u in self._employees_in_order()
            for a in self.assignments(u)
            if tree is None or matches(tree, a)
        ]

        def render(a: dict[str, Any]) -> bytes:
            uri = f"{self.url}{SERVICE}/{ASSIGNMENTS}('{a['ObjectID']}')"
            kind = "c4codataapi.EmployeeUserBusinessRoleAssignment"
            stamp = a["EntityLastChangedOn"]
            return ("{" + self._entity(a, shape.select, uri, kind, stamp) + "}").encode()

        return self._page(request, rows, render)

    def _filter(self, request: Request, properties: tuple[str, ...]) -> Node | None:
        text = request.arg("$filter")
        return parse_filter(text, properties) if text else None

    def _page(self, request: Request, rows: list[Any], render: Callable[[Any], bytes]) -> Response:
        """One server page of ``rows`` (in order): ``$top``/``$skip`` bound them, the page size
        cuts them, ``$skiptoken`` (the first row's number, from 1) says where a page starts."""
        try:
            top = int(request.arg("$top") or 0) or None
            skip = int(request.arg("$skip") or 0)
            token = request.arg("$skiptoken")
            start = int(token) - 1 if token else skip
        except ValueError:
            return odata_error(400, "SY/530", "invalid $top, $skip or $skiptoken")
        if start < 0 or skip < 0 or (top is not None and top < 0):
            return odata_error(400, "SY/530", "invalid $top, $skip or $skiptoken")
        end = min(len(rows), skip + top) if top is not None else len(rows)
        stop = min(start + self.page_size, end)
        chunk = rows[start:stop] if start < end else []
        body = b'{"d":{"results":[' + b",".join(render(r) for r in chunk) + b"]"
        if request.arg("$inlinecount") == "allpages":
            body += b',"__count":"' + str(len(rows)).encode() + b'"'
        if stop < end:
            following = str(stop + 1)
            if self.repeat_page_token and token:
                following = token  # the knob: the page names itself as the next one
            body += b',"__next":' + _encode(self._next_link(request, following)).encode()
        return Response(200, body + b"}}")

    def _next_link(self, request: Request, token: str) -> str:
        query = [(k, v) for k, values in request.query.items() for v in values if k != "$skiptoken"]
        query.append(("$skiptoken", token))
        text = "&".join(f"{k}={quote(v, safe=chr(36) + chr(39) + '(),:*/@')}" for k, v in query)
        return f"{self.url}{request.path}?{text}"

    # -- the installation object (install/uninstall) ---------------------------------------------
    def _installs(self, request: Request, rest: str) -> Response:
        if self.install_forbidden and request.method in _WRITES:
            return odata_error(
                403, "AUTHORIZATION", "You are not authorized to change this business object"
            )
        if rest == INSTALLS and request.method == "GET":
            try:
                shape = _Shape.of(request, INSTALL_PROPERTIES, navigation=False)
                tree = self._filter(request, INSTALL_PROPERTIES)
            except FilterError as exc:
                return odata_error(400, "SY/530", str(exc))
            with self._lock:
                rows = [r for r in self.records.values() if tree is None or matches(tree, r)]
            return self._page(request, rows, lambda r: self._install_json(r, shape.select))
        if rest == INSTALLS and request.method == "POST":
            return self._create_install(request)
        match = re.fullmatch(rf"{INSTALLS}\('([0-9A-F]{{32}})'\)", rest)
        if match is None:
            return odata_error(404, "SY/530", f"Resource not found for segment '{rest}'")
        with self._lock:
            record = self.records.get(match[1])
            if request.method == "DELETE" and record is not None:
                del self.records[match[1]]
                self._sync_installations()
                return Response(204, b"")
        if record is None:
            return odata_error(404, "SY/530", "Resource not found")
        if request.method == "GET":
            return Response(200, b'{"d":' + self._install_json(record, None) + b"}")
        return odata_error(405, "SY/530", f"{request.method} is not allowed here")

    def _install_json(self, record: Mapping[str, Any], select: tuple[str, ...] | None) -> bytes:
        uri = f"{self.url}{INSTALL_SERVICE}/{INSTALLS}('{record['ObjectID']}')"
        kind = "cust.SeatgateInstallationRoot"
        return ("{" + self._entity(record, select, uri, kind, record["CreatedOn"]) + "}").encode()

    def _create_install(self, request: Request) -> Response:
        try:
            data = request.json()
        except ValueError:
            return odata_error(400, "SY/530", "The request body is not valid JSON")
        if not isinstance(data, dict) or not all(
            isinstance(data.get(k), str) and data[k] for k in ("AccountID", "Product")
        ):
            return odata_error(400, "SY/530", "AccountID and Product are required")
        unknown = set(data) - set(INSTALL_PROPERTIES)
        if unknown:
            return odata_error(400, "SY/530", f"Property {sorted(unknown)[0]} not found")
        record = {
            "ObjectID": secrets.token_hex(16).upper(),
            "AccountID": data["AccountID"],
            "Product": data["Product"],
            "CreatedOn": self.store.now,
        }
        with self._lock:
            self.records[record["ObjectID"]] = record
            self._sync_installations()
        return Response(201, b'{"d":' + self._install_json(record, None) + b"}")

    def _sync_installations(self) -> None:
        self.installations = {str(r["AccountID"]) for r in self.records.values()}

    # -- faults -------------------------------------------------------------------------------
    def fault_response(self, fault: str, request: Request) -> Response | None:
        if fault == "rate_limit":
            return odata_error(
                429,
                "TOO_MANY_REQUESTS",
                "Too many requests; try again later",
                {"Retry-After": str(self.retry_after)},
            )
        if fault == "quota":
            return odata_error(
                429,
                "TOO_MANY_REQUESTS",
                "The fair-use limit of this tenant is reached",
                {"Retry-After": str(self.quota_retry_after)},
            )
        if fault == "server_error":
            if self.busy_retry_after is not None:
                return odata_error(
                    503,
                    "SERVICE_UNAVAILABLE",
                    "The service is temporarily unavailable",
                    {"Retry-After": str(self.busy_retry_after)},
                )
            return odata_error(500, "SY/530", "An internal server error occurred")
        if fault == "malformed":
            if self.malformed_shape == "envelope":
                return Response(200, {"d": {"result": []}})
            if self.malformed_shape == "record":
                return Response(200, {"d": {"results": [{"Email": "nokey@example.com"}]}})
            # A page cut short, as a proxy dropping the connection mid-body would leave it.
            return Response(200, b'{"d":{"results":[{"__metadata":{"uri":"' + self.url.encode())
        if fault == "expired_token":
            if self.auth == "bearer":
                return Response(
                    401,
                    b"<html><body>401 Unauthorized: the access token expired</body></html>",
                    {
                        "Content-Type": "text/html",
                        "WWW-Authenticate": 'Bearer error="invalid_token"',
                    },
                )
            # Basic: the session (and its CSRF token) expires once this request is served; Basic
            # signs the next request on again, but a write needs a new token.
            self._expire_sessions = True
            return None
        raise ValueError(f"SapC4CSandbox has no response for fault {fault!r}")


class _Shape:
    """What a request asks of each entity: ``$select`` and the role expansion."""

    __slots__ = ("expand", "key", "nav_select", "select")

    def __init__(
        self, select: tuple[str, ...] | None, expand: bool, nav_select: tuple[str, ...] | None
    ) -> None:
        self.select = select
        self.expand = expand
        self.nav_select = nav_select
        self.key = f"{select}|{expand}|{nav_select}"

    @classmethod
    def of(
        cls, request: Request, properties: tuple[str, ...], *, navigation: bool = True
    ) -> _Shape:
        """:raises FilterError: an unknown property or navigation (C4C answers 400)."""
        expand_arg = request.arg("$expand") or ""
        expands = [e.strip() for e in expand_arg.split(",") if e.strip()]
        for name in expands:
            if not navigation or name != ROLE_NAV:
                raise FilterError(f"Property {name} not found")
        expand = bool(expands)
        select_arg = request.arg("$select")
        if not select_arg:
            return cls(None, expand, None)
        select: list[str] = []
        nav: list[str] = []
        for item in (s.strip() for s in select_arg.split(",")):
            if "/" in item:
                head, _, prop = item.partition("/")
                if head != ROLE_NAV or not expand:
                    raise FilterError(f"Property {item} not found or not expanded")
                if prop not in ASSIGNMENT_PROPERTIES:
                    raise FilterError(f"Property {prop} not found")
                nav.append(prop)
            elif item == ROLE_NAV and expand:
                nav = list(ASSIGNMENT_PROPERTIES)
            elif item not in properties:
                raise FilterError(f"Property {item} not found")
            else:
                select.append(item)
        return cls(tuple(select), expand, tuple(nav) if nav else None)


def _stamp_bound(tree: Node) -> tuple[dt.datetime, Node | None] | None:
    """``EntityLastChangedOn ge X`` alone, or and-ed with the rest: (X, the rest)."""
    if (
        tree[0] == "cmp"
        and tree[1] == "EntityLastChangedOn"
        and tree[2] == "ge"
        and isinstance(tree[3], dt.datetime)
    ):
        return tree[3], None
    if tree[0] == "and":
        for side, other in ((tree[1], tree[2]), (tree[2], tree[1])):
            found = _stamp_bound(side)
            if found is not None:
                bound, rest = found
                return bound, other if rest is None else ("and", rest, other)
    return None


SANDBOX = SapC4CSandbox
