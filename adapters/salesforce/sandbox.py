"""A local Salesforce org that speaks what simple-salesforce calls: logins, SOQL on User, paging.

Built to ``reference/crm-apis.md`` section 1:

* logins: SOAP ``POST /services/Soap/u/{version}`` (username + password + security token) answering
  ``sessionId``/``serverUrl``, and OAuth ``POST /services/oauth2/token`` for the JWT bearer and
  client-credentials grants; a session id given up front (``settings(auth="session")``) needs none;
* ``GET /services/data/v59.0/query/?q=SOQL`` on ``User`` with the page size of the
  ``Sforce-Query-Options: batchSize=N`` header (200..2000, default 2000), then
  ``GET {nextRecordsUrl}`` until ``done``; ``totalSize`` is the whole query's count on every page;
* the ``WHERE`` shapes the adapter sends (change stamp, user type, call centers, permission-set and
  package-licence semi-joins); anything else is a 400 ``MALFORMED_QUERY``, so a drift between the
  adapter's SOQL and this sandbox shows at once;
* errors as JSON arrays ``[{"message", "errorCode"}]`` with Salesforce's status codes; the daily
  limit is 403 ``REQUEST_LIMIT_EXCEEDED``, an expired session 401 ``INVALID_SESSION_ID``;
* the installation marker the adapter upserts/deletes by external id
  (``/sobjects/Seatgate_Installation__c/Account_Key__c/{key}``).

Generated users (by their number ``n``, each overridable through ``SandboxUser.extra``): profile and
user role from ``roles[0]``/``roles[1]``; every user sits in a call center, odd numbers in
:attr:`CALL_CENTER_ID`, even ones in :attr:`CALL_CENTER_ID_2`; every fourth holds permission set
:attr:`PERMISSION_SET`; all but every fifth hold the managed package licence of :attr:`NAMESPACE`.
So the default settings (no namespace, no voice selection) pull every user for both products, and a
test narrows them with ``settings(namespace=..., voice_call_centers=[...])``.

Knobs beyond the base class: ``page_size`` (pages below 2000, for tests), ``retry_after`` (what a
``rate_limit`` fault asks for), ``repeat_page_token`` (every page names itself as the next one),
``auth`` (the login flow :meth:`settings` configures: password, session, jwt or client),
``bind_locators`` (a query locator answers only the session that opened it: after a re-login,
``query_more`` is 400 ``INVALID_QUERY_LOCATOR``), :meth:`lose_locators` (every open locator
expires now), ``managed_package`` (False: a Voice-only org, without the package's installation
object) and ``refuse_writes`` (the integration user may not write the installation object: 403
``INSUFFICIENT_ACCESS_OR_READONLY``).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import itertools
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import attrs

from seatgate.core.plugins import (
    Request,
    Response,
    Sandbox,
    SandboxUser,
    UserStore,
    with_raw,
)

VERSION = "59.0"
API = f"/services/data/v{VERSION}"
MAX_BATCH = 2000
MIN_BATCH = 200
# Salesforce keeps a handful of open query cursors per user; old ones expire.
MAX_OPEN_CURSORS = 64

Predicate = Callable[[SandboxUser], bool]


def _error(status: int, code: str, message: str, **headers: str) -> Response:
    return Response(status, [{"message": message, "errorCode": code}], headers)


def _sf_stamp(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def _soql_string(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal[1:-1])


@attrs.define
class _Cursor:
    users: list[SandboxUser]
    fields: tuple[str, ...]
    batch: int
    session: str  # the session that opened it


class SalesforceSandbox(Sandbox):
    """A Salesforce org on 127.0.0.1. ``page_size`` caps pages below 2000 for tests."""

    name = "salesforce"
    unreadable = MappingProxyType({"SystemModstamp": "yesterday"})

    ORG_ID = "00D000000000001AAA"
    USERNAME = "integration@sandbox.example.com"
    PASSWORD = "sandbox-password"
    SECURITY_TOKEN = "sandboxSecurityToken"
    CONSUMER_KEY = "3MVG9sandboxConsumerKey"
    CONSUMER_SECRET = "sandbox-consumer-secret"
    SESSION_ID = ORG_ID[:15] + "!AQsandboxStaticSession"
    MY_DOMAIN = "sandbox.my"
    NAMESPACE = "seatgate"
    CALL_CENTER_ID = "04v000000000001AAA"
    CALL_CENTER_ID_2 = "04v000000000002AAA"
    PERMISSION_SET = "Seatgate_Voice"
    INSTALL_OBJECT = "Seatgate_Installation__c"
    INSTALL_KEY = "Account_Key__c"
    DAILY_LIMIT = 15000

    def __init__(
        self,
        users: int = 100,
        *,
        store: UserStore | None = None,
        port: int = 0,
        page_size: int = MAX_BATCH,
        auth: str = "password",
    ) -> None:
        super().__init__(users, store=store, port=port)
        self.page_size = page_size
        self.auth = auth
        self.repeat_page_token = False
        self.retry_after = 3
        self.bind_locators = False
        self.managed_package = True
        self.refuse_writes = False
        self.sessions: set[str] = {self.SESSION_ID}
        self.logins = 0
        self.install_records: dict[str, dict[str, Any]] = {}
        self._cursors: OrderedDict[str, _Cursor] = OrderedDict()
        self._ids = itertools.count(1)
        self._state = threading.Lock()
        self._jwt_keys: tuple[str, str] | None = None
        self._rendered: dict[tuple[str, ...], dict[int, tuple[dt.datetime, str]]] = {}

    def make_store(self, users: int) -> UserStore:
        store = UserStore(
            users,
            id_format="005{n:012d}AAA",
            roles=("Contact Center Agent", "Contact Center Supervisor", "Standard User"),
        )
        # Two thirds of the generated users also have a user role, as orgs with a role hierarchy do.
        for user in store.users:
            role = ("Agent", "Team Lead", None)[user.number % 3]
            if role:
                user.roles.append(role)
        return store

    # -- what a generated user looks like in Salesforce ------------------------------------------
    def call_center(self, user: SandboxUser) -> str | None:
        default = self.CALL_CENTER_ID_2 if user.number % 2 == 0 else self.CALL_CENTER_ID
        center = user.extra.get("call_center", default)
        return None if center is None else str(center)

    def permission_sets(self, user: SandboxUser) -> list[str]:
        default = [self.PERMISSION_SET] if user.number % 4 == 0 else []
        return [str(s) for s in user.extra.get("permission_sets", default)]

    def packages(self, user: SandboxUser) -> list[str]:
        default = [self.NAMESPACE] if user.number % 5 != 0 else []
        return [str(p) for p in user.extra.get("packages", default)]

    # -- keys for the JWT bearer flow --------------------------------------------------------------
    @property
    def jwt_private_key(self) -> str:
        """The PEM key of the connected app's certificate (generated once per sandbox)."""
        return self._keys()[0]

    def _keys(self) -> tuple[str, str]:
        if self._jwt_keys is None:
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import rsa

            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            private = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode()
            public = (
                key.public_key()
                .public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
                .decode()
            )
            self._jwt_keys = (private, public)
        return self._jwt_keys

    # -- routing -----------------------------------------------------------------------------------
    def is_auth(self, request: Request) -> bool:
        return _is_login(request.path)

    def route(self, request: Request) -> Response:
        path = request.path
        if request.method == "POST" and path.startswith("/services/Soap/u/"):
            return self._soap_login(request)
        if request.method == "POST" and path == "/services/oauth2/token":
            return self._token(request)
        if not path.startswith(API + "/"):
            return _error(404, "NOT_FOUND", "The requested resource does not exist")
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.sessions:
            return _error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        rest = path[len(API) :]
        if request.method == "GET" and rest in ("/query", "/query/"):
            return self._query(request, auth[7:])
        if request.method == "GET" and rest.startswith("/query/"):
            return self._query_more(rest[len("/query/") :], auth[7:])
        install = f"/sobjects/{self.INSTALL_OBJECT}/{self.INSTALL_KEY}/"
        if rest.startswith(install) and request.method in ("PATCH", "DELETE"):
            return self._installation(request.method, rest[len(install) :], request)
        return _error(404, "NOT_FOUND", "The requested resource does not exist")

    def _next_fault(self, request: Request) -> str | None:
        # An expired session is a fault of API requests: a login in between (the client's
        # refresh) neither meets it nor uses it up, so two injected expiries hit two API calls.
        if _is_login(request.path):
            with self._lock:
                if self._faults and self._faults[0] == "expired_token":
                    self._count(request)
                    return None
        return super()._next_fault(request)

    def _limit_headers(self) -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={self.requests}/{self.DAILY_LIMIT}"}

    # -- logins ------------------------------------------------------------------------------------
    def _new_session(self) -> str:
        with self._state:
            self.logins += 1
            token = f"{self.ORG_ID[:15]}!AQsession{next(self._ids):08d}"
            self.sessions.add(token)
        return token

    def _soap_login(self, request: Request) -> Response:
        body = request.body.decode()
        username = re.search(r"<n1:username>(.*?)</n1:username>", body, re.S)
        password = re.search(r"<n1:password>(.*?)</n1:password>", body, re.S)
        given = (
            html.unescape(username.group(1)) if username else None,
            html.unescape(password.group(1)) if password else None,
        )
        if given != (self.USERNAME, self.PASSWORD + self.SECURITY_TOKEN):
            return self._soap_fault(
                "INVALID_LOGIN", "Invalid username, password, security token; or user locked out."
            )
        server_url = f"{self.url}/services/Soap/u/{VERSION}/{self.ORG_ID}"
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
            ' xmlns="urn:partner.soap.sforce.com">'
            "<soapenv:Body><loginResponse><result>"
            "<passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
            f"<serverUrl>{server_url}</serverUrl><sessionId>{self._new_session()}</sessionId>"
            "<userId>005000000000000AAA</userId>"
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )
        return Response(200, xml.encode(), {"Content-Type": "text/xml; charset=utf-8"})

    @staticmethod
    def _soap_fault(code: str, message: str) -> Response:
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
            ' xmlns:sf="urn:fault.partner.soap.sforce.com"'
            ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            f"<soapenv:Body><soapenv:Fault><faultcode>sf:{code}</faultcode>"
            f"<faultstring>{code}: {html.escape(message)}</faultstring>"
            '<detail><sf:LoginFault xsi:type="sf:LoginFault">'
            f"<sf:exceptionCode>{code}</sf:exceptionCode>"
            f"<sf:exceptionMessage>{html.escape(message)}</sf:exceptionMessage>"
            "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
        )
        # SOAP faults come with HTTP 500, login failures included.
        return Response(500, xml.encode(), {"Content-Type": "text/xml; charset=utf-8"})

    def _token(self, request: Request) -> Response:
        from urllib.parse import parse_qs

        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        grant = form.get("grant_type")
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            ok = self._jwt_ok(form.get("assertion", ""))
        elif grant == "client_credentials":
            auth = request.headers.get("authorization", "")
            try:
                pair = base64.b64decode(auth.removeprefix("Basic ")).decode()
            except ValueError:
                pair = ""
            if pair != f"{self.CONSUMER_KEY}:{self.CONSUMER_SECRET}":
                return Response(
                    400,
                    {"error": "invalid_client", "error_description": "invalid client credentials"},
                )
            ok = True
        else:
            return Response(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant type not supported",
                },
            )
        if not ok:
            return Response(
                400, {"error": "invalid_grant", "error_description": "authentication failure"}
            )
        token = self._new_session()
        return Response(
            200,
            {
                "access_token": token,
                "instance_url": self.url,
                "id": f"{self.url}/id/{self.ORG_ID}/005000000000000AAA",
                "token_type": "Bearer",
                "scope": "api",
            },
        )

    def _jwt_ok(self, assertion: str) -> bool:
        import jwt

        try:
            claims = jwt.decode(
                assertion,
                self._keys()[1],
                algorithms=["RS256"],
                options={"verify_aud": False},
            )
        except jwt.PyJWTError:
            return False
        return (
            claims.get("iss") == self.CONSUMER_KEY
            and claims.get("sub") == self.USERNAME
            and str(claims.get("aud", "")).endswith(".salesforce.com")
        )

    # -- SOQL --------------------------------------------------------------------------------------
    _SELECT = re.compile(
        r"^SELECT (?P<fields>.+?) FROM User"
        r"(?: WHERE (?P<where>.+?))?"
        r"(?: ORDER BY (?P<order>SystemModstamp(?:, Id)?))?"
        r"(?: LIMIT (?P<limit>\d+))?$"
    )
    _PERMSET_SUBQUERY = re.compile(
        r"\(SELECT PermissionSet\.Name FROM PermissionSetAssignments"
        r"(?: WHERE PermissionSet\.IsOwnedByProfile = false)?\)"
    )
    _STRING = r"'(?:[^'\\]|\\.)*'"
    FIELDS = (
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
        "LastModifiedDate",
        "SystemModstamp",
        "PermissionSetAssignments",
    )

    def lose_locators(self) -> None:
        """Every open query locator expires now: its next ``query_more`` is 400
        ``INVALID_QUERY_LOCATOR``."""
        with self._state:
            self._cursors.clear()

    def _query(self, request: Request, session: str) -> Response:
        soql = " ".join((request.arg("q") or "").split())
        soql = self._PERMSET_SUBQUERY.sub("PermissionSetAssignments", soql)
        match = self._SELECT.match(soql)
        if not match:
            return _error(400, "MALFORMED_QUERY", f"unexpected SOQL for this sandbox: {soql[:200]}")
        fields = tuple(f.strip() for f in match["fields"].split(","))
        unknown = [f for f in fields if f not in self.FIELDS]
        if unknown:
            return _error(400, "INVALID_FIELD", f"No such column '{unknown[0]}' on entity 'User'.")
        try:
            since, predicates = self._where(match["where"])
        except ValueError as exc:
            return _error(400, "MALFORMED_QUERY", str(exc))
        candidates = self.store.since(since)
        users = (
            [u for u in candidates if all(p(u) for p in predicates)] if predicates else candidates
        )
        if match["limit"]:
            users = users[: int(match["limit"])]
        batch = MAX_BATCH
        options = request.headers.get("sforce-query-options", "")
        size = re.search(r"batchSize=(\d+)", options)
        if size:
            batch = max(MIN_BATCH, min(MAX_BATCH, int(size.group(1))))
        cursor = _Cursor(users, fields, min(batch, self.page_size), session)
        with self._state:
            locator = f"01g{next(self._ids):015d}"
            self._cursors[locator] = cursor
            while len(self._cursors) > MAX_OPEN_CURSORS:
                self._cursors.popitem(last=False)
        return self._page(locator, cursor, 0)

    def _query_more(self, ident: str, session: str) -> Response:
        locator, _, offset = ident.partition("-")
        with self._state:
            cursor = self._cursors.get(locator)
        if cursor is not None and self.bind_locators and cursor.session != session:
            cursor = None  # another session's locator: this one does not know it
        if cursor is None or not offset.isdigit():
            return _error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(locator, cursor, int(offset))

    def _page(self, locator: str, cursor: _Cursor, offset: int) -> Response:
        end = offset + cursor.batch
        chunk = cursor.users[offset:end]
        done = end >= len(cursor.users)
        records = ",".join(self._record(u, cursor.fields) for u in chunk)
        head = f'{{"totalSize":{len(cursor.users)},"done":{"true" if done else "false"},'
        if done:
            with self._state:
                self._cursors.pop(locator, None)
        else:
            following = offset if self.repeat_page_token else end
            head += f'"nextRecordsUrl":"{API}/query/{locator}-{following}",'
        return Response(200, f'{head}"records":[{records}]}}'.encode(), self._limit_headers())

    def _record(self, user: SandboxUser, fields: tuple[str, ...]) -> str:
        # Page rendering is the benchmark's hot path: each user is rendered once per field list
        # and kept until its change stamp moves (every knob of the store moves it).
        cache = self._rendered.setdefault(fields, {})
        hit = cache.get(user.number)
        if hit is None or hit[0] != user.modified_at:
            hit = (user.modified_at, self._render(user, fields))
            cache[user.number] = hit
        if "fields" in user.extra:
            return with_raw(hit[1].encode(), user).decode()
        return hit[1]

    def _render(self, user: SandboxUser, fields: tuple[str, ...]) -> str:
        stamp = _sf_stamp(user.modified_at)
        record: dict[str, Any] = {
            "attributes": {"type": "User", "url": f"{API}/sobjects/User/{user.id}"}
        }
        for field in fields:
            if field == "Id":
                record["Id"] = user.id
            elif field == "Username" or field == "Email":
                record[field] = user.email
            elif field == "Name":
                record["Name"] = user.name
            elif field == "FirstName":
                record["FirstName"] = user.first_name
            elif field == "LastName":
                record["LastName"] = user.last_name
            elif field == "IsActive":
                record["IsActive"] = user.active
            elif field == "UserType":
                record["UserType"] = user.extra.get("user_type", "Standard")
            elif field == "CallCenterId":
                record["CallCenterId"] = self.call_center(user)
            elif field == "Profile.Name":
                profile = user.roles[0] if user.roles else "Standard User"
                record["Profile"] = {"attributes": {"type": "Profile"}, "Name": profile}
            elif field == "UserRole.Name":
                role = user.roles[1] if len(user.roles) > 1 else None
                record["UserRole"] = role and {"attributes": {"type": "UserRole"}, "Name": role}
            elif field == "LastModifiedDate" or field == "SystemModstamp":
                record[field] = stamp
            elif field == "PermissionSetAssignments":
                sets = self.permission_sets(user)
                record[field] = (
                    None
                    if not sets
                    else {
                        "totalSize": len(sets),
                        "done": True,
                        "records": [
                            {
                                "attributes": {"type": "PermissionSetAssignment"},
                                "PermissionSet": {
                                    "attributes": {"type": "PermissionSet"},
                                    "Name": s,
                                },
                            }
                            for s in sets
                        ],
                    }
                )
        return json.dumps(record, separators=(",", ":"))

    def _where(self, where: str | None) -> tuple[dt.datetime | None, list[Predicate]]:
        since: dt.datetime | None = None
        predicates: list[Predicate] = []
        for term in _split_top(where or "", " AND "):
            stamp = re.fullmatch(r"SystemModstamp >= (\S+)", term)
            if stamp:
                since = dt.datetime.fromisoformat(stamp.group(1).replace("Z", "+00:00"))
                continue
            # No OR: SOQL refuses semi-joins under OR, and the adapter sends none.
            predicates.append(self._predicate(term))
        return since, predicates

    def _predicate(self, term: str) -> Predicate:
        s = self._STRING
        if m := re.fullmatch(rf"UserType = ({s})", term):
            wanted = _soql_string(m.group(1))
            return lambda u: u.extra.get("user_type", "Standard") == wanted
        if term == "CallCenterId != null":
            return lambda u: self.call_center(u) is not None
        if m := re.fullmatch(rf"CallCenterId IN \(((?:{s},?)+)\)", term):
            centers = {_soql_string(x) for x in re.findall(s, m.group(1))}
            return lambda u: self.call_center(u) in centers
        if m := re.fullmatch(
            rf"Id IN \(SELECT UserId FROM UserPackageLicense"
            rf" WHERE PackageLicense\.NamespacePrefix = ({s})\)",
            term,
        ):
            namespace = _soql_string(m.group(1))
            return lambda u: namespace in self.packages(u)
        if m := re.fullmatch(
            rf"Id IN \(SELECT AssigneeId FROM PermissionSetAssignment"
            rf" WHERE PermissionSet\.Name = ({s})\)",
            term,
        ):
            name = _soql_string(m.group(1))
            return lambda u: name in self.permission_sets(u)
        raise ValueError(f"unexpected condition for this sandbox: {term[:200]}")

    # -- installation marker -----------------------------------------------------------------------
    def _installation(self, method: str, key: str, request: Request) -> Response:
        from urllib.parse import unquote

        if not self.managed_package:
            # Without the package its object does not exist: an unknown sObject type.
            return _error(404, "NOT_FOUND", "The requested resource does not exist")
        if self.refuse_writes:
            return _error(
                403,
                "INSUFFICIENT_ACCESS_OR_READONLY",
                f"insufficient access rights on object {self.INSTALL_OBJECT}",
            )
        key = unquote(key)
        with self._state:
            if method == "PATCH":
                created = key not in self.install_records
                fields = request.json() or {}
                record = self.install_records.setdefault(
                    key, {"Id": f"a00{len(self.install_records) + 1:015d}"}
                )
                record.update(fields)
                self.installations.add(key)
                if created:
                    return Response(
                        201, {"id": record["Id"], "success": True, "errors": [], "created": True}
                    )
                return Response(204, b"")
            if key not in self.install_records:
                return _error(
                    404,
                    "NOT_FOUND",
                    "Provided external ID field does not exist or is not accessible",
                )
            del self.install_records[key]
            self.installations.discard(key)
            return Response(204, b"")

    # -- faults ------------------------------------------------------------------------------------
    def fault_response(self, fault: str, request: Request) -> Response | None:
        if request.path.startswith("/services/Soap/u/"):
            codes = {
                "server_error": "SERVER_UNAVAILABLE",
                "rate_limit": "SERVER_UNAVAILABLE",
                "quota": "REQUEST_LIMIT_EXCEEDED",
                "malformed": None,
                "expired_token": None,
            }
            code = codes.get(fault)
            if code is None:
                return (
                    Response(200, b"<?xml version=", {"Content-Type": "text/xml"})
                    if fault == "malformed"
                    else None
                )
            return self._soap_fault(code, "login is not available now")
        if request.path == "/services/oauth2/token":
            return self._token_fault(fault)
        if fault == "rate_limit":
            # Salesforce's own REST limits are 403s; a 429 with Retry-After is what a gateway in
            # front of the org (or the API's concurrency guard) answers.
            return _error(
                429,
                "REQUEST_LIMIT_EXCEEDED",
                "ConcurrentPerOrgLongTxn Limit exceeded.",
                **{"Retry-After": str(self.retry_after)},
            )
        if fault == "server_error":
            return _error(
                503,
                "SERVER_UNAVAILABLE",
                "Server is temporarily unavailable. Please try again later.",
            )
        if fault == "malformed":
            return Response(200, b'{"totalSize":5,"done":false,"records":[{"attributes":{"type"')
        if fault == "expired_token":
            auth = request.headers.get("authorization", "")
            token = auth[7:]
            with self._state:
                # A login-issued session really ends; the static one stands for a token the
                # caller owns and keeps, so only this request is refused.
                if token != self.SESSION_ID:
                    self.sessions.discard(token)
            return _error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if fault == "quota":
            return _error(
                403,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
                **{"Sforce-Limit-Info": f"api-usage={self.DAILY_LIMIT}/{self.DAILY_LIMIT}"},
            )
        raise ValueError(f"no response for fault {fault!r}")

    # -- settings ----------------------------------------------------------------------------------
    def settings(self, auth: str | None = None, **extra: Any) -> dict[str, Any]:
        """A config pointing the adapter here; ``auth`` (default: the ``auth`` knob) is password,
        session, jwt or client; ``extra`` adds or overrides settings."""
        auth = auth or self.auth
        base: dict[str, Any] = {"login_url": self.url, "timeout": 10}
        if auth == "password":
            base |= {
                "username": self.USERNAME,
                "password": self.PASSWORD,
                "security_token": self.SECURITY_TOKEN,
            }
        elif auth == "session":
            base |= {"session_id": self.SESSION_ID, "instance_url": self.url}
            del base["login_url"]
        elif auth == "jwt":
            base |= {
                "username": self.USERNAME,
                "consumer_key": self.CONSUMER_KEY,
                "private_key": self.jwt_private_key,
            }
        elif auth == "client":
            base |= {
                "consumer_key": self.CONSUMER_KEY,
                "consumer_secret": self.CONSUMER_SECRET,
                "domain": self.MY_DOMAIN,
            }
        else:
            raise ValueError(f"unknown auth {auth!r}: expected password, session, jwt or client")
        return base | extra

    def bad_settings(self) -> dict[str, Any]:
        """The settings of the ``auth`` knob's flow with one credential the org refuses."""
        wrong = {
            "password": {"password": "not-the-password"},
            "session": {"session_id": self.ORG_ID[:15] + "!AQnotAsession"},
            "jwt": {"consumer_key": "3MVG9unknownConsumerKey"},
            "client": {"consumer_secret": "not-the-secret"},
        }
        return self.settings() | wrong[self.auth]

    def _token_fault(self, fault: str) -> Response | None:
        # The OAuth token endpoint answers JSON objects (error / error_description), not the REST
        # API's arrays; these shapes are inferred, the reference has only invalid_grant.
        if fault == "rate_limit":
            body = {"error": "rate_limit_exceeded", "error_description": "too many requests"}
            return Response(429, body, {"Retry-After": str(self.retry_after)})
        if fault == "server_error":
            body = {"error": "temporarily_unavailable", "error_description": "try again later"}
            return Response(503, body)
        if fault == "quota":
            body = {"error": "REQUEST_LIMIT_EXCEEDED", "error_description": "limit exceeded"}
            return Response(403, body)
        if fault == "malformed":
            return Response(200, b'{"access_token":')
        return None  # an expired token does not apply to a login


def _is_login(path: str) -> bool:
    return path.startswith("/services/Soap/u/") or path == "/services/oauth2/token"


def _split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside parentheses and string literals."""
    parts: list[str] = []
    depth = 0
    start = 0
    i = 0
    quoted = False
    while i < len(text):
        ch = text[i]
        if quoted:
            if ch == "\\":
                i += 1
            elif ch == "'":
                quoted = False
        elif ch == "'":
            quoted = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and text.startswith(sep, i):
            parts.append(text[start:i])
            i += len(sep)
            start = i
            continue
        i += 1
    tail = text[start:]
    if tail:
        parts.append(tail)
    return parts


SANDBOX = SalesforceSandbox
