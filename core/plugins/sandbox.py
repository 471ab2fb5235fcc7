"""The common half of every CRM sandbox: a local HTTP server, a store of generated users, fault knobs.

Each adapter ships ``adapters/<crm>/sandbox.py`` with a subclass of :class:`Sandbox` that speaks its
CRM's user API (auth, paging, change-stamp filters, error bodies) by implementing :meth:`route` and
:meth:`fault_response`. The parts every sandbox shares are here, so the conformance kit, the tests and
the benchmarks drive all of them the same way:

* :class:`UserStore` — N generated users with monotonically increasing change stamps, and knobs to
  change, add or deactivate users between runs;
* :meth:`Sandbox.inject` — the next requests fail with a fault: ``rate_limit`` (429 + Retry-After),
  ``server_error`` (5xx), ``timeout`` (no answer in time), ``malformed`` (a broken page),
  ``expired_token`` (the session is rejected once), ``quota`` (the daily limit is spent);
* counters of requests served (all, and the login / token ones), for the "requests = the minimum"
  benchmark;
* :meth:`Sandbox.drop_caches` — forget what the sandbox rendered ahead, so that every timed pull of
  a benchmark pays the same server work.

The server binds 127.0.0.1 on a free port and runs in a daemon thread: ``with Sandbox(...) as sb``.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs

FAULTS: tuple[str, ...] = (
    "rate_limit",
    "server_error",
    "timeout",
    "malformed",
    "expired_token",
    "quota",
)

FIRST_NAMES = (
    "Ada",
    "Alan",
    "Grace",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "Ken",
    "Radia",
    "Tim",
)
LAST_NAMES = ("Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson")


@attrs.define(slots=True)
class SandboxUser:
    """A user in a sandbox CRM. ``number`` is stable; ``id`` is the CRM-shaped id built from it."""

    number: int
    id: str
    email: str
    first_name: str
    last_name: str
    active: bool
    roles: list[str]
    created_at: dt.datetime
    modified_at: dt.datetime
    extra: dict[str, Any] = attrs.field(factory=dict)

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


class UserStore:
    """Generated users kept in change-stamp order, so incremental filters are a bisect."""

    def __init__(
        self,
        count: int,
        *,
        id_format: str = "{n:018d}",
        roles: tuple[str, ...] = ("Agent",),
        start: dt.datetime = dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        seed: int = 7,
    ) -> None:
        self.id_format = id_format
        self.roles = roles
        self._rng = random.Random(seed)
        self._clock = start
        self._lock = threading.Lock()
        self.users: list[SandboxUser] = []
        self.by_number: dict[int, SandboxUser] = {}
        self.add(count)

    def _tick(self) -> dt.datetime:
        # Every change gets its own stamp, one second apart, like a CRM's SystemModstamp would.
        self._clock += dt.timedelta(seconds=1)
        return self._clock

    @property
    def now(self) -> dt.datetime:
        """The instant of the latest change in the store."""
        return self._clock

    def advance(self, seconds: float) -> None:
        """Let time pass in the CRM with no change: the next change is stamped ``seconds`` later
        (past an incremental pull's lookback window, say)."""
        with self._lock:
            self._clock += dt.timedelta(seconds=seconds)

    def commit_late(self, number: int, stamp: dt.datetime, **fields: Any) -> None:
        """Change a user with an *older* stamp than changes already visible, as a CRM transaction
        that stamped its change when it began and committed it later does (issue 12 item 4)."""
        with self._lock:
            user = self.by_number[number]
            for key, value in fields.items():
                setattr(user, key, value)
            self.users.remove(user)
            user.modified_at = stamp
            at = len(self.users)
            while at and self.users[at - 1].modified_at > stamp:
                at -= 1
            self.users.insert(at, user)

    def add(self, count: int, *, roles: Iterable[str] | None = None) -> list[SandboxUser]:
        with self._lock:
            made = []
            for _ in range(count):
                n = len(self.by_number) + 1
                stamp = self._tick()
                user = SandboxUser(
                    number=n,
                    id=self.id_format.format(n=n),
                    email=f"user{n:06d}@example.com",
                    first_name=FIRST_NAMES[n % len(FIRST_NAMES)],
                    last_name=LAST_NAMES[n % len(LAST_NAMES)],
                    active=True,
                    roles=list(roles) if roles is not None else [self.roles[n % len(self.roles)]],
                    created_at=stamp,
                    modified_at=stamp,
                )
                self.users.append(user)
                self.by_number[n] = user
                made.append(user)
            return made

    def _touch(self, user: SandboxUser) -> None:
        # Move the user to the end: the list stays ordered by change stamp.
        self.users.remove(user)
        user.modified_at = self._tick()
        self.users.append(user)

    def change(self, numbers: Iterable[int], **fields: Any) -> None:
        """Update users (default: a new last name) and give them a new change stamp."""
        with self._lock:
            for n in numbers:
                user = self.by_number[n]
                if fields:
                    for key, value in fields.items():
                        setattr(user, key, value)
                else:
                    user.last_name = user.last_name + "-" + str(self._rng.randint(1, 99))
                self._touch(user)

    def grant(self, numbers: Iterable[int], roles: Iterable[str]) -> None:
        """Give users these roles without a new change stamp on the users themselves, as a CRM
        that keeps role grants in a table of their own does (ServiceNow's sys_user_has_role): the
        grants carry the stamp, in ``extra["roles_at"]``."""
        with self._lock:
            for n in numbers:
                user = self.by_number[n]
                user.roles = list(roles)
                user.extra["roles_at"] = self._tick()

    def deactivate(self, numbers: Iterable[int]) -> None:
        self.change(numbers, active=False)

    def set_raw(self, number: int, fields: Mapping[str, Any]) -> None:
        """Serve user ``number``'s record with these raw field values (by the CRM's field names,
        as they are, whatever their type: a stamp that does not parse, a flag that is no
        boolean), kept in ``extra["fields"]``, from a new change stamp on."""
        user = self.by_number[number]
        raw = {**user.extra.get("fields", {}), **fields}
        self.change([number], extra={**user.extra, "fields": raw})

    def since(self, stamp: dt.datetime | None) -> list[SandboxUser]:
        """Users changed at or after ``stamp`` (all users when None), oldest change first."""
        if stamp is None:
            return list(self.users)
        lo, hi = 0, len(self.users)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.users[mid].modified_at < stamp:
                lo = mid + 1
            else:
                hi = mid
        return self.users[lo:]


@attrs.frozen
class Request:
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@attrs.frozen
class Response:
    status: int = 200
    body: Any = None  # JSON-serialisable, or bytes sent as they are
    headers: Mapping[str, str] = attrs.field(factory=dict)

    def encode(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body, separators=(",", ":")).encode()


class FaultKnobs:
    """The fault knobs every sandbox has, the HTTP ones and the in-memory one alike: a queue of
    faults the next requests meet, and a count of the requests served."""

    def __init__(self) -> None:
        self.requests = 0
        self._faults: deque[str] = deque()
        self._lock = threading.Lock()

    def inject(self, fault: str, times: int = 1) -> None:
        """Make the next ``times`` requests fail with ``fault``."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}: expected one of {', '.join(FAULTS)}")
        with self._lock:
            self._faults.extend([fault] * times)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _pop_fault(self) -> str | None:
        """The fault the request being served meets, if any; call with ``_lock`` held."""
        return self._faults.popleft() if self._faults else None


def with_raw(fragment: bytes, user: SandboxUser) -> bytes:
    """A user's rendered JSON object with the raw values :meth:`Sandbox.set_raw` gave it (only
    for the fields the object holds: what was selected)."""
    raw = user.extra.get("fields")
    if not raw:
        return fragment
    record = json.loads(fragment)
    record.update({k: v for k, v in raw.items() if k in record})
    return json.dumps(record, separators=(",", ":")).encode()


class Sandbox(FaultKnobs):
    """Base class: subclasses implement :meth:`route` and :meth:`fault_response`."""

    name = "sandbox"
    #: Raw field values (by the CRM's field names) its adapter cannot read, for one record: what
    #: the conformance kit gives a user through :meth:`set_raw` (a record that must be
    #: quarantined as ``malformed_record`` while the rest of the pull goes on). None: the
    #: sandbox cannot serve one.
    unreadable: Mapping[str, Any] | None = None

    def set_raw(self, number: int, fields: Mapping[str, Any]) -> None:
        """:meth:`UserStore.set_raw` on this sandbox's store."""
        self.store.set_raw(number, fields)

    def __init__(self, users: int = 100, *, store: UserStore | None = None, port: int = 0) -> None:
        super().__init__()
        self.store = store or self.make_store(users)
        self.auth_requests = 0  # of which logins and token requests (see is_auth)
        self.timeout_seconds = 2.0
        # What install/uninstall left on the CRM side (e.g. a marker record per platform account),
        # so the kit can check that install is idempotent and uninstall reverses it.
        self.installations: set[str] = set()
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- to implement -------------------------------------------------------------------------------
    def make_store(self, users: int) -> UserStore:
        return UserStore(users)

    def route(self, request: Request) -> Response:
        raise NotImplementedError

    def fault_response(self, fault: str, request: Request) -> Response | None:
        """The response the CRM gives for ``fault`` (one of :data:`FAULTS` but ``timeout``), or
        None when this request is not one the fault applies to (the fault waits for the next)."""
        raise NotImplementedError

    def is_auth(self, request: Request) -> bool:
        """Whether ``request`` is a login or token request (counted apart: it fetches no user)."""
        return False

    def drop_caches(self) -> None:
        """Forget anything rendered ahead of time (sandboxes that cache JSON fragments override
        this), so the next pull costs the server as much as the first did."""

    # -- counting ---------------------------------------------------------------------------------
    def _count(self, request: Request) -> None:
        """Count ``request`` as served; call with ``_lock`` held."""
        self.requests += 1
        if self.is_auth(request):
            self.auth_requests += 1

    def _next_fault(self, request: Request) -> str | None:
        with self._lock:
            self._count(request)
            return self._pop_fault()

    # -- server -------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "the sandbox is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def port(self) -> int:
        assert self._server is not None, "the sandbox is not started"
        return int(self._server.server_address[1])

    def start(self) -> Sandbox:
        sandbox = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: request lines would carry query strings into test output

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                fault = sandbox._next_fault(request)
                if fault == "timeout":
                    time.sleep(sandbox.timeout_seconds)
                    self.close_connection = True
                    return
                response = sandbox.fault_response(fault, request) if fault else None
                if response is None:
                    try:
                        response = sandbox.route(request)
                    except Exception as exc:  # a sandbox bug must show, not hang the client
                        response = Response(500, {"sandbox_error": repr(exc)})
                payload = response.encode()
                self.send_response(response.status)
                headers = {"Content-Type": "application/json", **response.headers}
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        try:
            self._server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        except OSError as exc:
            raise ValueError(
                f"cannot serve on 127.0.0.1:{self._port} ({exc.strerror}): expected a free port, "
                "or 0 for any"
            ) from None
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits up to one interval, and tests stop many sandboxes.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """For ``seatgate sandbox NAME``: run in the foreground until interrupted."""
        self.start()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    # -- what a client needs to connect ------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        """A config (as a user would write it) that points the adapter at this sandbox."""
        raise NotImplementedError

    def bad_settings(self) -> dict[str, Any]:
        """Well-formed settings whose credentials the sandbox refuses."""
        raise NotImplementedError


def paged(items: list[Any], offset: int, limit: int) -> Iterator[Any]:
    return iter(items[offset : offset + limit])
