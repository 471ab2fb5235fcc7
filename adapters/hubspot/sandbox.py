"""A local HubSpot that speaks what the adapter uses, shaped as hubspot-api-client 12 parses it.

Endpoints (reference/crm-apis.md, section 2):

* ``GET /crm/v3/owners/`` — ``limit`` (default 100, max 500, above that a 400 like HubSpot's),
  ``after`` (cursor from ``paging.next.after``), ``archived`` (``true``/``True``...: only archived
  owners; otherwise only live ones). No filter on ``updatedAt``: the real API has none.
* ``GET /settings/v3/users/`` — ``limit`` (max 100), ``after``; ``roleIds``/``roleId`` per user;
  ``GET /settings/v3/users/roles`` — the permission sets (roles) by id and name.
* ``POST /oauth/v1/token`` — ``grant_type=refresh_token`` with client id/secret: a new access token.
* ``GET|POST|DELETE /crm/v3/properties/contacts/groups[/{name}]`` — the property group that
  install leaves on the CRM side (one per platform account); :attr:`installations` follows it.
  Reading a group needs the scope ``crm.schemas.contacts.read``, writing one
  ``crm.schemas.contacts.write``: the :attr:`~HubSpotSandbox.scopes` knob holds the scopes the app
  was granted, and a call without its scope is 403 ``MISSING_SCOPES`` as HubSpot answers it
  (``refuse_writes = True`` takes the write scope away).

Every required field of the client's models is sent (the client validates them and raises
``ValueError`` on a null). Sandbox users map onto owners: ``SandboxUser.roles`` are team names,
``extra["role"]`` (or a name picked from :data:`ROLE_NAMES`) is the user's HubSpot role, and an
inactive user is an archived owner (``userId`` null, ``userIdIncludingInactive`` kept).
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import secrets
import threading
import uuid
from json.encoder import encode_basestring_ascii as _encode
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qs

from seatgate.core.plugins import (
    Request,
    Response,
    Sandbox,
    SandboxUser,
    UserStore,
    with_raw,
)

OWNERS_MAX_LIMIT = 500
USERS_MAX_LIMIT = 100
TEAM_NAMES = ("Sales Team", "Support Team", "Service Team")
ROLE_NAMES = ("Sales User", "Service Agent", "Super Admin")
INSTALL_GROUP_PREFIX = "seatgate_"
INSTALL_LABEL_PREFIX = "seatgate: "
READ_SCOPE = "crm.schemas.contacts.read"
WRITE_SCOPE = "crm.schemas.contacts.write"
SCOPES = ("crm.objects.owners.read", "settings.users.read", READ_SCOPE, WRITE_SCOPE)
_USER_ID_BASE = 9_000_000
_TRUE = ("true", "True", "1")


def _stamp(value: dt.datetime) -> str:
    # isoformat, not strftime: four times faster, and rendering is the sandbox's hot path.
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def _error(
    status: int, message: str, category: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    body = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        **extra,
    }
    return Response(status, body, headers or {})


class HubSpotSandbox(Sandbox):
    """HubSpot owners/users/roles/OAuth/property-groups on 127.0.0.1.

    :param users: how many owners to generate.
    :param access_token: the private app token the sandbox accepts (random when None).
    :param auth: ``"private_app"`` or ``"oauth"``: which kind of config :meth:`settings` returns.
    :param retry_after: the ``Retry-After`` seconds of an injected ``rate_limit``.

    Knobs: :attr:`page_size` caps every page below the ``limit`` asked (the API's own maximum stays
    the validation rule); :attr:`repeat_page_token` makes every page name itself as the next one.
    """

    name = "hubspot"
    unreadable = MappingProxyType({"updatedAt": "yesterday"})

    def __init__(
        self,
        users: int = 100,
        *,
        access_token: str | None = None,
        auth: str = "private_app",
        retry_after: int = 3,
        **kwargs: Any,
    ) -> None:
        super().__init__(users, **kwargs)
        if auth not in ("private_app", "oauth"):
            raise ValueError(f"unknown auth {auth!r}: expected private_app or oauth")
        self.auth = auth
        self.retry_after = retry_after
        # Knobs: the most a page holds whatever ``limit`` asks (small pages in tests without
        # thousands of users), and a broken cursor that names the current page as the next one.
        self.page_size = OWNERS_MAX_LIMIT
        self.repeat_page_token = False
        self.access_token = access_token or "pat-na1-" + secrets.token_hex(16)
        self.client_id = "sandbox-client-" + secrets.token_hex(4)
        self.client_secret = secrets.token_hex(16)
        self.refresh_token = "na1-" + secrets.token_hex(16)
        # OAuth access tokens issued and still good; an expired_token fault empties it.
        self.oauth_tokens: set[str] = set()
        self.tokens_issued = 0
        self.team_ids: dict[str, str] = {}
        self.role_ids = {name: str(100 + i) for i, name in enumerate(ROLE_NAMES)}
        self.groups: dict[str, dict[str, Any]] = {}
        # The scopes the app was granted (every one the adapter may use, by default).
        self.scopes: set[str] = set(SCOPES)
        self._render_lock = threading.Lock()
        self._fragments: dict[int, tuple[dt.datetime, bytes]] = {}
        self._listing_version: dt.datetime | None = None
        self._listings: dict[bool, tuple[list[int], list[SandboxUser]]] = {}

    def make_store(self, users: int) -> UserStore:
        # HubSpot owner ids are numeric strings.
        return UserStore(users, id_format="4{n:07d}", roles=TEAM_NAMES)

    # -- what a client needs ----------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        base = {"base_url": self.url, "timeout": 5}
        if self.auth == "oauth":
            return {
                **base,
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "refresh_token": self.refresh_token,
            }
        return {**base, "access_token": self.access_token}

    def bad_settings(self) -> dict[str, Any]:
        base = {"base_url": self.url, "timeout": 5}
        if self.auth == "oauth":
            return {
                **base,
                "client_id": self.client_id,
                "client_secret": "wrong-" + secrets.token_hex(8),
                "refresh_token": self.refresh_token,
            }
        return {**base, "access_token": "pat-na1-" + secrets.token_hex(16)}

    # -- users as HubSpot shows them ------------------------------------------------------------
    def role_of(self, user: SandboxUser) -> str:
        return str(user.extra.get("role") or ROLE_NAMES[user.number % len(ROLE_NAMES)])

    def role_id(self, name: str) -> str:
        with self._render_lock:
            return self.role_ids.setdefault(name, str(100 + len(self.role_ids)))

    def team_id(self, name: str) -> str:
        if name not in self.team_ids:
            self.team_ids[name] = str(368_000 + len(self.team_ids))
        return self.team_ids[name]

    def owner(self, user: SandboxUser) -> dict[str, Any]:
        user_id = _USER_ID_BASE + user.number
        return {
            "id": user.id,
            "email": user.email,
            "type": "PERSON",
            "firstName": user.first_name,
            "lastName": user.last_name,
            "userId": user_id if user.active else None,
            "userIdIncludingInactive": user_id,
            "createdAt": _stamp(user.created_at),
            "updatedAt": _stamp(user.modified_at),
            "archived": not user.active,
            "teams": [
                {"id": self.team_id(name), "name": name, "primary": i == 0}
                for i, name in enumerate(user.roles)
            ],
        }

    def _fragment(self, user: SandboxUser) -> bytes:
        # Rendering is the hot part of a 100k-user pull: each owner is rendered once per change.
        cached = self._fragments.get(user.number)
        if cached is not None and cached[0] == user.modified_at:
            return with_raw(cached[1], user)
        fragment = self._render(user)
        self._fragments[user.number] = (user.modified_at, fragment)
        return with_raw(fragment, user)

    def _render(self, user: SandboxUser) -> bytes:
        """:meth:`owner` as compact JSON, written out directly: ``json.dumps`` of the dict took
        most of the time of serving a page, and the sandbox must not be what a benchmark of the
        adapter measures. Strings go through the json module's own escaping."""
        user_id = _USER_ID_BASE + user.number
        teams = ",".join(
            f'{{"id":"{self.team_id(name)}","name":{_encode(name)},'
            f'"primary":{"true" if i == 0 else "false"}}}'
            for i, name in enumerate(user.roles)
        )
        return (
            f'{{"id":{_encode(user.id)},"email":{_encode(user.email)},"type":"PERSON",'
            f'"firstName":{_encode(user.first_name)},"lastName":{_encode(user.last_name)},'
            f'"userId":{user_id if user.active else "null"},'
            f'"userIdIncludingInactive":{user_id},'
            f'"createdAt":"{_stamp(user.created_at)}","updatedAt":"{_stamp(user.modified_at)}",'
            f'"archived":{"false" if user.active else "true"},"teams":[{teams}]}}'
        ).encode()

    def _listing(self, archived: bool) -> tuple[list[int], list[SandboxUser]]:
        # The store is ordered by change stamp; owners page in id order, so a change during a
        # pull does not shift the cursor. Rebuilt only when the store changed (its clock ticked).
        with self._render_lock:
            if self._listing_version != self.store.now:
                for flag in (False, True):
                    chosen = [u for u in self.store.by_number.values() if u.active is not flag]
                    self._listings[flag] = ([u.number for u in chosen], chosen)
                self._listing_version = self.store.now
            return self._listings[archived]

    # -- routing --------------------------------------------------------------------------------
    def _authorized(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        if token and (token == self.access_token or token in self.oauth_tokens):
            return None
        return _error(
            401,
            "Authentication credentials not found. This API supports OAuth 2.0 authentication "
            "and you can find more details at https://developers.hubspot.com/docs/methods/auth/"
            "oauth-overview",
            "INVALID_AUTHENTICATION",
        )

    def is_auth(self, request: Request) -> bool:
        return request.path == "/oauth/v1/token"

    def drop_caches(self) -> None:
        self._fragments.clear()

    def route(self, request: Request) -> Response:
        path = request.path
        if path == "/oauth/v1/token" and request.method == "POST":
            return self._token(request)
        refused = self._authorized(request)
        if refused is not None:
            return refused
        if path in ("/crm/v3/owners/", "/crm/v3/owners") and request.method == "GET":
            return self._owners(request)
        if path in ("/settings/v3/users/", "/settings/v3/users") and request.method == "GET":
            return self._users(request)
        if path == "/settings/v3/users/roles" and request.method == "GET":
            for user in self.store.users:  # a role given through extra["role"] exists too
                self.role_id(self.role_of(user))
            results = [
                {"id": rid, "name": name, "requiresBillingWrite": name == "Super Admin"}
                for name, rid in self.role_ids.items()
            ]
            return Response(200, {"results": results})
        if path.startswith("/crm/v3/properties/contacts/groups"):
            return self._groups(request, path.removeprefix("/crm/v3/properties/contacts/groups"))
        return _error(404, f"resource not found: {request.method} {path}", "OBJECT_NOT_FOUND")

    def _limit(self, request: Request, default: int, maximum: int) -> int | Response:
        raw = request.arg("limit")
        try:
            limit = int(raw) if raw else default
        except ValueError:
            return _error(400, f"Invalid limit {raw!r}", "VALIDATION_ERROR")
        if limit > maximum:
            return _error(
                400, f"limit: Must be less than or equal to {maximum}", "VALIDATION_ERROR"
            )
        return max(limit, 1)

    def _next(self, path: str, after: str, request: Request) -> dict[str, Any]:
        if self.repeat_page_token:
            after = request.arg("after") or after
        query = f"after={after}"
        if request.arg("archived") is not None:
            query += f"&archived={request.arg('archived')}"
        return {"next": {"after": after, "link": f"{self.url}{path}?{query}"}}

    def _owners(self, request: Request) -> Response:
        limit = self._limit(request, 100, OWNERS_MAX_LIMIT)
        if isinstance(limit, Response):
            return limit
        limit = min(limit, self.page_size)
        archived = request.arg("archived", "false") in _TRUE
        numbers, users = self._listing(archived)
        after = request.arg("after")
        start = bisect.bisect_left(numbers, int(after)) if after else 0
        chunk = users[start : start + limit]
        body = b'{"results":[' + b",".join(self._fragment(u) for u in chunk) + b"]"
        if start + limit < len(users):
            paging = self._next("/crm/v3/owners/", str(numbers[start + limit]), request)
            body += b',"paging":' + json.dumps(paging, separators=(",", ":")).encode()
        return Response(200, body + b"}")

    def _users(self, request: Request) -> Response:
        limit = self._limit(request, 100, USERS_MAX_LIMIT)
        if isinstance(limit, Response):
            return limit
        limit = min(limit, self.page_size)
        # Deactivated users are not HubSpot users any more, only archived owners.
        numbers, users = self._listing(False)
        after = request.arg("after")
        start = bisect.bisect_left(numbers, int(after)) if after else 0
        results = []
        for user in users[start : start + limit]:
            role_id = self.role_id(self.role_of(user))
            team_ids = [self.team_id(name) for name in user.roles]
            results.append(
                {
                    "id": str(_USER_ID_BASE + user.number),
                    "email": user.email,
                    "roleId": role_id,
                    "roleIds": [role_id],
                    "primaryTeamId": team_ids[0] if team_ids else None,
                    "secondaryTeamIds": team_ids[1:],
                    "superAdmin": self.role_of(user) == "Super Admin",
                }
            )
        body: dict[str, Any] = {"results": results}
        if start + limit < len(users):
            body["paging"] = self._next("/settings/v3/users/", str(numbers[start + limit]), request)
        return Response(200, body)

    def _token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if form.get("grant_type") != "refresh_token":
            return Response(
                400, {"status": "BAD_GRANT_TYPE", "message": "grant_type must be refresh_token"}
            )
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return Response(
                400,
                {
                    "status": "BAD_CLIENT_ID",
                    "message": "missing or unknown client id or secret",
                    "correlationId": str(uuid.uuid4()),
                },
            )
        if form.get("refresh_token") != self.refresh_token:
            return Response(
                400,
                {
                    "status": "BAD_REFRESH_TOKEN",
                    "message": "missing or invalid refresh token",
                    "correlationId": str(uuid.uuid4()),
                },
            )
        token = "oauth-" + secrets.token_hex(16)
        with self._lock:
            self.oauth_tokens.add(token)
            self.tokens_issued += 1
        body = {
            "token_type": "bearer",
            "refresh_token": self.refresh_token,
            "access_token": token,
            "expires_in": 1800,
        }
        return Response(200, body)

    @property
    def refuse_writes(self) -> bool:
        """True when the app lacks the write scope an install needs."""
        return WRITE_SCOPE not in self.scopes

    @refuse_writes.setter
    def refuse_writes(self, value: bool) -> None:
        if value:
            self.scopes.discard(WRITE_SCOPE)
        else:
            self.scopes.add(WRITE_SCOPE)

    def _groups(self, request: Request, rest: str) -> Response:
        needed = READ_SCOPE if request.method == "GET" else WRITE_SCOPE
        if needed not in self.scopes:
            return _error(
                403,
                "This app hasn't been granted all required scopes to make this call.",
                "MISSING_SCOPES",
                errors=[
                    {
                        "message": "One or more of the following scopes are required.",
                        "context": {"requiredGranularScopes": [needed]},
                    }
                ],
            )
        name = rest.strip("/")
        if request.method == "POST" and not name:
            data = request.json() or {}
            name = str(data.get("name") or "")
            if not name or "label" not in data:
                return _error(400, "name and label are required", "VALIDATION_ERROR")
            if name in self.groups:
                return _error(409, f"A property group named '{name}' already exists.", "CONFLICT")
            group = {
                "name": name,
                "label": data["label"],
                "displayOrder": int(data.get("displayOrder", -1)),
                "archived": False,
            }
            self.groups[name] = group
            self._sync_installations()
            return Response(201, group)
        found = self.groups.get(name)
        if found is None:
            return _error(404, f"property group {name} does not exist", "OBJECT_NOT_FOUND")
        if request.method == "GET":
            return Response(200, found)
        if request.method == "DELETE":
            del self.groups[name]
            self._sync_installations()
            return Response(204, b"")
        return _error(405, f"{request.method} is not allowed here", "VALIDATION_ERROR")

    def _sync_installations(self) -> None:
        self.installations = {
            str(g["label"]).removeprefix(INSTALL_LABEL_PREFIX)
            for name, g in self.groups.items()
            if name.startswith(INSTALL_GROUP_PREFIX)
        }

    # -- faults ---------------------------------------------------------------------------------
    def _limit_headers(self, daily_remaining: int, secondly_remaining: int) -> dict[str, str]:
        return {
            "X-HubSpot-RateLimit-Daily": "250000",
            "X-HubSpot-RateLimit-Daily-Remaining": str(daily_remaining),
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Max": "100",
            "X-HubSpot-RateLimit-Remaining": str(secondly_remaining),
            "X-HubSpot-RateLimit-Secondly": "10",
            "X-HubSpot-RateLimit-Secondly-Remaining": str(secondly_remaining),
        }

    def fault_response(self, fault: str, request: Request) -> Response | None:
        if fault == "expired_token" and request.path == "/oauth/v1/token":
            # The token endpoint takes no bearer token: the fault waits for the next API call.
            with self._lock:
                self._faults.appendleft(fault)
            return None
        if fault == "rate_limit":
            headers = {**self._limit_headers(200_000, 0), "Retry-After": str(self.retry_after)}
            return _rate_limited("You have reached your secondly limit.", "SECONDLY", headers)
        if fault == "quota":
            return _rate_limited(
                "You have reached your daily limit.", "DAILY", self._limit_headers(0, 9)
            )
        if fault == "server_error":
            return _error(502, "The server encountered a temporary error.", "INTERNAL_ERROR")
        if fault == "malformed":
            # A page cut short, as a proxy dropping the connection mid-body would leave it.
            return Response(200, b'{"results":[{"id":"4000001","email":"user000001@exa')
        if fault == "expired_token":
            with self._lock:
                self.oauth_tokens.clear()
            return _error(
                401,
                "The OAuth token used to make this call expired 0 second(s) ago.",
                "EXPIRED_AUTHENTICATION",
            )
        raise ValueError(f"HubSpotSandbox has no response for fault {fault!r}")


def _rate_limited(message: str, policy: str, headers: dict[str, str]) -> Response:
    body = {
        "status": "error",
        "message": message,
        "errorType": "RATE_LIMIT",
        "correlationId": str(uuid.uuid4()),
        "policyName": policy,
        "requestId": str(uuid.uuid4()),
    }
    return Response(429, body, headers)


SANDBOX = HubSpotSandbox
