"""The throttle of each CRM instance, shared by everything that calls it (issue 17).

When a CRM answers ``429 Retry-After: 30`` (or a daily quota is spent), every run talking to that
instance should wait, not only the one that was told: each worker that keeps calling spends the
budget the others wait for. The adapter kit's :class:`~.kit.HttpClient` records each such answer
in a :class:`ThrottleStore` under the instance's base URL and consults it before every request.

- :class:`LocalThrottleStore` (the default): one process's memory. Runs in one process (the CLI's
  ``sync --due``) share it; nothing else is needed on the machine.
- :class:`RedisThrottleStore`: Redis, so every worker of a fleet, on every machine, shares it.
  Deadlines are kept in Redis's own clock (``TIME`` inside a script), so machines whose clocks
  disagree still wait the same span. A Redis that cannot be reached never fails a sync: the
  store then answers "no pause" and says so once in the log (throttling is advice, the CRM still
  answers 429 itself).

:class:`InstanceThrottle` is the rule every client applies, whatever sends its requests (the kit's
``HttpClient`` on httpx, or a vendor library through :mod:`.transports`): before a request, a
pause another run was told of holds it back (:class:`HeldBack`: nothing is sent, and the run's
statistics do not count it as a request); after an answer, a wait the CRM asked for (its
``Retry-After``, a vendor's throttle header, or the adapter's reading of a spent quota) pauses the
instance for every run.

The store in force is process-wide: :func:`use_throttle_store` sets it (the worker does, from
``SEATGATE_THROTTLE_URL`` or the Redis broker); :func:`throttle_store` returns it, building the one
``SEATGATE_THROTTLE_URL`` names on first use, else a local one.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from ..errors import QuotaExhausted, RateLimited

__all__ = [
    "QUOTA_PAUSE",
    "THROTTLE_PREFIX_ENV",
    "THROTTLE_URL_ENV",
    "HeldBack",
    "HeldQuota",
    "HeldRateLimited",
    "InstanceThrottle",
    "LocalThrottleStore",
    "RedisThrottleStore",
    "ThrottleStore",
    "origin",
    "throttle_store",
    "use_throttle_store",
]

logger = logging.getLogger("seatgate.throttle")

THROTTLE_URL_ENV = "SEATGATE_THROTTLE_URL"  # redis://host:6379/0 — a throttle shared by a fleet
THROTTLE_PREFIX_ENV = "SEATGATE_REDIS_PREFIX"  # keys start with this (default "seatgate:")
DEFAULT_PREFIX = "seatgate:"


class ThrottleStore(Protocol):
    """Pauses per CRM instance (``key``: its base URL), in seconds.

    A pause's deadline is an opaque number in the store's own clock, comparable only with other
    deadlines of the same store: the client that was told to wait compares it with the one it
    set, so it does not wait twice (its retry policy already waits for its own answer)."""

    def pause(self, key: str, seconds: float) -> float:
        """Nobody calls ``key`` for the next ``seconds``; a later pause already set stays.
        Returns the deadline of this pause (the one in force may be later)."""
        ...

    def pause_of(self, key: str) -> tuple[float, float]:
        """(deadline, seconds left) of the pause of ``key``; (0.0, 0.0) when there is none."""
        ...


class LocalThrottleStore:
    """Pauses in this process's memory (monotonic clock: network time, not a business rule)."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "LocalThrottleStore()"

    def pause(self, key: str, seconds: float) -> float:
        until = time.monotonic() + max(0.0, seconds)
        with self._lock:
            self._until[key] = max(until, self._until.get(key, 0.0))
        return until

    def pause_of(self, key: str) -> tuple[float, float]:
        with self._lock:
            until = self._until.get(key)
        if until is None:
            return 0.0, 0.0
        left = until - time.monotonic()
        if left <= 0:
            with self._lock:
                if self._until.get(key) == until:
                    del self._until[key]
            return 0.0, 0.0
        return until, left


# KEYS[1] the instance's key; ARGV[1] the pause in milliseconds. Keeps the later deadline, in
# Redis's clock, and lets the key expire with the pause; returns this pause's deadline.
_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local untl = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if untl > cur then
  redis.call('SET', KEYS[1], untl, 'PX', tonumber(ARGV[1]) + 1000)
end
return untl
"""

# KEYS[1] the instance's key: {deadline, milliseconds left} of its pause ({0, 0}: none).
_LEFT = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur == 0 then return {0, 0} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if cur <= now then return {0, 0} end
return {cur, cur - now}
"""


class RedisThrottleStore:
    """Pauses in Redis, shared by every process that names the same server and ``prefix``.

    :param url: ``redis://host:port/db`` (``rediss://`` for TLS); its password is never shown.
    :param prefix: the start of every key (``{prefix}throttle:{base URL}``), so several
        deployments (or tests) can share one Redis.
    """

    def __init__(self, url: str, *, prefix: str = DEFAULT_PREFIX, timeout: float = 2.0) -> None:
        import redis

        self.prefix = prefix
        self._client: Any = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._pause = self._client.register_script(_PAUSE)
        self._left = self._client.register_script(_LEFT)
        self._warned = False
        host = self._client.connection_pool.connection_kwargs.get("host", "?")
        port = self._client.connection_pool.connection_kwargs.get("port", "?")
        self._shown = f"redis://{host}:{port}"

    def __repr__(self) -> str:
        return f"RedisThrottleStore({self._shown!r}, prefix={self.prefix!r})"

    def key(self, key: str) -> str:
        return f"{self.prefix}throttle:{key}"

    def pause(self, key: str, seconds: float) -> float:
        try:
            return float(self._pause(keys=[self.key(key)], args=[max(1, int(seconds * 1000))]))
        except Exception as exc:  # redis' own errors: advice lost, never the sync
            self._warn(exc)
            return 0.0

    def pause_of(self, key: str) -> tuple[float, float]:
        try:
            until, left = self._left(keys=[self.key(key)])
        except Exception as exc:
            self._warn(exc)
            return 0.0, 0.0
        return float(until), max(0.0, int(left) / 1000)

    def close(self) -> None:
        self._client.close()

    def _warn(self, exc: Exception) -> None:
        if not self._warned:
            self._warned = True
            logger.warning(
                "the shared throttle at %s cannot be used (%s); each worker throttles on its own",
                self._shown,
                type(exc).__name__,
            )


_store: ThrottleStore | None = None
_store_lock = threading.Lock()


def use_throttle_store(store: ThrottleStore | None) -> None:
    """Make ``store`` the process's throttle store (None: back to the default)."""
    global _store
    with _store_lock:
        _store = store


def throttle_store() -> ThrottleStore:
    """The process's throttle store: the one set by :func:`use_throttle_store`, else Redis at
    ``SEATGATE_THROTTLE_URL`` (keys prefixed by ``SEATGATE_REDIS_PREFIX``), else local."""
    global _store
    if _store is None:
        with _store_lock:
            if _store is None:
                url = os.environ.get(THROTTLE_URL_ENV)
                if url and url != "local":
                    prefix = os.environ.get(THROTTLE_PREFIX_ENV) or DEFAULT_PREFIX
                    _store = RedisThrottleStore(url, prefix=prefix)
                else:
                    _store = LocalThrottleStore()
    return _store


# A spent quota whose answer names no reset (Salesforce's rolling 24 hours, HubSpot's midnight in
# the portal's own time zone): the instance is paused this long, then the next run's first request
# probes it again -- one request an hour, instead of one per run while the quota stays spent.
QUOTA_PAUSE = 3600.0


class HeldBack(Exception):
    """Mixed into the errors of a request the shared throttle kept back: nothing was sent, so
    :meth:`~.retry.RequestContext.call` does not count it as a request."""


class HeldRateLimited(HeldBack, RateLimited):
    """The instance is paused for less than the run's policy accepts: the policy waits it out."""


class HeldQuota(HeldBack, QuotaExhausted):
    """The instance is paused for longer than the run's policy accepts (a spent quota): the run
    ends and resumes at the next schedule."""


DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: the CRM instance a request goes to (no path, no
    query, no credentials). The scheme's default port is left out, so ``https://h:443`` and
    ``https://h`` are one origin (RFC 6454 section 4; RFC 3986 section 6.2.3).

    Raises ValueError for a port that is no number."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port and parts.port != DEFAULT_PORTS.get(scheme) else ""
    return f"{scheme}://{host}{port}"


# What an answer asks of every run: (status, headers, body) -> seconds to pause, or None. The body
# is read only when asked for (an error answer is small; a page of users is not).
WaitRule = Callable[[int, Mapping[str, str], Callable[[], bytes]], "float | None"]


class InstanceThrottle:
    """The shared throttle as one run's client applies it, to every request it sends.

    :param crm: the CRM's name, for messages.
    :param key: the instance every request goes to (e.g. a portal's base URL and credential
        digest); None: each request's :func:`origin` (an org's own host, a login server).
    :param rule: what an answer asks of every run (:data:`WaitRule`): the kit's
        :func:`~.kit.retry_after_rule`, or an adapter's that adds its vendor's spent-quota answers.
    :param max_wait: seconds; a pause longer than this ends the run (:class:`HeldQuota`) rather
        than waiting -- the run's ``RetryPolicy.max_retry_after``.
    :param store: the store of pauses; by default the process's (:func:`throttle_store`).

    The client that was told to wait is not held back by its own pause (its retry policy has
    just waited it out); a later, longer pause someone else set still holds it.
    """

    def __init__(
        self,
        crm: str,
        *,
        rule: WaitRule,
        key: str | None = None,
        max_wait: float = 300.0,
        store: ThrottleStore | None = None,
    ) -> None:
        self.crm = crm
        self.key = key
        self.rule = rule
        self.max_wait = max_wait
        self._store = store
        self._own: dict[str, float] = {}  # key -> the deadline of the pause this client set

    def __repr__(self) -> str:
        return f"InstanceThrottle({self.crm!r})"

    @property
    def store(self) -> ThrottleStore:
        return self._store if self._store is not None else throttle_store()

    def key_of(self, url: str) -> str:
        return self.key if self.key is not None else origin(url)

    def before(self, url: str) -> None:
        """Called before a request to ``url`` is sent: raises :class:`HeldRateLimited` (the
        seconds left as its ``retry_after``) or :class:`HeldQuota` while another run's pause of
        the instance lasts."""
        key = self.key_of(url)
        until, left = self.store.pause_of(key)
        if left <= 0 or until <= self._own.get(key, 0.0):
            return
        if left > self.max_wait:
            raise HeldQuota(
                f"{self.crm} is paused for {int(left)} s (a spent quota another run was told "
                "of); the run ends and resumes at the next schedule"
            )
        raise HeldRateLimited(
            f"{self.crm} is paused for {left:.1f} s (a Retry-After another run was given)", left
        )

    def after(
        self, url: str, status: int, headers: Mapping[str, str], body: Callable[[], bytes]
    ) -> float | None:
        """Called on every answer: when :attr:`rule` asks for a wait, the instance is paused
        that long for every run. Returns the wait, seconds (None: no pause)."""
        if 200 <= status < 300:
            return None
        wait = self.rule(status, headers, body)
        if wait:
            key = self.key_of(url)
            # A longer pause someone else set still holds this client once it has waited its own.
            self._own[key] = max(self._own.get(key, 0.0), self.store.pause(key, wait))
        return wait
