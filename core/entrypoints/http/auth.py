"""Who a request is, and whether it may: bearer tokens, one account each, roles, rate limits.

- no or malformed ``Authorization: Bearer ...`` header, an unknown or revoked token: 401;
- a token of another account than the path's: 404, the same answer as an account that does not
  exist (a token learns nothing about other accounts);
- a role without the route's scope (``check`` tokens on anything but the check): 403;
- over the rate limit (per token, per worker process): 429 with ``Retry-After`` (seconds).

Tokens are cached in the process (digest -> principal); the cache is dropped when any token is
made or revoked (the change feed on PostgreSQL) and each entry re-validated after ``max_age``
seconds (``0``: every request asks the database). The requests that find a token's entry expired
while one read of it runs await that read (:meth:`Gate.principal`): as an entry expired, every
request then in flight on the token had read it again, in a thread each (measured: some 50 reads
at once every ``max_age`` on a busy worker).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from ...services.tokens import Principal, TokenService, digest_of
from .ratelimit import RateLimiter

__all__ = ["AccessDenied", "Gate"]

_CACHE_MAX = 10_000


class AccessDenied(Exception):
    """A refusal at the gate, rendered as a problem document by the app."""

    def __init__(
        self, status: int, code: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}


class Gate:
    """Authenticates, authorises and rate-limits. Thread-safe."""

    def __init__(
        self,
        tokens: TokenService,
        *,
        rate_limit: str,
        max_age: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tokens = tokens
        self.max_age = max_age
        self._monotonic = monotonic
        self._cache: dict[str, tuple[Principal | None, float]] = {}
        self._lock = threading.Lock()
        self._forgotten = 0  # times forget() ran: an answer read across one is not kept
        # Reads running on the event loop, by digest and the forget() count they started after.
        self._reading: dict[tuple[str, int], asyncio.Future[Principal | None]] = {}
        self._limiter = RateLimiter(rate_limit, monotonic)

    def forget(self) -> None:
        """Drop every cached token (a token was made or revoked somewhere)."""
        with self._lock:
            self._forgotten += 1
            self._cache.clear()

    def cached(self, secret: str) -> tuple[bool, Principal | None]:
        """(True, the cached principal or None for a known bad token), or (False, None) when the
        cache cannot say."""
        return self._cached(digest_of(secret))

    def _cached(self, digest: str) -> tuple[bool, Principal | None]:
        hit = self._cache.get(digest)
        if hit is None or self._monotonic() - hit[1] >= self.max_age:
            return False, None
        return True, hit[0]

    async def principal(self, secret: str) -> Principal | None:
        """The token's principal (None: unknown or revoked), from the cache or read in a thread.
        A read of the token that started since the last :meth:`forget` answers every request
        that asks meanwhile, as the entry it caches would once it ends; with ``max_age`` 0 each
        request reads its own (it is never cached)."""
        digest = digest_of(secret)
        hit, found = self._cached(digest)
        if hit:
            return found
        if not self.max_age:
            return await run_in_threadpool(self.lookup, secret)
        key = (digest, self._forgotten)
        reading = self._reading.get(key)
        if reading is None:
            reading = asyncio.ensure_future(run_in_threadpool(self.lookup, secret))
            self._reading[key] = reading
            reading.add_done_callback(lambda done: self._read(key, done))
        # Shielded: a request that gives up (its timeout) leaves the read to the others.
        return await asyncio.shield(reading)

    def _read(self, key: tuple[str, int], done: asyncio.Future[Principal | None]) -> None:
        del self._reading[key]
        if not done.cancelled():
            done.exception()  # retrieved: each request awaiting it raises its own

    def lookup(self, secret: str) -> Principal | None:
        """Ask the database (a read) and cache the answer."""
        before = self._forgotten
        found = self._tokens.authenticate(secret)
        with self._lock:
            if self._forgotten != before:
                return found  # a token changed while it was read: this answer is not cached
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[digest_of(secret)] = (found, self._monotonic())
        return found

    @staticmethod
    def secret_of(request: Request) -> str:
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise AccessDenied(
                401,
                "unauthenticated",
                "send Authorization: Bearer TOKEN (a token made by `seatgate token create`)",
                {"WWW-Authenticate": "Bearer"},
            )
        return secret.strip()

    def admit(
        self, request: Request, principal: Principal | None, scope: str | tuple[str, ...]
    ) -> Principal:
        """The checks after the token is known: live, same account, role (one of the route's
        scopes), rate."""
        if principal is None:
            raise AccessDenied(
                401,
                "unauthenticated",
                "unknown or revoked token",
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        request.scope.setdefault("state", {})["token_id"] = principal.token_id
        account = request.path_params.get("account")
        if account is not None and account != principal.account:
            raise AccessDenied(404, "not_found", f"unknown account {account!r}")
        scopes = (scope,) if isinstance(scope, str) else scope
        if not any(principal.may(s) for s in scopes):
            raise AccessDenied(
                403,
                "forbidden",
                f"a {principal.role} token may not do this (it needs the {' or '.join(scopes)} "
                "scope)",
            )
        wait = self._limiter.hit(principal.token_id)
        if wait:
            raise AccessDenied(
                429,
                "rate_limited",
                f"over {self._limiter.rate} for this token",
                {"Retry-After": RateLimiter.retry_after(wait)},
            )
        return principal
