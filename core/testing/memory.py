"""An in-memory adapter (product ``memory``) for the sync engine's tests and benchmarks.

:class:`MemorySandbox` plays the CRM: users from a :class:`~seatgate.core.sandbox.UserStore` (plus
any hand-made :class:`ExternalUser` in :attr:`MemorySandbox.extra`, e.g. records with a bad email),
token paging, an API key, and the same fault knobs as an HTTP sandbox (:meth:`MemorySandbox.inject`).
:class:`MemoryAdapter` talks to it in process, so a pull of 100,000 users costs only the mapping.
The adapter finds its sandbox through the ``instance`` setting, as a real adapter would find its CRM
through a base URL; sandboxes are held weakly, so a finished test leaves nothing behind.

    with MemorySandbox(users=50) as crm:
        plugins = build_plugin_manager(builtins=(), entry_points=False,
                                       plugins=[("memory", MemoryAdapter())])
        settings = plugins.registry.get("memory").info.config_schema.validate(crm.settings())
"""

from __future__ import annotations

import datetime as dt
import itertools
import weakref
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

from ..plugins import (
    AdapterInfo,
    AuthFailed,
    ConfigSchema,
    ExternalUser,
    FaultKnobs,
    Field,
    MalformedResponse,
    QuotaExhausted,
    RateLimited,
    RequestContext,
    SandboxUser,
    TokenExpired,
    TransientError,
    UserPage,
    UserStore,
    hookimpl,
    reveal,
    unreadable,
)

__all__ = ["MEMORY_SCHEMA", "MemoryAdapter", "MemorySandbox", "plugin"]

PRODUCT = "memory"
MAX_PAGE_SIZE = 1000

MEMORY_SCHEMA = ConfigSchema(
    fields=(
        Field("instance", required=True, description="the MemorySandbox to talk to"),
        Field("api_key", required=True, secret=True, description="the sandbox's API key"),
        Field("page_size", type="integer", default=MAX_PAGE_SIZE, description="users per page"),
    )
)

_INSTANCES: weakref.WeakValueDictionary[str, MemorySandbox] = weakref.WeakValueDictionary()
_counter = itertools.count(1)


class MemorySandbox(FaultKnobs):
    """An in-process CRM with the knobs of :class:`seatgate.core.sandbox.Sandbox`."""

    name = PRODUCT
    #: what the kit gives one user (:meth:`set_raw`): a change stamp that is no date-time
    unreadable: Mapping[str, Any] = MappingProxyType({"modified_at": "yesterday"})

    def __init__(self, users: int = 100, *, store: UserStore | None = None, port: int = 0) -> None:
        super().__init__()
        self.store = store or UserStore(users, id_format="mem-{n:07d}", roles=("Agent", "Admin"))
        # Served after the store's users, for records a store cannot produce (bad emails...).
        self.extra: list[ExternalUser] = []
        self.page_size = MAX_PAGE_SIZE  # the largest page this fake API serves (a kit knob)
        self.retry_after = 7.0  # what a rate_limit fault asks the client to wait
        self.repeat_page_token = False  # when True, every page names itself as the next one
        self.installations: set[str] = set()
        self.instance = f"memory-{next(_counter)}"
        self._api_key = f"mk-{self.instance}-0f3a9c"
        _INSTANCES[self.instance] = self

    def set_raw(self, number: int, fields: Mapping[str, Any]) -> None:
        """Serve user ``number`` with these raw values (``modified_at``, ``active``), as they
        are, from a new change stamp on (:meth:`seatgate.core.plugins.UserStore.set_raw`)."""
        self.store.set_raw(number, fields)

    def start(self) -> MemorySandbox:
        return self

    def stop(self) -> None:
        self.clear_faults()

    def __enter__(self) -> MemorySandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"memory://{self.instance}"

    def settings(self) -> dict[str, Any]:
        return {"instance": self.instance, "api_key": self._api_key}

    def bad_settings(self) -> dict[str, Any]:
        return {"instance": self.instance, "api_key": "mk-wrong-key"}

    # -- the fake API ------------------------------------------------------------------------------
    def _request(self, api_key: str) -> None:
        with self._lock:
            self.requests += 1
            fault = self._pop_fault()
        if fault == "rate_limit":
            raise RateLimited("the memory CRM is throttling; retry later", self.retry_after)
        if fault in ("server_error", "timeout"):
            raise TransientError(f"the memory CRM failed ({fault}); retry later")
        if fault == "malformed":
            raise MalformedResponse("the memory CRM sent a page that is not a list of users")
        if fault == "expired_token":
            raise TokenExpired("the memory CRM session expired")
        if fault == "quota":
            raise QuotaExhausted("the memory CRM's daily request quota is spent; try tomorrow")
        if api_key != self._api_key:
            raise AuthFailed("the memory CRM refused the API key: check api_key in the config")

    def whoami(self, api_key: str) -> str:
        self._request(api_key)
        return self.instance

    def page(
        self, api_key: str, since: dt.datetime | None, token: str | None, limit: int
    ) -> tuple[list[ExternalUser], str | None]:
        """One page of users changed at or after ``since``; returns (users, next token)."""
        self._request(api_key)
        offset = int(token) if token else 0
        limit = max(1, min(limit, self.page_size))
        users = self.store.users
        start = 0 if since is None else _first_at_or_after(users, since)
        chunk = users[start + offset : start + offset + limit]
        out = [_to_external(u) for u in chunk]
        served = offset + len(chunk)
        stored = len(users) - start
        if served >= stored:
            # The hand-made records come after the store's, on the pages that follow it.
            extra = [u for u in self.extra if since is None or _at_or_after(u, since)]
            skip = served - stored
            room = limit - len(out)
            out += extra[skip : skip + room]
            served += len(extra[skip : skip + room])
            more = served < stored + len(extra)
        else:
            more = True
        if self.repeat_page_token:
            return out, token or "0"
        return out, (str(served) if more else None)


def _at_or_after(user: ExternalUser, since: dt.datetime) -> bool:
    return user.modified_at is None or user.modified_at >= since


def _first_at_or_after(users: list[SandboxUser], since: dt.datetime) -> int:
    lo, hi = 0, len(users)
    while lo < hi:
        mid = (lo + hi) // 2
        if users[mid].modified_at < since:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _to_external(u: SandboxUser) -> ExternalUser:
    raw = u.extra.get("fields")
    if raw:
        # The adapter reads a raw value as a CRM's adapter would: one it cannot read is the
        # record's problem (quarantined by the core), never the page's.
        stamp, active = raw.get("modified_at", u.modified_at), raw.get("active", u.active)
        if not isinstance(stamp, dt.datetime):
            return ExternalUser(
                u.id, u.email, problem=unreadable("modified_at", stamp, "date-time")
            )
        if not isinstance(active, bool):
            return ExternalUser(u.id, u.email, problem="active is not true or false")
    return ExternalUser(
        external_id=u.id,
        email=u.email,
        name=f"{u.first_name} {u.last_name}",
        active=u.active,
        roles=tuple(u.roles),
        modified_at=u.modified_at,
    )


def _sandbox(settings: Mapping[str, Any]) -> MemorySandbox:
    instance = settings["instance"]
    sandbox = _INSTANCES.get(instance)
    if sandbox is None:
        raise AuthFailed(f"no memory CRM named {instance!r}: start a MemorySandbox first")
    return sandbox


def _key(settings: Mapping[str, Any]) -> str:
    return reveal(settings["api_key"])


class MemoryAdapter:
    """The adapter plugin for product ``memory``."""

    @hookimpl
    def seatgate_adapter_info(self) -> AdapterInfo:
        return AdapterInfo(
            name="memory",
            products=(PRODUCT,),
            version="1.0",
            features={PRODUCT: ("cti", "agent_sync")},
            config_schema=MEMORY_SCHEMA,
            example_config={"instance": "memory-1", "api_key": "${MEMORY_API_KEY}"},
            supports_cursor=True,
            page_size=MAX_PAGE_SIZE,
            description="An in-process CRM for tests and benchmarks.",
        )

    @hookimpl
    def seatgate_check_connection(
        self, product: str, settings: Mapping[str, Any], ctx: RequestContext
    ) -> bool:
        sandbox = _sandbox(settings)
        key = _key(settings)
        ctx.call(lambda: sandbox.whoami(key), refresh=lambda: None)
        return True

    @hookimpl
    def seatgate_pull_users(
        self,
        product: str,
        settings: Mapping[str, Any],
        since: dt.datetime | None,
        ctx: RequestContext,
    ) -> Iterator[UserPage]:
        sandbox = _sandbox(settings)
        return _pages(sandbox, _key(settings), since, int(settings.get("page_size", 1000)), ctx)

    @hookimpl
    def seatgate_install(self, account: str, product: str, settings: Mapping[str, Any]) -> bool:
        sandbox = _sandbox(settings)
        sandbox.whoami(_key(settings))
        sandbox.installations.add(f"{account}:{product}")
        return True

    @hookimpl
    def seatgate_uninstall(self, account: str, product: str, settings: Mapping[str, Any]) -> bool:
        sandbox = _sandbox(settings)
        sandbox.whoami(_key(settings))
        sandbox.installations.discard(f"{account}:{product}")
        return True


def _pages(
    sandbox: MemorySandbox,
    key: str,
    since: dt.datetime | None,
    limit: int,
    ctx: RequestContext,
) -> Iterator[UserPage]:
    token: str | None = None
    seen: set[str] = set()
    while True:

        def fetch(t: str | None = token) -> tuple[list[ExternalUser], str | None]:
            return sandbox.page(key, since, t, limit)

        users, next_token = ctx.call(fetch, refresh=lambda: None)
        yield UserPage(users)
        if next_token is None:
            return
        # A CRM that hands back a token we already followed would page forever.
        if next_token in seen or next_token == token:
            raise MalformedResponse("the memory CRM repeated a page token; the pull was stopped")
        seen.add(next_token)
        token = next_token


plugin = MemoryAdapter()
