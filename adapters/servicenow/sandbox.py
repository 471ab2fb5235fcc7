"""A ServiceNow instance on 127.0.0.1: the Table API (``sys_user``, ``sys_user_has_role``,
``sys_properties``) and ``/oauth_token.do``, as pysnow 0.7.17 talks to them.

Wire facts (reference/crm-apis.md §3): ``sysparm_limit`` capped at 10,000 with ``sysparm_offset``,
``X-Total-Count`` and a ``Link`` header (first/prev/next/last); booleans and dates as strings
(``"true"``, ``"2025-01-01 00:00:01"`` UTC); references as ``{"link", "value"}`` unless
``sysparm_exclude_reference_link=true``; errors as ``{"error": {"message", "detail"},
"status": "failure"}``; throttling as 429 with ``Retry-After`` and ``X-RateLimit-*`` headers.

Pages are rendered from per-user JSON fragments cached by change stamp, so a 10,000-record page is
one ``b",".join``.

Knobs beyond the base class: ``max_page`` (alias ``page_size``), ``retry_after``,
``repeat_page_token`` (the instance ignores ``sys_id>`` and serves the first page again) and
``refuse_writes`` (the integration user's ACLs do not allow writing ``sys_properties``: a create or
delete is 403 ``ACL Exception``, as an instance answers it).
"""

from __future__ import annotations

import base64
import bisect
import datetime as dt
import json
import secrets
import threading
import time
from json.encoder import encode_basestring_ascii as _encode
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode

from seatgate.core.plugins import (
    Request,
    Response,
    Sandbox,
    SandboxUser,
    UserStore,
    with_raw,
)

MAX_PAGE = 10_000
STAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
ROLES = ("sn_openframe_user", "itil", "sn_customerservice_agent")
USERNAME = "seatgate.integration"
PASSWORD = "sandbox-password"  # the sandbox's own fixed credentials, not a real secret
CLIENT_ID = "seatgate-sandbox-client"
CLIENT_SECRET = "sandbox-client-secret"
RATE_RULE = (
    "d1c7e0a1db3a2010a3b5f2d9f49619aa"  # sys_id of the per-minute rule in sys_rate_limit_rules
)
DEPARTMENT = "a581ab703710200044e0bfc8bcbe5de8"  # cmn_department of every sandbox user
HOURLY_RULE = "0b8e2f65db7a2010a3b5f2d9f4961903"
QUOTA_RETRY_AFTER = 3000  # the hourly rule is spent: wait for the top of the hour


def _error(
    status: int, message: str, detail: str, headers: dict[str, str] | None = None
) -> Response:
    body = {"error": {"message": message, "detail": detail}, "status": "failure"}
    return Response(status, body, headers or {})


def _stamp(instant: dt.datetime) -> str:
    # "YYYY-MM-DD HH:MM:SS" in UTC; isoformat is several times faster than strftime.
    return instant.astimezone(dt.UTC).isoformat(" ", "seconds")[:19]


def _basic(header: str) -> tuple[str | None, str | None]:
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except ValueError:
        return None, None
    return unquote(user), unquote(password)


def _role_sys_id(name: str) -> str:
    return name.encode().hex()[:32].ljust(32, "0")


class ServiceNowSandbox(Sandbox):
    """ServiceNow's Table API for users, roles and installation markers."""

    name = "servicenow"
    unreadable = MappingProxyType({"active": "maybe"})

    def __init__(self, users: int = 100, *, store: UserStore | None = None, port: int = 0) -> None:
        super().__init__(users, store=store, port=port)
        # Lower it to get several pages from a few users; clients still ask for 10,000.
        self.max_page = MAX_PAGE
        self.retry_after = 7  # what a rate_limit fault asks the client to wait, in seconds
        # Instance attributes so a test can give the sandbox a sentinel password.
        self.username, self.password = USERNAME, PASSWORD
        self.client_id, self.client_secret = CLIENT_ID, CLIENT_SECRET
        self.tokens: set[str] = set()
        self.refresh_tokens: set[str] = set()
        self.properties: dict[str, str] = {}  # sys_properties: name -> sys_id
        self._render_lock = threading.Lock()
        self._fragments: dict[tuple[str, ...], dict[int, tuple[dt.datetime, bytes]]] = {}
        self._values_cache: dict[int, tuple[dt.datetime, dict[str, str]]] = {}
        self._grant_fragments: dict[tuple[str, ...], dict[str, bytes]] = {}
        self._sorted: tuple[dt.datetime | None, list[SandboxUser]] = (None, [])
        # A broken instance that ignores sys_id> and serves the first page again (the conformance
        # kit's repeated page token, for keyset paging).
        self.repeat_page_token = False
        self.refuse_writes = False
        self._grants: tuple[dt.datetime, int, list[dict[str, str]]] | None = None

    @property
    def page_size(self) -> int:
        """The conformance kit's name for :attr:`max_page`."""
        return self.max_page

    @page_size.setter
    def page_size(self, value: int) -> None:
        self.max_page = value

    def make_store(self, users: int) -> UserStore:
        return UserStore(users, id_format="{n:032x}", roles=ROLES)

    # -- faults ---------------------------------------------------------------------------------
    def _next_fault(self, request: Request) -> str | None:
        # Faults hit the Table API; the token endpoint is how a client recovers from them.
        if not request.path.startswith("/api/now/"):
            with self._lock:
                self._count(request)
            return None
        return super()._next_fault(request)

    def fault_response(self, fault: str, request: Request) -> Response:
        now = int(time.time())
        if fault == "rate_limit":
            return _error(
                429,
                "Too Many Requests",
                "Rate limit exceeded",
                {
                    "Retry-After": str(self.retry_after),
                    "X-RateLimit-Limit": "120",
                    "X-RateLimit-Reset": str(now + self.retry_after),
                    "X-RateLimit-Rule": RATE_RULE,
                },
            )
        if fault == "quota":
            return _error(
                429,
                "Too Many Requests",
                "Rate limit exceeded",
                {
                    "Retry-After": str(QUOTA_RETRY_AFTER),
                    "X-RateLimit-Limit": "5000",
                    "X-RateLimit-Reset": str(now + QUOTA_RETRY_AFTER),
                    "X-RateLimit-Rule": HOURLY_RULE,
                },
            )
        if fault == "server_error":
            return _error(500, "Internal server error", "Transaction cancelled: node unavailable")
        if fault == "malformed":
            # A page cut off mid-record, as when a node dies while streaming the response.
            return Response(200, b'{"result":[{"sys_id":"6282","user_name":"abel.tu')
        if fault == "expired_token":
            self._expire(request)
            return _error(401, "User Not Authenticated", "Required to provide Auth information")
        raise ValueError(f"no ServiceNow response for fault {fault!r}")

    def _expire(self, request: Request) -> None:
        auth = request.headers.get("authorization", "")
        if auth.startswith("Bearer "):
            self.tokens.discard(auth[7:])

    # -- routing --------------------------------------------------------------------------------
    def is_auth(self, request: Request) -> bool:
        return request.path == "/oauth_token.do"

    def drop_caches(self) -> None:
        self._fragments.clear()
        self._values_cache.clear()
        self._grant_fragments.clear()

    def route(self, request: Request) -> Response:
        if request.path == "/oauth_token.do" and request.method == "POST":
            return self._token(request)
        if not request.path.startswith("/api/now/table/"):
            return _error(400, "Requested URI does not represent any resource", request.path)
        if not self._authorized(request):
            return _error(401, "User Not Authenticated", "Required to provide Auth information")
        table, _, record = request.path[len("/api/now/table/") :].partition("/")
        if table == "sys_user" and request.method == "GET":
            return self._users(request)
        if table == "sys_user_has_role" and request.method == "GET":
            return self._grants_page(request)
        if table == "sys_properties":
            return self._properties(request, record)
        return _error(400, "Invalid table", table)

    def _authorized(self, request: Request) -> bool:
        auth = request.headers.get("authorization", "")
        if auth.startswith("Bearer "):
            return auth[7:] in self.tokens
        if auth.startswith("Basic "):
            return _basic(auth) == (self.username, self.password)
        return False

    def _token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        client = (form.get("client_id"), form.get("client_secret"))
        auth = request.headers.get("authorization", "")
        if auth.startswith("Basic "):
            # requests-oauthlib sends the client credentials as HTTP Basic; the form is also accepted.
            client = _basic(auth)
        client_ok = client == (self.client_id, self.client_secret)
        grant = form.get("grant_type")
        if grant == "password":
            ok = (form.get("username"), form.get("password")) == (self.username, self.password)
        elif grant == "refresh_token":
            ok = form.get("refresh_token") in self.refresh_tokens
        else:
            ok = False
        if not (client_ok and ok):
            # What an instance answers for refused credentials: 401 and this body.
            return Response(401, {"error_description": "access_denied", "error": "server_error"})
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        self.tokens.add(access)
        self.refresh_tokens.add(refresh)
        return Response(
            200,
            {
                "access_token": access,
                "refresh_token": refresh,
                "scope": "useraccount",
                "token_type": "Bearer",
                "expires_in": 1799,
            },
        )

    # -- paging -----------------------------------------------------------------------------------
    def _paging(self, request: Request) -> tuple[int, int]:
        try:
            limit = int(request.arg("sysparm_limit") or MAX_PAGE)
            offset = int(request.arg("sysparm_offset") or 0)
        except ValueError:
            limit, offset = MAX_PAGE, 0
        return max(0, offset), max(1, min(limit, self.max_page))

    def _page(
        self, request: Request, parts: list[bytes], offset: int, limit: int, total: int
    ) -> Response:
        headers = {"X-Total-Count": str(total)}
        if (request.arg("sysparm_suppress_pagination_header") or "").lower() != "true":
            headers["Link"] = self._links(request, offset, limit, total)
        return Response(200, b'{"result":[' + b",".join(parts) + b"]}", headers)

    def _links(self, request: Request, offset: int, limit: int, total: int) -> str:
        base = {
            k: v[0]
            for k, v in request.query.items()
            if k not in ("sysparm_offset", "sysparm_limit")
        }

        def link(at: int, rel: str) -> str:
            query = urlencode(
                {**base, "sysparm_offset": at, "sysparm_limit": limit}, quote_via=quote
            )
            return f'<{self.url}{request.path}?{query}>;rel="{rel}"'

        last = max(0, (total - 1) // limit * limit)
        links = [link(0, "first")]
        if offset > 0:
            links.append(link(max(0, offset - limit), "prev"))
        if offset + limit < total:
            links.append(link(offset + limit, "next"))
        links.append(link(last, "last"))
        return ",".join(links)

    # -- sys_user -------------------------------------------------------------------------------
    def _users(self, request: Request) -> Response:
        offset, limit = self._paging(request)
        since: dt.datetime | None = None
        after: str | None = None  # sys_id>X: keyset paging
        chosen: set[str] | None = None  # sys_idINa,b,c
        order = ""
        equals: list[tuple[str, str]] = []
        for term in (request.arg("sysparm_query") or "").split("^"):
            if not term:
                continue
            if term.startswith("ORDERBY"):
                # The store is kept in sys_updated_on order (unique here); the first ORDERBY wins.
                order = order or term[len("ORDERBY") :]
                continue
            if term.startswith("sys_id>"):
                after = None if self.repeat_page_token else term[len("sys_id>") :]
                continue
            if term.startswith("sys_idIN"):
                chosen = set(term[len("sys_idIN") :].split(","))
                continue
            for op in (">=", ">"):
                if term.startswith("sys_updated_on" + op):
                    try:
                        stamp = dt.datetime.strptime(
                            term[len("sys_updated_on" + op) :], STAMP_FORMAT
                        )
                    except ValueError:
                        return _error(400, "Invalid query", term)
                    since = stamp.replace(tzinfo=dt.UTC) + dt.timedelta(seconds=op == ">")
                    break
            else:
                field, eq, value = term.partition("=")
                if not eq:
                    return _error(400, "Invalid query", term)
                equals.append((field, value))
        if order == "sys_id":
            users = self._by_sys_id(since)
            if after is not None:
                users = users[bisect.bisect_right(users, after, key=_sys_id) :]
        else:
            users = self.store.since(since)
            if after is not None:
                users = [u for u in users if u.id > after]
        if chosen is not None:
            users = [u for u in users if u.id in chosen]
        if equals:
            users = [u for u in users if all(self._field(u, f) == v for f, v in equals)]
        fields = tuple(f for f in (request.arg("sysparm_fields") or "").split(",") if f)
        links = (request.arg("sysparm_exclude_reference_link") or "").lower() != "true"
        parts = self._render(users[offset : offset + limit], fields, links)
        return self._page(request, parts, offset, limit, len(users))

    def _by_sys_id(self, since: dt.datetime | None) -> list[SandboxUser]:
        """The users changed since ``since``, in sys_id order; the whole listing is sorted once
        per state of the store, as an instance's index would be."""
        if since is not None:
            return sorted(self.store.since(since), key=_sys_id)
        version, listing = self._sorted
        if version != self.store.now:
            listing = sorted(self.store.users, key=_sys_id)
            self._sorted = (self.store.now, listing)
        return listing

    def _record(self, user: SandboxUser, links: bool) -> dict[str, Any]:
        record: dict[str, Any] = dict(self._values(user))
        if links:
            record["department"] = {
                "link": f"{self.url}/api/now/table/cmn_department/{DEPARTMENT}",
                "value": DEPARTMENT,
            }
        return record

    def _values(self, user: SandboxUser) -> dict[str, str]:
        """The user's sys_user columns as strings, built once per change stamp."""
        hit = self._values_cache.get(user.number)
        if hit is not None and hit[0] == user.modified_at:
            return hit[1]
        values = {
            "sys_id": user.id,
            "user_name": user.email.split("@")[0],
            "email": user.email,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "name": user.name,
            "active": "true" if user.active else "false",
            "locked_out": "true" if user.extra.get("locked_out") else "false",
            "roles": ",".join(user.roles),
            "title": "",
            "department": DEPARTMENT,
            "sys_created_on": _stamp(user.created_at),
            "sys_updated_on": _stamp(user.modified_at),
        }
        self._values_cache[user.number] = (user.modified_at, values)
        return values

    def _field(self, user: SandboxUser, field: str) -> str:
        return self._values(user).get(field, "")

    def _render(
        self, users: list[SandboxUser], fields: tuple[str, ...], links: bool
    ) -> list[bytes]:
        """Each user's JSON once per field list until its stamp changes; pages join the bytes."""
        key = (*fields, str(links))
        with self._render_lock:
            cache = self._fragments.setdefault(key, {})
        names = fields or (tuple(self._values(users[0])) if users else ())
        # The key of each column pre-encoded; values are plain strings, encoded by json's C escaper.
        heads = [(f, f'"{f}":') for f in names]
        link = _encode(f"{self.url}/api/now/table/cmn_department/{DEPARTMENT}")
        department = f'{{"link":{link},"value":"{DEPARTMENT}"}}' if links else None
        parts = []
        for user in users:
            hit = cache.get(user.number)
            if hit is None or hit[0] != user.modified_at:
                values = self._values(user)
                body = ",".join(
                    head + (department if f == "department" and department else _encode(values[f]))
                    for f, head in heads
                    if f in values
                )
                hit = (user.modified_at, ("{" + body + "}").encode())
                cache[user.number] = hit
            parts.append(with_raw(hit[1], user) if "fields" in user.extra else hit[1])
        return parts

    # -- sys_user_has_role ------------------------------------------------------------------------
    def _all_grants(self) -> list[dict[str, str]]:
        users = self.store.by_number
        version = (self.store.now, len(users))
        if self._grants is None or self._grants[:2] != version:
            grants = []
            stamps = {n: _stamp(u.modified_at) for n, u in users.items()}
            for user in users.values():
                # A grant's own stamp: when the user's roles were last granted apart from the
                # user (UserStore.grant), else when the user was created.
                granted = _stamp(user.extra.get("roles_at", user.created_at))
                for role in user.roles:
                    grants.append(
                        {
                            "sys_id": _role_sys_id(role)[:8] + user.id[8:],
                            "user": user.id,
                            "role": _role_sys_id(role),
                            "role.name": role,
                            "user.sys_updated_on": stamps[user.number],
                            "sys_updated_on": granted,
                            "state": "active",
                            "inherited": "false",
                        }
                    )
            grants.sort(key=lambda g: g["sys_id"])
            self._grant_fragments.clear()
            self._grants = (version[0], version[1], grants)
        return self._grants[2]

    def _grants_page(self, request: Request) -> Response:
        offset, limit = self._paging(request)
        grants = self._all_grants()
        for term in (request.arg("sysparm_query") or "").split("^"):
            if not term or term.startswith("ORDERBY"):
                continue  # grants are kept in sys_id order, the only one the adapter asks for
            if term.startswith("role.nameIN"):
                names = set(term[len("role.nameIN") :].split(","))
                grants = [g for g in grants if g["role.name"] in names]
            elif term.startswith("userIN"):
                ids = set(term[len("userIN") :].split(","))
                grants = [g for g in grants if g["user"] in ids]
            elif term.startswith("user.sys_updated_on>="):
                low = term[len("user.sys_updated_on>=") :]
                grants = [g for g in grants if g["user.sys_updated_on"] >= low]
            elif term.startswith("user.sys_updated_on<="):
                high = term[len("user.sys_updated_on<=") :]
                grants = [g for g in grants if g["user.sys_updated_on"] <= high]
            elif term.startswith("sys_updated_on>="):  # the grant's own stamp
                low = term[len("sys_updated_on>=") :]
                grants = [g for g in grants if g["sys_updated_on"] >= low]
            elif term.startswith("sys_id>"):  # keyset paging; the listing is in sys_id order
                after = term[len("sys_id>") :]
                if not self.repeat_page_token:
                    grants = [g for g in grants if g["sys_id"] > after]
            elif "=" in term:
                field, _, value = term.partition("=")
                grants = [g for g in grants if g.get(field) == value]
            else:
                return _error(400, "Invalid query", term)
        fields = [f for f in (request.arg("sysparm_fields") or "").split(",") if f]
        links = (request.arg("sysparm_exclude_reference_link") or "").lower() != "true"
        with self._render_lock:
            cache = self._grant_fragments.setdefault((*fields, str(links)), {})
        parts = []
        for grant in grants[offset : offset + limit]:
            hit = cache.get(grant["sys_id"])
            if hit is not None:
                parts.append(hit)
                continue
            record: dict[str, Any] = dict(grant)
            if links:
                record["user"] = {
                    "link": f"{self.url}/api/now/table/sys_user/{grant['user']}",
                    "value": grant["user"],
                }
                record["role"] = {
                    "link": f"{self.url}/api/now/table/sys_user_role/{grant['role']}",
                    "value": grant["role"],
                }
            if fields:
                record = {f: record[f] for f in fields if f in record}
            hit = cache[grant["sys_id"]] = json.dumps(record, separators=(",", ":")).encode()
            parts.append(hit)
        return self._page(request, parts, offset, limit, len(grants))

    # -- sys_properties: installation markers -------------------------------------------------------
    def _properties(self, request: Request, record: str) -> Response:
        if self.refuse_writes and request.method in ("POST", "DELETE"):
            verb = "Insert" if request.method == "POST" else "Delete"
            return _error(
                403,
                "Operation Failed",
                f"ACL Exception {verb} Failed due to security constraints",
            )
        if request.method == "GET" and not record:
            query = request.arg("sysparm_query") or ""
            name = query[len("name=") :] if query.startswith("name=") else None
            found = [(n, s) for n, s in self.properties.items() if name is None or n == name]
            parts = [json.dumps({"sys_id": s, "name": n}).encode() for n, s in found]
            return self._page(request, parts, 0, MAX_PAGE, len(parts))
        if request.method == "POST" and not record:
            body = request.json() or {}
            name = str(body.get("name", ""))
            if not name:
                return _error(400, "Invalid insert", "name is mandatory")
            sys_id = secrets.token_hex(16)
            self.properties[name] = sys_id
            self._mark(name, True)
            return Response(201, {"result": {"sys_id": sys_id, "name": name}})
        if request.method == "DELETE" and record:
            for name, sys_id in list(self.properties.items()):
                if sys_id == record:
                    del self.properties[name]
                    self._mark(name, any(n == name for n in self.properties))
                    return Response(204, b"")
            return _error(
                404,
                "No Record found",
                "Record doesn't exist or ACL restricts the record retrieval",
            )
        return _error(405, "Method not Supported", request.method)

    def _mark(self, name: str, present: bool) -> None:
        prefix = "x_seatgate.installation."
        if not name.startswith(prefix):
            return
        account = name[len(prefix) :].partition(".")[2]
        if present:
            self.installations.add(account)
        else:
            self.installations.discard(account)

    # -- connecting -------------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        """OAuth (password grant) against this sandbox: the flow where a token can expire."""
        return {
            "base_url": self.url,
            "username": self.username,
            "password": self.password,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "timeout": self.timeout_seconds / 2,
        }

    def basic_settings(self) -> dict[str, Any]:
        """Basic auth against this sandbox (no token request)."""
        return {
            "base_url": self.url,
            "username": self.username,
            "password": self.password,
            "timeout": self.timeout_seconds / 2,
        }

    def bad_settings(self) -> dict[str, Any]:
        return {**self.settings(), "password": "not-the-password"}


SANDBOX = ServiceNowSandbox

__all__ = ["SANDBOX", "ServiceNowSandbox"]


def _sys_id(user: SandboxUser) -> str:
    return user.id
