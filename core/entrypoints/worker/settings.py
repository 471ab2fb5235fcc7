"""The fleet's settings, from the environment (issue 17).

=============================  ==========================================================  =========
variable                       what                                                        default
=============================  ==========================================================  =========
``SEATGATE_BROKER_URL``        the Celery broker                                           ``redis://127.0.0.1:6379/0``
``SEATGATE_RESULT_BACKEND``    Celery's result backend (tasks keep no results: the ledger  the broker
                               in the database is the record)
``SEATGATE_QUEUE``             the queue the sync tasks go to                              ``seatgate``
``SEATGATE_REDIS_PREFIX``      the start of every Redis key (broker, throttle), so         ``seatgate:``
                               deployments or tests can share one Redis
``SEATGATE_THROTTLE_URL``      the Redis of the shared CRM throttle (``local``: each       the broker, if Redis
                               worker process throttles on its own)
``SEATGATE_BEAT_INTERVAL``     seconds between two reads of the schedule by ``beat``       ``30``
``SEATGATE_VISIBILITY_TIMEOUT``  seconds before the broker hands an unacknowledged task    ``3600``
                               (its worker died) to another worker
=============================  ==========================================================  =========
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

import attrs

from ...errors import BadInput

__all__ = ["FleetSettings", "shown"]

DEFAULT_BROKER = "redis://127.0.0.1:6379/0"


def shown(url: str) -> str:
    """``url`` without its password, for logs and errors."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


def _seconds(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:  # NaN fails both
        raise BadInput(name, raw, f"seconds from {low:g} to {high:g}")
    return value


def _url(env: Mapping[str, str], name: str, default: str | None) -> str | None:
    raw = env.get(name) or default
    if raw is None:
        return None
    if urlsplit(raw).scheme not in ("redis", "rediss", "amqp", "amqps", "memory"):
        raise BadInput(name, shown(raw), "a URL such as redis://127.0.0.1:6379/0")
    return raw


@attrs.frozen
class FleetSettings:
    """Where the broker is and how the fleet paces itself (see the module's table)."""

    broker_url: str = DEFAULT_BROKER
    result_backend: str = DEFAULT_BROKER
    queue: str = "seatgate"
    prefix: str = "seatgate:"
    throttle_url: str | None = DEFAULT_BROKER
    beat_interval: float = 30.0  # seconds
    visibility_timeout: float = 3600.0  # seconds

    def __repr__(self) -> str:
        return (
            f"FleetSettings(broker={shown(self.broker_url)!r}, queue={self.queue!r}, "
            f"prefix={self.prefix!r})"
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FleetSettings:
        """Read the settings; a bad value is :class:`BadInput` naming the variable."""
        env = os.environ if env is None else env
        broker = _url(env, "SEATGATE_BROKER_URL", DEFAULT_BROKER)
        assert broker is not None
        backend = _url(env, "SEATGATE_RESULT_BACKEND", broker)
        assert backend is not None
        redis_broker = urlsplit(broker).scheme in ("redis", "rediss")
        if env.get("SEATGATE_THROTTLE_URL") == "local":
            throttle = None
        else:
            throttle = _url(env, "SEATGATE_THROTTLE_URL", broker if redis_broker else None)
        queue = env.get("SEATGATE_QUEUE") or "seatgate"
        if not queue.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise BadInput("SEATGATE_QUEUE", queue, "letters, digits, '-', '_' and '.'")
        return cls(
            broker_url=broker,
            result_backend=backend,
            queue=queue,
            prefix=env.get("SEATGATE_REDIS_PREFIX") or "seatgate:",
            throttle_url=throttle,
            beat_interval=_seconds(env, "SEATGATE_BEAT_INTERVAL", 30.0, 1.0, 86_400.0),
            visibility_timeout=_seconds(env, "SEATGATE_VISIBILITY_TIMEOUT", 3600.0, 1.0, 604_800.0),
        )
