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

The store in force is process-wide: :func:`use_throttle_store` sets it (the worker does, from
``SEATGATE_THROTTLE_URL`` or the Redis broker); :func:`throttle_store` returns it, building the one
``SEATGATE_THROTTLE_URL`` names on first use, else a local one.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Protocol

__all__ = [
    "THROTTLE_PREFIX_ENV",
    "THROTTLE_URL_ENV",
    "LocalThrottleStore",
    "RedisThrottleStore",
    "ThrottleStore",
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
        Returns the deadline now in force."""
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
            until = max(until, self._until.get(key, 0.0))
            self._until[key] = until
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
# Redis's clock, and lets the key expire with the pause.
_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local untl = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if untl > cur then
  redis.call('SET', KEYS[1], untl, 'PX', tonumber(ARGV[1]) + 1000)
  return untl
end
return cur
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
