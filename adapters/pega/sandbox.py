"""A Pega server on 127.0.0.1: the OAuth 2.0 token endpoint, DX API v2 list data views and savable
data pages, as ``reference/crm-apis.md`` §6 describes them.

Endpoints:

* ``POST /prweb/PRRestService/oauth2/v1/token`` — HTTP Basic ``client_id:client_secret`` (or the
  two in the form), ``grant_type=client_credentials``: ``{"access_token", "token_type",
  "expires_in"}``. A token expires ``token_lifetime`` seconds after it was issued, by ``clock``.
* ``POST /prweb/api/application/v2/data_views/{ID}`` (also under ``/prweb/app/{alias}/``) —
  ``D_pxOperatorsList`` lists the store's users as operators. ``query.select`` (only the selected
  fields come back), ``query.filter`` (``filterConditions`` with EQ, NEQ, GT, GTE, LT, LTE, IN,
  NOT_IN, CONTAINS, STARTS_WITH, IS_TRUE, IS_FALSE, IS_NULL, IS_NOT_NULL; ``logic`` with AND, OR
  and parentheses), ``query.sortBy``, ``paging`` (``pageNumber``, ``pageSize`` <= 5,000, default
  100) or ``maxResultsToFetch`` (not both). Date-times compare as instants, in Pega's format or
  ISO 8601. Unknown data view: 404 ``Dataview not found``; unknown field or bad paging: 400.
* ``PUT /prweb/api/application/v2/data/{ID}`` and ``DELETE ...?dataViewParameters={json}`` — the
  savable data page ``D_SeatgateInstallation`` (keyed by ``InstallationKey``), where install
  writes its marker; :attr:`installations` holds the accounts that have one.

Knobs besides the common ones (:class:`~seatgate.core.plugins.Sandbox`):

* ``page_size`` — the most operators a page holds, whatever the client asks (to get several pages
  from a few users); ``retry_after`` — what ``rate_limit`` and ``unavailable`` ask to wait;
* ``has_more_results`` — send ``hasMoreResults`` (newer Pega) or not (older: the client stops at a
  short page); ``stamp_format`` — render ``pxUpdateDateTime`` as ``pega`` or ``iso``;
* ``repeat_page_token`` — ignore the key filter and the page number: every page is the first;
* ``token_lifetime`` and ``clock`` — when tokens expire (``None``: no ``expires_in`` in the
  answer); ``grant_types`` — the grants the OAuth client registration allows (400 otherwise);
* ``deny`` — ``{"read"}``, ``{"write"}``: 403 for want of an access role; ``data_views`` — the
  list data views served (add an alias: ``D_MyOperators``); ``bodies`` — the request bodies seen;
* faults: the common ones, plus ``truncated`` (a page cut mid-record) and ``unavailable`` (503 with
  ``Retry-After``, as a gateway in maintenance). ``malformed`` is the HTML sign-on page a Pega
  behind a web SSO sends with status 200.
"""

from __future__ import annotations

import base64
import bisect
import datetime as dt
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from json.encoder import encode_basestring_ascii as _encode
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qs, unquote

from seatgate.core.plugins import Request, Response, Sandbox, SandboxUser, UserStore

MAX_PAGE = 5_000
DEFAULT_PAGE = 100
OPERATORS_VIEW = "D_pxOperatorsList"
INSTALL_VIEW = "D_SeatgateInstallation"
INSTALL_KEY = "InstallationKey"
ACCESS_GROUPS = (
    "CustomerService:CSR",
    "CustomerService:Managers",
    "CustomerService:Administrators",
)
CLIENT_ID = "10682735462537891234"
CLIENT_SECRET = "sandbox-client-secret"  # the sandbox's own fixed credentials, not a real secret
EXTRA_FAULTS = ("truncated", "unavailable")
QUOTA_RETRY_AFTER = 3600
FIELDS = (
    "pyUserIdentifier",
    "pyUserName",
    "pyFirstName",
    "pyLastName",
    "pyEmailAddress",
    "pyAccessGroup",
    "pyAccessGroupsAdditional",
    "pyWorkGroup",
    "pyOrganization",
    "pyOrgDivision",
    "pyOrgUnit",
    "pyOpAvailable",
    "pyOpDisabled",
    "pxCreateDateTime",
    "pxUpdateDateTime",
)
DATE_FIELDS = frozenset({"pxCreateDateTime", "pxUpdateDateTime"})
_PATH = re.compile(r"/prweb(?:/app/[A-Za-z0-9_-]+)?/api/application/v2/(data_views|data)/([^/]+)")
_PEGA_STAMP = re.compile(r"([0-9]{8})T([0-9]{6})\.([0-9]{3}) GMT", re.ASCII)
SIGN_ON_PAGE = (
    b"<!DOCTYPE html><html><head><title>Pega Platform</title></head><body>"
    b'<form name="main" method="post" action="/prweb/PRAuth/app/default/">'
    b'<input type="text" name="UserIdentifier"/><input type="password" name="Password"/>'
    b"</form></body></html>"
)


class BadRequest(Exception):
    """A request the DX API refuses with 400; the message is Pega's words."""


def render_stamp(instant: dt.datetime, style: str = "pega") -> str:
    """How Pega writes an instant: ``20250101T000001.000 GMT``, or ISO 8601 (``iso``)."""
    at = instant.astimezone(dt.UTC)
    day = (at.year, at.month, at.day)
    clock = (at.hour, at.minute, at.second, at.microsecond // 1000)
    if style == "iso":
        return "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}.{:03d}Z".format(*day, *clock)
    return "{:04d}{:02d}{:02d}T{:02d}{:02d}{:02d}.{:03d} GMT".format(*day, *clock)


def read_stamp(value: Any) -> dt.datetime:
    """A filter value as an instant: Pega's format or ISO 8601 (naive means GMT)."""
    if not isinstance(value, str):
        raise ValueError(value)
    m = _PEGA_STAMP.fullmatch(value)
    if m:
        day, clock_, ms = m.groups()
        parsed = dt.datetime.strptime(day + clock_, "%Y%m%d%H%M%S")
        return parsed.replace(microsecond=int(ms) * 1000, tzinfo=dt.UTC)
    parsed = dt.datetime.fromisoformat(value)
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


def _error(
    status: int, message: str, detail: str = "", headers: dict[str, str] | None = None
) -> Response:
    # DX API v2's error body [I]: a classification, its localized text, and the details.
    body: dict[str, Any] = {"errorClassification": message, "localizedValue": message}
    if detail:
        body["errorDetails"] = [{"message": message, "localizedValue": detail}]
    return Response(status, body, headers or {})


class PegaSandbox(Sandbox):
    """Pega's OAuth token endpoint, the operators data view and a savable data page."""

    name = "pega"
    unreadable = MappingProxyType({"pxUpdateDateTime": ""})

    def __init__(
        self,
        users: int = 100,
        *,
        store: UserStore | None = None,
        port: int = 0,
        stamp_format: str = "pega",
        has_more_results: bool = True,
    ) -> None:
        super().__init__(users, store=store, port=port)
        self.page_size = MAX_PAGE
        self.retry_after = 5  # what rate_limit and unavailable ask the client to wait, seconds
        self.stamp_format = stamp_format
        self.has_more_results = has_more_results
        self.repeat_page_token = False
        # expires_in, seconds; None: the answer leaves it out (and tokens live 3600 s).
        self.token_lifetime: float | None = 3600.0
        self.clock: Callable[[], float] = time.monotonic
        self.grant_types = {"client_credentials"}  # what the OAuth client registration allows
        self.deny: set[str] = set()  # "read", "write": 403 for want of an access role
        self.client_id, self.client_secret = CLIENT_ID, CLIENT_SECRET
        self.tokens: dict[str, float] = {}  # access token -> when it expires, by clock
        self.tokens_issued = 0
        self.data_views: set[str] = {OPERATORS_VIEW}
        self.savable: set[str] = {INSTALL_VIEW}
        self.records: dict[str, dict[str, Any]] = {}  # the savable data page's records by key
        self.bodies: list[Any] = []  # the JSON bodies of the data view requests, in order
        self.seen: list[tuple[str, str]] = []  # (method, path) of every request routed
        # (Authorization header, form) of every token request: a test checks the wire format.
        self.token_requests: list[tuple[str, dict[str, str]]] = []
        self._render_lock = threading.Lock()
        self._fragments: dict[tuple[int, tuple[str, ...]], tuple[dt.datetime, bytes]] = {}
        self._sorted: tuple[tuple[dt.datetime, int], list[str], list[SandboxUser]] | None = None

    def make_store(self, users: int) -> UserStore:
        return UserStore(users, id_format="op{n:06d}@acme", roles=ACCESS_GROUPS)

    def start(self) -> PegaSandbox:
        super().start()
        # The common server writes a response's headers and its body in two sends: with Nagle's
        # algorithm on, the body waits for the client's delayed ACK of the headers (40 ms a
        # request on Linux), which a real Pega does not cost. Accepted sockets inherit this.
        assert self._server is not None
        self._server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self

    # -- what a client needs ---------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        return {
            "base_url": self.url,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "timeout": 5,
        }

    def bad_settings(self) -> dict[str, Any]:
        return {**self.settings(), "client_secret": "wrong-" + secrets.token_hex(8)}

    # -- operators as Pega shows them --------------------------------------------------------------
    def operator(self, user: SandboxUser) -> dict[str, Any]:
        """Every field of the user's operator record, as the data view renders it."""
        record: dict[str, Any] = {
            "pyUserIdentifier": user.id,
            "pyUserName": user.name,
            "pyFirstName": user.first_name,
            "pyLastName": user.last_name,
            "pyEmailAddress": user.email,
            "pyWorkGroup": "ContactCenter@Acme",
            "pyOrganization": "Acme",
            "pyOrgDivision": "Service",
            "pyOrgUnit": "ContactCenter",
            "pyOpAvailable": user.active,
            "pyOpDisabled": not user.active,
            "pxCreateDateTime": render_stamp(user.created_at, self.stamp_format),
            "pxUpdateDateTime": render_stamp(user.modified_at, self.stamp_format),
        }
        if user.roles:
            record["pyAccessGroup"] = user.roles[0]
        if user.roles[1:]:
            record["pyAccessGroupsAdditional"] = list(user.roles[1:])
        # A test may give a user other values (a broken stamp, another field's shape).
        record.update(user.extra.get("fields", {}))
        return record

    def _fragment(self, user: SandboxUser, select: tuple[str, ...]) -> bytes:
        # Rendering is the hot part of serving 100,000 operators: once per change and selection.
        key = (user.number, select)
        cached = self._fragments.get(key)
        if cached is not None and cached[0] == user.modified_at:
            return cached[1]
        fragment = self._render(user, select)
        self._fragments[key] = (user.modified_at, fragment)
        return fragment

    def _render(self, user: SandboxUser, select: tuple[str, ...]) -> bytes:
        """:meth:`operator`'s selected fields as compact JSON, written out directly: building the
        whole record and ``json.dumps`` of it took most of the time of serving a page, and the
        sandbox must not be what a benchmark of the adapter measures. Strings go through the json
        module's own escaping."""
        if "fields" in user.extra:  # a test's own values: the general way
            record = self.operator(user)
            chosen = {f: record[f] for f in select if f in record}
            return json.dumps(chosen, separators=(",", ":")).encode()
        parts = []
        roles = user.roles
        for field in select:
            if field == "pyUserIdentifier":
                value = _encode(user.id)
            elif field == "pyEmailAddress":
                value = _encode(user.email)
            elif field == "pyUserName":
                value = _encode(user.name)
            elif field == "pyOpDisabled":
                value = "false" if user.active else "true"
            elif field == "pxUpdateDateTime":
                value = '"' + render_stamp(user.modified_at, self.stamp_format) + '"'
            elif field == "pyAccessGroup":
                if not roles:
                    continue
                value = _encode(roles[0])
            elif field == "pyAccessGroupsAdditional":
                if len(roles) < 2:
                    continue
                value = "[" + ",".join(_encode(r) for r in roles[1:]) + "]"
            else:
                raw = self.operator(user).get(field)
                if raw is None:
                    continue
                value = json.dumps(raw, separators=(",", ":"))
            parts.append(f'"{field}":{value}')
        return ("{" + ",".join(parts) + "}").encode()

    def _by_id(self) -> tuple[list[str], list[SandboxUser]]:
        # Operators in key order (how the data view sorts them), rebuilt when the store changed.
        version = (self.store.now, len(self.store.users))
        with self._render_lock:
            if self._sorted is None or self._sorted[0] != version:
                users = sorted(self.store.users, key=lambda u: u.id)
                self._sorted = (version, [u.id for u in users], users)
            return self._sorted[1], self._sorted[2]

    # -- faults -----------------------------------------------------------------------------------
    def inject(self, fault: str, times: int = 1) -> None:
        """The common faults, plus ``truncated`` and ``unavailable``."""
        if fault in EXTRA_FAULTS:
            with self._lock:
                self._faults.extend([fault] * times)
            return
        super().inject(fault, times)

    def _next_fault(self, request: Request) -> str | None:
        # Faults hit the DX API; the token endpoint is how a client recovers from them.
        if self.is_auth(request):
            with self._lock:
                self._count(request)
            return None
        return super()._next_fault(request)

    def fault_response(self, fault: str, request: Request) -> Response | None:
        if fault == "rate_limit":
            return _error(
                429, "Too Many Requests", "Rate limit exceeded", self._wait(self.retry_after)
            )
        if fault == "quota":
            return _error(429, "Too Many Requests", "Quota exceeded", self._wait(QUOTA_RETRY_AFTER))
        if fault == "unavailable":
            return _error(503, "Service Unavailable", "Maintenance", self._wait(self.retry_after))
        if fault == "server_error":
            return _error(500, "Internal Server Error", "The request could not be processed")
        if fault == "malformed":
            return Response(200, SIGN_ON_PAGE, {"Content-Type": "text/html;charset=UTF-8"})
        if fault == "truncated":
            return Response(200, b'{"data":[{"pyUserIdentifier":"op000001@acme","pyUserNa')
        if fault == "expired_token":
            with self._lock:
                self.tokens.clear()
            return self._unauthenticated()
        raise ValueError(f"PegaSandbox has no response for fault {fault!r}")

    @staticmethod
    def _wait(seconds: int) -> dict[str, str]:
        return {"Retry-After": str(seconds)}

    # -- routing ----------------------------------------------------------------------------------
    def is_auth(self, request: Request) -> bool:
        return request.path == "/prweb/PRRestService/oauth2/v1/token"

    def drop_caches(self) -> None:
        with self._render_lock:
            self._fragments.clear()

    def route(self, request: Request) -> Response:
        with self._lock:
            self.seen.append((request.method, request.path))
        if self.is_auth(request):
            if request.method != "POST":
                return _error(405, "Method Not Allowed")
            return self._token(request)
        m = _PATH.fullmatch(request.path)
        if m is None:
            return _error(404, "Not Found", f"no resource at {request.path}")
        if not self._authorized(request):
            return self._unauthenticated()
        kind, view = m.group(1), unquote(m.group(2))
        try:
            if kind == "data_views" and request.method == "POST":
                if view not in self.data_views:
                    return _error(404, "Not Found", "Dataview not found")
                if "read" in self.deny:
                    return _error(403, "Forbidden", f"Access denied: no read access on {view}")
                return self._list(request)
            if kind == "data" and request.method in ("PUT", "DELETE"):
                if view not in self.savable:
                    return _error(404, "Not Found", "Dataview not found")
                if "write" in self.deny:
                    return _error(403, "Forbidden", f"Access denied: no Modify access on {view}")
                return self._save(request) if request.method == "PUT" else self._delete(request)
        except BadRequest as exc:
            return _error(400, "Bad Request", str(exc))
        return _error(405, "Method Not Allowed", f"{request.method} {kind}")

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return False
        expires = self.tokens.get(header[7:])
        return expires is not None and self.clock() < expires

    @staticmethod
    def _unauthenticated() -> Response:
        return _error(
            401,
            "Authentication failed",
            "The access token is invalid or expired",
            {"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )

    def _token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        client = (form.get("client_id"), form.get("client_secret"))
        header = request.headers.get("authorization", "")
        with self._lock:
            self.token_requests.append((header, form))
        if header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                user, password = "", ""
            client = (unquote(user), unquote(password))
        if client != (self.client_id, self.client_secret):
            return Response(
                401,
                {"error": "invalid_client", "error_description": "Client authentication failed"},
            )
        if form.get("grant_type") not in self.grant_types:
            return Response(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant_type not supported",
                },
            )
        token = secrets.token_urlsafe(24)
        lifetime = self.token_lifetime
        with self._lock:
            self.tokens[token] = self.clock() + (3600.0 if lifetime is None else lifetime)
            self.tokens_issued += 1
        body: dict[str, Any] = {"access_token": token, "token_type": "bearer"}
        if lifetime is not None:
            body["expires_in"] = int(lifetime)
        return Response(200, body)

    # -- list data views --------------------------------------------------------------------------
    def _list(self, request: Request) -> Response:
        try:
            body = request.json() or {}
        except ValueError:
            raise BadRequest("the request body is not JSON") from None
        if not isinstance(body, dict):
            raise BadRequest("the request body is not an object")
        with self._lock:
            self.bodies.append(body)
        number, size = self._paging(body.get("paging"))
        query = body.get("query") or {}
        select = self._select(query.get("select"))
        matched = self._matches(query)
        if self.repeat_page_token:
            number = 1
        start = (number - 1) * size
        chunk = matched[start : start + size]
        with self._render_lock:
            fragments = [self._fragment(u, select) for u in chunk]
        now = dt.datetime.now(dt.UTC)
        tail: dict[str, Any] = {
            "fetchDateTime": f"{now:%Y-%m-%dT%H:%M:%S}.{now.microsecond // 1000:03d}Z",
            "pageNumber": number,
            "pageSize": size,
            "resultCount": len(chunk),
        }
        if self.has_more_results:
            tail["hasMoreResults"] = start + size < len(matched)
        rest = json.dumps(tail, separators=(",", ":")).encode()
        return Response(200, b'{"data":[' + b",".join(fragments) + b"]," + rest[1:])

    def _paging(self, paging: Any) -> tuple[int, int]:
        if paging is None:
            return 1, min(DEFAULT_PAGE, self.page_size)
        if not isinstance(paging, dict):
            raise BadRequest("paging must be an object")
        if "maxResultsToFetch" in paging:
            if "pageNumber" in paging or "pageSize" in paging:
                raise BadRequest(
                    "MaxResultsToFetch and paging information both are not supported at same time"
                )
            most = paging["maxResultsToFetch"]
            if not _whole(most) or not 1 <= most <= MAX_PAGE:
                raise BadRequest(f"maxResultsToFetch must be from 1 to {MAX_PAGE}")
            return 1, min(most, self.page_size)
        number, size = paging.get("pageNumber", 1), paging.get("pageSize", DEFAULT_PAGE)
        if not _whole(number) or number < 1:
            raise BadRequest("pageNumber must be a positive integer")
        if not _whole(size) or not 1 <= size <= MAX_PAGE:
            raise BadRequest(f"pageSize must be from 1 to {MAX_PAGE}")
        return number, min(size, self.page_size)

    def _select(self, select: Any) -> tuple[str, ...]:
        if not select:
            return FIELDS
        if not isinstance(select, list):
            raise BadRequest("query.select must be a list")
        names = []
        for item in select:
            name = item.get("field") if isinstance(item, dict) else None
            if name not in FIELDS:
                raise BadRequest(f"The field {name} is not available in this data view")
            names.append(name)
        return tuple(names)

    def _matches(self, query: dict[str, Any]) -> list[SandboxUser]:
        """The operators the query's filter keeps, in its sort order."""
        keys, by_id = self._by_id()
        conditions, logic = self._filter(query.get("filter"))
        sort = query.get("sortBy") or []
        by_key = sort in (
            [{"field": "pyUserIdentifier", "type": "ASC"}],
            [{"field": "pyUserIdentifier"}],
        )
        candidates: list[SandboxUser] = by_id
        remaining = dict(conditions)
        only_and = logic is None or all(t == "AND" or t.startswith("F") for t in _tokens(logic))
        if only_and:
            # The two filters of a pull, served by an index as a database would.
            for name, cond in conditions.items():
                field, op = cond["lhs"]["field"], cond["comparator"]
                value = (cond.get("rhs") or {}).get("value")
                if (
                    field == "pyUserIdentifier"
                    and op == "GT"
                    and isinstance(value, str)
                    and by_key
                    and candidates is by_id
                ):
                    if not self.repeat_page_token:
                        candidates = by_id[bisect.bisect_right(keys, value) :]
                    del remaining[name]
                elif field == "pxUpdateDateTime" and op == "GTE" and candidates is by_id:
                    since = _instant(value, field)
                    candidates = sorted(self.store.since(since), key=lambda u: u.id)
                    del remaining[name]
        if remaining:
            records = {u.number: self.operator(u) for u in candidates}
            candidates = [
                u for u in candidates if _holds(records[u.number], remaining, logic, conditions)
            ]
        else:
            records = {}
        if sort and not by_key:
            records = records or {u.number: self.operator(u) for u in candidates}
            for item in reversed(sort):
                field = item.get("field") if isinstance(item, dict) else None
                if field not in FIELDS:
                    raise BadRequest(f"The field {field} is not available in this data view")
                candidates = sorted(
                    candidates,
                    key=lambda u, f=field: _sort_key(records[u.number].get(f), f),  # type: ignore[misc]
                    reverse=item.get("type") == "DESC",
                )
        return candidates

    @staticmethod
    def _filter(raw: Any) -> tuple[dict[str, Any], str | None]:
        if not raw:
            return {}, None
        if not isinstance(raw, dict) or not isinstance(raw.get("filterConditions"), dict):
            raise BadRequest("filter.filterConditions must be an object")
        conditions = raw["filterConditions"]
        for name, cond in conditions.items():
            lhs = cond.get("lhs") if isinstance(cond, dict) else None
            field = lhs.get("field") if isinstance(lhs, dict) else None
            if field not in FIELDS:
                raise BadRequest(f"The field {field} is not available in this data view")
            if cond.get("comparator") not in _COMPARATORS:
                raise BadRequest(f"comparator {cond.get('comparator')} of {name} is not supported")
        logic = raw.get("logic")
        if logic is not None:
            for token in _tokens(str(logic)):
                if token.startswith("F") and token not in conditions:
                    raise BadRequest(f"the logic names {token}, which is no filter condition")
        return conditions, (str(logic) if logic is not None else None)

    # -- savable data pages -----------------------------------------------------------------------
    def _save(self, request: Request) -> Response:
        try:
            body = request.json() or {}
        except ValueError:
            raise BadRequest("the request body is not JSON") from None
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get(INSTALL_KEY), str):
            raise BadRequest(f"data.{INSTALL_KEY} is required")
        with self._lock:
            self.records[data[INSTALL_KEY]] = dict(data)
            self._sync_installations()
        return Response(200, {"data": data})

    def _delete(self, request: Request) -> Response:
        raw = request.arg("dataViewParameters")
        try:
            keys = json.loads(raw or "")
        except ValueError:
            raise BadRequest("dataViewParameters must be a JSON object") from None
        if not isinstance(keys, dict) or not isinstance(keys.get(INSTALL_KEY), str):
            raise BadRequest(f"dataViewParameters.{INSTALL_KEY} is required")
        with self._lock:
            if self.records.pop(keys[INSTALL_KEY], None) is None:
                return _error(404, "Not Found", "Data record not found")
            self._sync_installations()
        return Response(200, b"")

    def _sync_installations(self) -> None:
        self.installations = {str(r.get("Account")) for r in self.records.values()}


# -- the filter language ----------------------------------------------------------------------------

_COMPARATORS = frozenset(
    {
        "EQ",
        "NEQ",
        "GT",
        "GTE",
        "LT",
        "LTE",
        "IN",
        "NOT_IN",
        "CONTAINS",
        "STARTS_WITH",
        "IS_TRUE",
        "IS_FALSE",
        "IS_NULL",
        "IS_NOT_NULL",
    }
)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _tokens(logic: str) -> list[str]:
    tokens = re.findall(r"\(|\)|[A-Za-z0-9_]+", logic)
    for t in tokens:
        if t not in ("(", ")", "AND", "OR") and not re.fullmatch(r"F[A-Za-z0-9_]*", t):
            raise BadRequest(f"the filter logic {logic!r} is not valid")
    return tokens


def _instant(value: Any, field: str) -> dt.datetime:
    try:
        return read_stamp(value)
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid value {value!r} for field {field}") from None


def _sort_key(value: Any, field: str) -> Any:
    if value is None:
        return (0, "")
    if field in DATE_FIELDS:
        return (1, read_stamp(value))
    return (1, value)


def _compare(record: dict[str, Any], cond: dict[str, Any]) -> bool:
    field, op = cond["lhs"]["field"], cond["comparator"]
    value: Any = record.get(field)
    wanted: Any = (cond.get("rhs") or {}).get("value")
    if op == "IS_NULL":
        return value in (None, "", [])
    if op == "IS_NOT_NULL":
        return value not in (None, "", [])
    if op in ("IS_TRUE", "IS_FALSE"):
        return bool(value) is (op == "IS_TRUE")
    if value is None:
        return op in ("NEQ", "NOT_IN")
    if field in DATE_FIELDS:
        value = read_stamp(value)
        wanted = (
            [_instant(w, field) for w in wanted]
            if op in ("IN", "NOT_IN")
            else _instant(wanted, field)
        )
    elif cond.get("ignoreCase") and isinstance(value, str):
        value = value.lower()
        wanted = (
            [str(w).lower() for w in wanted] if isinstance(wanted, list) else str(wanted).lower()
        )
    if op in ("IN", "NOT_IN"):
        if not isinstance(wanted, list):
            raise BadRequest(f"{op} takes a list of values")
        return (value in wanted) is (op == "IN")
    try:
        if op == "EQ":
            return bool(value == wanted)
        if op == "NEQ":
            return bool(value != wanted)
        if op == "GT":
            return bool(value > wanted)
        if op == "GTE":
            return bool(value >= wanted)
        if op == "LT":
            return bool(value < wanted)
        if op == "LTE":
            return bool(value <= wanted)
        if op == "CONTAINS":
            return str(wanted) in str(value)
        return str(value).startswith(str(wanted))  # STARTS_WITH
    except TypeError:
        raise BadRequest(f"Invalid value {wanted!r} for field {field}") from None


def _holds(
    record: dict[str, Any],
    remaining: dict[str, Any],
    logic: str | None,
    conditions: dict[str, Any],
) -> bool:
    """Whether ``record`` passes the filter. Conditions an index already applied hold for every
    candidate: they are taken as true here."""
    truth = {n: (_compare(record, c) if n in remaining else True) for n, c in conditions.items()}
    if logic is None:
        return all(truth.values())
    tokens = _tokens(logic)
    pos = 0

    def expr() -> bool:
        nonlocal pos
        value = term()
        while pos < len(tokens) and tokens[pos] == "OR":
            pos += 1
            value = term() or value
        return value

    def term() -> bool:
        nonlocal pos
        value = atom()
        while pos < len(tokens) and tokens[pos] == "AND":
            pos += 1
            value = atom() and value
        return value

    def atom() -> bool:
        nonlocal pos
        if pos >= len(tokens):
            raise BadRequest(f"the filter logic {logic!r} is not valid")
        token = tokens[pos]
        pos += 1
        if token == "(":
            value = expr()
            if pos >= len(tokens) or tokens[pos] != ")":
                raise BadRequest(f"the filter logic {logic!r} is not valid")
            pos += 1
            return value
        return truth[token]

    result = expr()
    if pos != len(tokens):
        raise BadRequest(f"the filter logic {logic!r} is not valid")
    return result


SANDBOX = PegaSandbox
