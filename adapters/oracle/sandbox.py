"""A local Oracle B2C Service that speaks what the adapter uses of Connect REST v1.4.

Endpoints (reference/crm-apis.md section 4; [S] sourced, [I] inferred there):

* ``GET /services/rest/connect/{v1.4|latest}/queryResults/?query=Q1;Q2`` — ROQL tabular queries,
  several per request, each answered as ``{tableName, count, columnNames, rows}`` with every value
  a string [S]. The ROQL understood: ``SELECT`` fields or ``COUNT(field)``, ``FROM Account`` or a
  custom object, ``WHERE`` with ``AND``/``OR``/``NOT``, parentheses, ``= != <> < <= > >=``,
  ``LIKE``, ``IN (...)``, ``IS [NOT] NULL``, ``ORDER BY`` one field, ``LIMIT``, ``OFFSET``. At most
  :attr:`page_size` rows per query (20,000 by default, Oracle's cap for the operational database,
  applied silently as Oracle does [S]). A column is named by the last part of its field, so
  ``Profile.Name`` and ``StaffGroup.Name`` are both ``Name`` [I].
* ``POST /services/rest/connect/v1.4/SeatGate.Installation``, ``GET|DELETE .../{id}`` — the custom
  object install writes; :attr:`installations` follows it (the account names recorded).
* ``POST /oauth2/v1/token`` — the identity domain's client-credentials grant [I].

Every API call needs ``OSvC-CREST-Application-Context`` (missing or over 40 characters: 400 [S])
and one of Basic, ``Session <id>`` or ``Bearer <token>``; every answer carries
``osvc-crest-next-request-after`` (milliseconds, :attr:`next_request_after_ms`) and a new
``osvc-crest-api-access-token``, which the next call may echo (an unknown one is refused) [S].
Times are rendered in UTC with ``OSvC-CREST-Time-UTC: yes``, otherwise in the site's time zone
without a designator [I] (:attr:`site_utc_offset_hours`). Errors are problem-detail bodies [I].

Staff accounts come from the generated :class:`UserStore`: ``ID`` is the user's number, the
profile is ``roles[0]`` and the staff group ``roles[1]``, a deactivated user is
``Attributes.PermanentlyDisabled``, and ``extra["locked"]`` sets ``Attributes.AccountLocked``.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import datetime as dt
import itertools
import json
import re
import secrets
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from json.encoder import encode_basestring_ascii as _encode
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qs

import attrs

from seatgate.core.plugins import Request, Response, Sandbox, SandboxUser, UserStore

MAX_ROWS = 20_000
PROFILES = ("Agent", "Supervisor", "Administrator")
STAFF_GROUPS = ("Contact Center", "Back Office")
API = re.compile(r"/services/rest/connect/(v1\.4|latest)/(?P<rest>.*)")
TOKEN_PATH = "/oauth2/v1/token"
INSTALL_OBJECT = "SeatGate.Installation"
INSTALL_FIELDS = ("InstallKey", "AccountName", "Product")
AUTH_MODES = ("basic", "session", "bearer", "oauth")
EXTRA_FAULTS = ("truncated",)  # beyond core.sandbox.FAULTS: a 200 whose JSON is cut mid-row


# ---------------------------------------------------------------------------------------------------
# ROQL, as much as the sandbox answers
# ---------------------------------------------------------------------------------------------------


class RoqlError(ValueError):
    """A query the sandbox (like Oracle) refuses with 400."""


_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.|'')*')|(?P<num>-?\d+(?:\.\d+)?)(?![A-Za-z_])"
    r"|(?P<op>>=|<=|!=|<>|=|<|>)|(?P<punct>[(),*])"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*))"
)
_KEYWORDS = frozenset(
    {"select", "from", "where", "and", "or", "not", "order", "by", "asc", "desc", "limit",
     "offset", "like", "in", "is", "null", "count"}
)  # fmt: skip


@attrs.frozen
class Lit:
    value: str | float | None  # a string literal (unquoted), a number, or NULL


@attrs.frozen
class Query:
    fields: tuple[str, ...]
    count: str | None  # COUNT(field): the field
    table: str
    where: Any  # a node: ("and"|"or", [..]) ("not", n) ("cmp", f, op, Lit) ("null", f, bool)
    #            ("like", f, pattern, negated) ("in", f, [Lit], negated); None: every row
    order: tuple[str, bool] | None  # (field, descending)
    limit: int | None
    offset: int


def split_queries(text: str) -> list[str]:
    """``Q1;Q2;`` as its queries (a ``;`` inside a string literal is no separator)."""
    out: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == "'":
            quoted = not quoted
        if ch == ";" and not quoted:
            out.append("".join(current))
            current = []
        else:
            current.append(ch)
    out.append("".join(current))
    return [q.strip() for q in out if q.strip()]


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise RoqlError(f"unexpected {text[pos : pos + 20]!r}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "word" and value.lower() in _KEYWORDS:
            kind, value = "kw", value.lower()
        out.append((kind, value))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self, kind: str | None = None, value: str | None = None) -> bool:
        if self.i >= len(self.toks):
            return False
        k, v = self.toks[self.i]
        return (kind is None or k == kind) and (value is None or v == value)

    def take(self, kind: str, value: str | None = None) -> str:
        if not self.peek(kind, value):
            got = self.toks[self.i][1] if self.i < len(self.toks) else "the end"
            raise RoqlError(f"expected {value or kind}, found {got!r}")
        self.i += 1
        return self.toks[self.i - 1][1]

    def query(self) -> Query:
        self.take("kw", "select")
        fields: list[str] = []
        count = None
        while True:
            if self.peek("kw", "count"):
                self.take("kw", "count")
                self.take("punct", "(")
                count = (
                    "ID" if self.peek("punct", "*") and self.take("punct") else self.take("word")
                )
                self.take("punct", ")")
            else:
                fields.append(self.take("word"))
            if not self.peek("punct", ","):
                break
            self.take("punct", ",")
        if count is not None and fields:
            raise RoqlError("COUNT() with other columns needs GROUP BY, which the sandbox lacks")
        self.take("kw", "from")
        table = self.take("word")
        where = None
        if self.peek("kw", "where"):
            self.take("kw", "where")
            where = self.disjunction()
        order = None
        if self.peek("kw", "order"):
            self.take("kw", "order")
            self.take("kw", "by")
            field = self.take("word")
            desc = False
            if self.peek("kw", "asc") or self.peek("kw", "desc"):
                desc = self.take("kw") == "desc"
            order = (field, desc)
        limit, offset = None, 0
        if self.peek("kw", "limit"):
            self.take("kw", "limit")
            limit = int(self.take("num"))
        if self.peek("kw", "offset"):
            self.take("kw", "offset")
            offset = int(self.take("num"))
        if self.i != len(self.toks):
            raise RoqlError(f"unexpected {self.toks[self.i][1]!r}")
        return Query(tuple(fields), count, table, where, order, limit, offset)

    def disjunction(self) -> Any:
        parts = [self.conjunction()]
        while self.peek("kw", "or"):
            self.take("kw", "or")
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else ("or", parts)

    def conjunction(self) -> Any:
        parts = [self.negation()]
        while self.peek("kw", "and"):
            self.take("kw", "and")
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else ("and", parts)

    def negation(self) -> Any:
        if self.peek("kw", "not"):
            self.take("kw", "not")
            return ("not", self.negation())
        if self.peek("punct", "("):
            self.take("punct", "(")
            node = self.disjunction()
            self.take("punct", ")")
            return node
        field = self.take("word")
        if self.peek("kw", "is"):
            self.take("kw", "is")
            negated = self.peek("kw", "not") and bool(self.take("kw"))
            self.take("kw", "null")
            return ("null", field, not negated)
        negated = self.peek("kw", "not") and bool(self.take("kw"))
        if self.peek("kw", "like"):
            self.take("kw", "like")
            return ("like", field, self.literal(), negated)
        if self.peek("kw", "in"):
            self.take("kw", "in")
            self.take("punct", "(")
            values = [self.literal()]
            while self.peek("punct", ","):
                self.take("punct", ",")
                values.append(self.literal())
            self.take("punct", ")")
            return ("in", field, values, negated)
        if negated:
            raise RoqlError("NOT before an operator other than LIKE or IN")
        return ("cmp", field, self.take("op"), self.literal())

    def literal(self) -> Lit:
        if self.peek("str"):
            raw = self.take("str")[1:-1]
            return Lit(raw.replace("''", "'").replace("\\'", "'"))
        if self.peek("num"):
            return Lit(float(self.take("num")))
        self.take("kw", "null")
        return Lit(None)


def parse_query(text: str) -> Query:
    return _Parser(text).query()


# ---------------------------------------------------------------------------------------------------
# The sandbox
# ---------------------------------------------------------------------------------------------------

Getter = Callable[[Any], Any]


def _problem(status: int, title: str, detail: str, code: str = "OSC-CREST-00001") -> Response:
    # [I] Oracle's REST errors as problem details (RFC 7807 shape with an o:errorCode).
    body = {
        "type": f"https://www.rfc-editor.org/rfc/rfc9110.html#status.{status}",
        "title": title,
        "status": status,
        "detail": detail,
        "o:errorCode": code,
    }
    return Response(status, body)


class OracleSandbox(Sandbox):
    """Oracle B2C Service Connect REST (queryResults, a custom object, an OAuth token) on
    127.0.0.1.

    :param users: how many staff accounts to generate.
    :param auth: ``basic``, ``session``, ``bearer`` or ``oauth``: which credentials
        :meth:`settings` hands out (the sandbox accepts all four at any time).
    :param retry_after: the seconds an injected ``rate_limit`` asks to wait, in
        ``osvc-crest-next-request-after``.

    Knobs: :attr:`page_size` (rows per query at most), :attr:`repeat_page_token` (``ID >``
    conditions are ignored, so a keyset pull is answered its first page again),
    :attr:`next_request_after_ms` (the wait every answer asks for), :attr:`deny_writes` (custom
    object writes answer 403), :attr:`count_supported` (False: ``COUNT()`` answers 400),
    :attr:`site_utc_offset_hours`; the faults of :data:`~seatgate.core.plugins.sandbox.FAULTS` and
    ``truncated``. Counters: :attr:`requests`, :attr:`auth_requests`, :attr:`queries` (the ROQL
    received, latest last), :attr:`unechoed` (calls that did not echo the QoS token they were
    given), :attr:`last_headers` (of the latest API call; of ``Authorization`` only its scheme).
    """

    name = "oracle"
    unreadable = MappingProxyType({"UpdatedTime": "yesterday"})

    def __init__(
        self, users: int = 100, *, auth: str = "basic", retry_after: int = 3, **kwargs: Any
    ) -> None:
        super().__init__(users, **kwargs)
        if auth not in AUTH_MODES:
            raise ValueError(f"unknown auth {auth!r}: expected one of {', '.join(AUTH_MODES)}")
        self.auth = auth
        self.retry_after = retry_after
        self.page_size = MAX_ROWS
        self.repeat_page_token = False
        self.next_request_after_ms = 0
        self.deny_writes = False
        self.count_supported = True
        # Account number -> its addresses besides the primary one (AddressType 1, 2, ...). Emails
        # is a list field: a query reads one row per address its conditions keep, and COUNT(ID)
        # counts the accounts.
        self.more_addresses: dict[int, list[str]] = {}
        self.site_utc_offset_hours = -7
        self.username = "seatgate.integration"
        self.password = secrets.token_urlsafe(12)
        self.sessions = {secrets.token_hex(16)}
        self.session_id = next(iter(self.sessions))
        self.access_token = secrets.token_urlsafe(24)
        self.bearer_tokens = {self.access_token}
        self.client_id = "seatgate-" + secrets.token_hex(4)
        self.client_secret = secrets.token_urlsafe(16)
        self.tokens_issued = 0
        self.queries: deque[str] = deque(maxlen=1000)
        self.unechoed = 0
        self.last_headers: dict[str, str] = {}  # of the latest API call, credentials left out
        self.records: dict[int, dict[str, str]] = {}
        self._record_ids = itertools.count(1)
        self._qos_tokens: deque[str] = deque(maxlen=10_000)
        self._render_lock = threading.Lock()
        self._rows: dict[int, tuple[object, bytes]] = {}
        self._ordered_version: tuple[dt.datetime, int] | None = None
        self._ordered: list[SandboxUser] = []
        self._numbers: list[int] = []

    def start(self) -> OracleSandbox:
        super().start()
        assert self._server is not None
        # The base server writes the headers and the body apart; with Nagle on, each answer on a
        # kept-alive connection waits for the client's delayed ACK (40 ms). Accepted sockets
        # inherit the option from the listening one (Linux).
        self._server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self

    def make_store(self, users: int) -> UserStore:
        store = UserStore(users, id_format="{n}", roles=PROFILES)
        for user in store.users:  # a staff group for the generated accounts
            user.roles.append(STAFF_GROUPS[user.number % len(STAFF_GROUPS)])
        return store

    # -- what a client needs ----------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        base: dict[str, Any] = {"base_url": self.url, "timeout": 5}
        if self.auth == "session":
            return {**base, "session_id": self.session_id}
        if self.auth == "bearer":
            return {**base, "access_token": self.access_token}
        if self.auth == "oauth":
            return {
                **base,
                "token_url": self.url + TOKEN_PATH,
                "client_id": self.client_id,
                "client_secret": self.client_secret,
            }
        return {**base, "username": self.username, "password": self.password}

    def bad_settings(self) -> dict[str, Any]:
        good = self.settings()
        key = {
            "basic": "password",
            "session": "session_id",
            "bearer": "access_token",
            "oauth": "client_secret",
        }[self.auth]
        return {**good, key: "wrong-" + secrets.token_hex(8)}

    def is_auth(self, request: Request) -> bool:
        return request.path == TOKEN_PATH

    def drop_caches(self) -> None:
        with self._render_lock:
            self._rows.clear()

    def inject(self, fault: str, times: int = 1) -> None:
        """:meth:`FaultKnobs.inject`, plus ``truncated``: a 200 whose JSON stops mid-row."""
        if fault in EXTRA_FAULTS:
            with self._lock:
                self._faults.extend([fault] * times)
            return
        super().inject(fault, times)

    # -- staff accounts as ROQL sees them -------------------------------------------------------
    def _account_fields(self) -> dict[str, Getter]:
        def role(i: int) -> Getter:
            return lambda u: u.roles[i] if len(u.roles) > i else None

        return {
            "id": lambda u: u.number,
            "lookupname": lambda u: u.name,
            "displayname": lambda u: u.name,
            "login": lambda u: f"user{u.number:06d}",
            "name.first": lambda u: u.first_name,
            "name.last": lambda u: u.last_name,
            "emails.address": lambda u: u.email,
            "emails.addresstype.id": lambda u: u.extra.get("address_type", 0),
            "profile.name": role(0),
            "staffgroup.name": role(1),
            "attributes.permanentlydisabled": lambda u: not u.active,
            "attributes.accountlocked": lambda u: bool(u.extra.get("locked")),
            "attributes.passwordexpired": lambda u: False,
            "updatedtime": lambda u: u.modified_at,
            "createdtime": lambda u: u.created_at,
        }

    def _record_fields(self) -> dict[str, Getter]:
        fields: dict[str, Getter] = {"id": lambda r: int(r["ID"])}
        for name in INSTALL_FIELDS:
            fields[name.lower()] = lambda r, n=name: r.get(n)  # type: ignore[misc]
        return fields

    def _accounts_in_id_order(self) -> tuple[list[int], list[SandboxUser]]:
        # Rebuilt only when the store changed (its clock ticked, or users were added).
        with self._render_lock:
            version = (self.store.now, len(self.store.by_number))
            if self._ordered_version != version:
                self._ordered = sorted(self.store.by_number.values(), key=lambda u: u.number)
                self._numbers = [u.number for u in self._ordered]
                self._ordered_version = version
            return self._numbers, self._ordered

    # -- answering a query --------------------------------------------------------------------------
    def _text(self, value: Any, utc: bool) -> str | None:
        """A value as queryResults sends it: a string (or null)."""
        if value is None:
            return None
        if isinstance(value, bool):
            return "1" if value else "0"
        if isinstance(value, dt.datetime):
            if utc:
                moment = value.astimezone(dt.UTC).replace(tzinfo=None)
                return moment.isoformat(timespec="milliseconds") + "Z"
            local = value.astimezone(dt.timezone(dt.timedelta(hours=self.site_utc_offset_hours)))
            return local.replace(tzinfo=None).isoformat(timespec="seconds")
        return str(value)

    def _literal(self, lit: Lit, sample: Any, utc: bool) -> Any:
        """``lit`` as the type of the field it is compared with."""
        if lit.value is None:
            return None
        if isinstance(sample, bool):
            return str(lit.value).strip().lower() in ("1", "1.0", "true")
        if isinstance(sample, int):
            return int(float(lit.value))
        if isinstance(sample, dt.datetime):
            try:
                stamp = dt.datetime.fromisoformat(str(lit.value))
            except ValueError:
                raise RoqlError(f"not a date and time: {lit.value!r}") from None
            if stamp.tzinfo is None:
                zone = (
                    dt.UTC if utc else dt.timezone(dt.timedelta(hours=self.site_utc_offset_hours))
                )
                stamp = stamp.replace(tzinfo=zone)
            return stamp
        return lit.value if isinstance(lit.value, str) else str(lit.value)

    def _compile(
        self, node: Any, fields: dict[str, Getter], sample: Any, utc: bool
    ) -> Callable[[Any], bool]:
        kind = node[0]
        if kind in ("and", "or"):
            parts = [self._compile(n, fields, sample, utc) for n in node[1]]
            if kind == "and":
                return lambda row: all(p(row) for p in parts)
            return lambda row: any(p(row) for p in parts)
        if kind == "not":
            inner = self._compile(node[1], fields, sample, utc)
            return lambda row: not inner(row)
        get = self._getter(fields, node[1])
        probe = get(sample) if sample is not None else ""
        if kind == "null":
            want_null = node[2]
            return lambda row: (get(row) is None) == want_null
        if kind == "like":
            pattern = re.escape(str(node[2].value)).replace("%", ".*").replace("_", ".")
            rx = re.compile(pattern, re.IGNORECASE | re.DOTALL)
            negated = node[3]
            return lambda row: (
                (get(row) is not None and bool(rx.fullmatch(str(get(row))))) != negated
            )
        if kind == "in":
            values = {self._literal(v, probe, utc) for v in node[2]}
            negated = node[3]
            return lambda row: (get(row) in values) != negated
        op, value = node[2], self._literal(node[3], probe, utc)
        compare: Callable[[Any], bool] = {
            "=": lambda a: a == value,
            "!=": lambda a: a != value,
            "<>": lambda a: a != value,
            "<": lambda a: a < value,
            "<=": lambda a: a <= value,
            ">": lambda a: a > value,
            ">=": lambda a: a >= value,
        }[op]
        if value is None:
            return lambda row: False  # SQL: a comparison with NULL is never true
        return lambda row: (v := get(row)) is not None and compare(v)

    @staticmethod
    def _getter(fields: dict[str, Getter], name: str) -> Getter:
        get = fields.get(name.lower())
        if get is None:
            raise RoqlError(f"unknown field {name!r}")
        return get

    def _keyset(self, node: Any) -> tuple[Any, int | None, dt.datetime | None]:
        """``node`` without its top-level ``ID >`` conditions when :attr:`repeat_page_token` is
        set, with the lowest ID and UpdatedTime its top-level conjuncts allow (to start the scan
        there: Oracle's own indexes do as much)."""
        conjuncts = node[1] if node and node[0] == "and" else [node] if node else []
        kept, id_after, stamp_from = [], None, None
        for c in conjuncts:
            if c[0] == "cmp" and c[1].lower() == "id" and c[2] in (">", ">="):
                if self.repeat_page_token:
                    continue
                bound = int(float(c[3].value)) - (1 if c[2] == ">=" else 0)
                id_after = bound if id_after is None else max(id_after, bound)
            if c[0] == "cmp" and c[1].lower() == "updatedtime" and c[2] in (">", ">="):
                with contextlib.suppress(ValueError):
                    stamp_from = dt.datetime.fromisoformat(str(c[3].value))
            kept.append(c)
        where = None if not kept else kept[0] if len(kept) == 1 else ("and", kept)
        if stamp_from is not None and stamp_from.tzinfo is None:
            stamp_from = None  # a local time: no shortcut, the full scan still answers right
        return where, id_after, stamp_from

    def _run(self, q: Query, utc: bool) -> bytes:
        table = q.table.lower()
        if table == "account":
            fields, name = self._account_fields(), "Account"
            where, id_after, stamp_from = self._keyset(q.where)
            numbers, ordered = self._accounts_in_id_order()
            if stamp_from is not None:
                candidates: Iterable[Any] = sorted(
                    (
                        u
                        for u in self.store.since(stamp_from)
                        if id_after is None or u.number > id_after
                    ),
                    key=lambda u: u.number,
                )
            else:
                start = 0 if id_after is None else bisect.bisect_right(numbers, id_after)
                candidates = itertools.islice(ordered, start, None)
            if self.more_addresses:
                candidates = list(self._joined(candidates))
            sample: Any = ordered[0] if ordered else None
        elif table == INSTALL_OBJECT.lower():
            fields, name = self._record_fields(), INSTALL_OBJECT
            where = q.where
            candidates = [self.records[i] for i in sorted(self.records)]
            sample = {"ID": "0", **dict.fromkeys(INSTALL_FIELDS, "")}
        else:
            raise RoqlError(f"unknown object {q.table!r}")
        match = self._compile(where, fields, sample, utc) if where is not None else None
        if q.count is not None:
            if not self.count_supported:
                raise RoqlError("aggregate functions are not enabled on this site")
            self._getter(fields, q.count)
            total = len({row.number for row in candidates if match is None or match(row)})
            return (
                b'{"tableName":"'
                + name.encode()
                + b'","count":1,"columnNames":["count('
                + q.count.encode()
                + b')"],"rows":[["'
                + str(total).encode()
                + b'"]]}'
            )
        getters = [self._getter(fields, f) for f in q.fields]
        matched: Iterable[Any] = (row for row in candidates if match is None or match(row))
        if q.order is not None:
            key = self._getter(fields, q.order[0])
            if q.order[0].lower() != "id" or q.order[1]:
                matched = sorted(
                    matched, key=lambda r: (key(r) is None, key(r)), reverse=q.order[1]
                )
        cap = self.page_size if q.limit is None else min(q.limit, self.page_size)
        chosen = list(itertools.islice(matched, q.offset, q.offset + cap))
        columns = b",".join(_encode(f.rsplit(".", 1)[-1]).encode() for f in q.fields)
        rows = b",".join(
            self._row(row, q.fields, getters, utc, table == "account") for row in chosen
        )
        return (
            b'{"tableName":"' + name.encode() + b'","count":' + str(len(chosen)).encode()
            + b',"columnNames":[' + columns + b'],"rows":[' + rows + b"]}"
        )  # fmt: skip

    def _joined(self, accounts: Iterable[SandboxUser]) -> Iterator[SandboxUser]:
        """Each account, then one row per further address (:attr:`more_addresses`)."""
        for account in accounts:
            yield account
            for kind, address in enumerate(self.more_addresses.get(account.number, ()), 1):
                yield attrs.evolve(
                    account, email=address, extra={**account.extra, "address_type": kind}
                )

    def _row(
        self, row: Any, names: tuple[str, ...], getters: list[Getter], utc: bool, cache: bool
    ) -> bytes:
        # Rendering is the hot part of a 100k-account pull: each account's row is rendered once
        # per change (and per column list); a further address's row is rendered each time.
        # (``cache``: an account's row; the installation object's rows are plain dicts)
        raw = {k.lower(): v for k, v in row.extra.get("fields", {}).items()} if cache else {}
        cache = cache and "address_type" not in row.extra and not raw
        key = (row.modified_at, names, utc) if cache else None
        if cache:
            hit = self._rows.get(row.number)
            if hit is not None and hit[0] == key:
                return hit[1]
        values: Iterable[Any] = (self._text(g(row), utc) for g in getters)
        if raw:  # set_raw's values, as they are
            values = [raw.get(n.lower(), v) for n, v in zip(names, values, strict=True)]
        rendered = (
            "["
            + ",".join(
                "null" if v is None else _encode(v) if type(v) is str else json.dumps(v)
                for v in values
            )
            + "]"
        ).encode()
        if cache:
            self._rows[row.number] = (key, rendered)
        return rendered

    # -- routing ------------------------------------------------------------------------------------
    def _refusal(self, request: Request) -> Response | None:
        context = request.headers.get("osvc-crest-application-context")
        if not context:
            return _problem(400, "Bad Request", "OSvC-CREST-Application-Context header is required")
        if len(context) > 40:
            return _problem(
                400, "Bad Request", "OSvC-CREST-Application-Context must be 40 characters or less"
            )
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        ok = False
        if scheme == "Basic":
            try:
                user, _, password = base64.b64decode(value).decode().partition(":")
            except ValueError:
                user, password = "", ""
            ok = secrets.compare_digest(user, self.username) and secrets.compare_digest(
                password, self.password
            )
        elif scheme == "Session":
            ok = value in self.sessions
        elif scheme == "Bearer":
            ok = value in self.bearer_tokens
        if not ok:
            return _problem(401, "Unauthorized", "Access Denied", "OSC-CREST-00002")
        token = request.headers.get("osvc-crest-api-access-token")
        if token is None:
            if self._qos_tokens:
                self.unechoed += 1
        elif token not in self._qos_tokens:
            return _problem(400, "Bad Request", "Invalid osvc-crest-api-access-token")
        return None

    def _answer(self, response: Response) -> Response:
        token = secrets.token_hex(12)
        with self._lock:
            self._qos_tokens.append(token)
        headers = {
            **response.headers,
            "osvc-crest-next-request-after": str(self.next_request_after_ms),
            "osvc-crest-api-access-token": token,
        }
        return Response(response.status, response.body, headers)

    def route(self, request: Request) -> Response:
        if request.path == TOKEN_PATH:
            return self._token(request)
        match = API.fullmatch(request.path)
        if match is None:
            return _problem(404, "Not Found", f"no resource at {request.path}")
        self.last_headers = {k: v for k, v in request.headers.items() if k != "authorization"}
        self.last_headers["authorization"] = request.headers.get("authorization", "").split(" ")[0]
        refused = self._refusal(request)
        if refused is not None:
            return self._answer(refused)
        rest = match.group("rest").rstrip("/")
        if rest == "queryResults" and request.method == "GET":
            return self._answer(self._query_results(request))
        if rest.split("/")[0].lower() == INSTALL_OBJECT.lower():
            return self._answer(self._installation(request, rest.partition("/")[2]))
        return self._answer(_problem(404, "Not Found", f"no resource {rest!r}"))

    def _query_results(self, request: Request) -> Response:
        text = request.arg("query") or ""
        queries = split_queries(text)
        if not queries:
            return _problem(400, "Bad Request", "the query parameter is required")
        utc = request.headers.get("osvc-crest-time-utc", "").lower() == "yes"
        items = []
        for roql in queries:
            self.queries.append(roql)
            try:
                items.append(self._run(parse_query(roql), utc))
            except (RoqlError, ValueError) as exc:
                return _problem(400, "Bad Request", f"Invalid query: {exc}", "OSC-CREST-00003")
        self_link = f'{{"rel":"self","href":"{self.url}{request.path}"}}'.encode()
        return Response(200, b'{"items":[' + b",".join(items) + b'],"links":[' + self_link + b"]}")

    def _installation(self, request: Request, rest: str) -> Response:
        if request.method in ("POST", "DELETE", "PATCH") and self.deny_writes:
            return _problem(
                403, "Forbidden", f"Access denied to {INSTALL_OBJECT}", "OSC-CREST-00004"
            )
        if request.method == "POST" and not rest:
            try:
                data = request.json()
            except ValueError:
                return _problem(400, "Bad Request", "the body is not JSON")
            if not isinstance(data, dict) or set(data) - set(INSTALL_FIELDS):
                return _problem(400, "Bad Request", f"{INSTALL_OBJECT} has fields {INSTALL_FIELDS}")
            record_id = next(self._record_ids)
            with self._lock:
                self.records[record_id] = {
                    "ID": str(record_id),
                    **{k: str(v) for k, v in data.items()},
                }
                self._sync_installations()
            href = f"{self.url}/services/rest/connect/v1.4/{INSTALL_OBJECT}/{record_id}"
            body = {
                "id": record_id,
                "lookupName": str(record_id),
                "links": [{"rel": "self", "href": href}],
            }
            return Response(201, body, {"Location": href})
        try:
            record_id = int(rest)
        except ValueError:
            return _problem(404, "Not Found", f"no {INSTALL_OBJECT} {rest!r}")
        record = self.records.get(record_id)
        if record is None:
            return _problem(404, "Not Found", f"no {INSTALL_OBJECT} with ID {record_id}")
        if request.method == "GET":
            return Response(
                200, {"id": record_id, **{k: v for k, v in record.items() if k != "ID"}}
            )
        if request.method == "DELETE":
            with self._lock:
                del self.records[record_id]
                self._sync_installations()
            return Response(200, b"")
        return _problem(405, "Method Not Allowed", f"{request.method} is not allowed here")

    def _sync_installations(self) -> None:
        self.installations = {r.get("AccountName", "") for r in self.records.values()}

    def _token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        try:
            client, _, secret = base64.b64decode(value).decode().partition(":")
        except ValueError:
            client, secret = "", ""
        if scheme != "Basic" or client != self.client_id or secret != self.client_secret:
            return Response(
                401,
                {"error": "invalid_client", "error_description": "Client authentication failed."},
            )
        if form.get("grant_type") != "client_credentials":
            return Response(400, {"error": "unsupported_grant_type"})
        token = secrets.token_urlsafe(24)
        with self._lock:
            self.bearer_tokens.add(token)
            self.tokens_issued += 1
        return Response(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600})

    # -- faults ---------------------------------------------------------------------------------
    def fault_response(self, fault: str, request: Request) -> Response | None:
        if request.path == TOKEN_PATH and fault not in ("server_error",):
            # The identity domain is not the site: its faults wait for the next API call.
            with self._lock:
                self._faults.appendleft(fault)
            return None
        if fault == "rate_limit":
            response = _problem(429, "Too Many Requests", "The request rate limit was exceeded")
            return Response(
                429, response.body, {"osvc-crest-next-request-after": str(self.retry_after * 1000)}
            )
        if fault == "quota":
            # [I] a spent allowance: an hour's wait, longer than any retry policy accepts.
            response = _problem(429, "Too Many Requests", "The API usage allowance is spent")
            return Response(429, response.body, {"osvc-crest-next-request-after": "3600000"})
        if fault == "server_error":
            return _problem(503, "Service Unavailable", "The service is temporarily unavailable")
        if fault == "malformed":
            # A proxy's maintenance page where JSON was due.
            return Response(200, b"<html><body>Site maintenance in progress</body></html>")
        if fault == "truncated":
            whole = self.route(request)
            body = whole.encode()
            return Response(200, body[: max(1, len(body) // 2)], whole.headers)
        if fault == "expired_token":
            with self._lock:
                self.sessions.clear()
                self.bearer_tokens.clear()
            return _problem(401, "Unauthorized", "Session expired", "OSC-CREST-00002")
        raise ValueError(f"OracleSandbox has no response for fault {fault!r}")


SANDBOX = OracleSandbox
