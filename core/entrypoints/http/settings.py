"""What a server is told: limits, timeouts and how its caches stay fresh."""

from __future__ import annotations

import json
from typing import Any

import attrs

from .ratelimit import parse_rate

__all__ = ["SWITCH_INTERVAL", "SYNC_LAG", "Freshness", "Settings"]

#: Default seconds a server's checks may lag a sync's writes (``serve --sync-lag``).
SYNC_LAG = 0.5

#: Seconds a thread holding the interpreter keeps it once another thread asks for it
#: (``sys.setswitchinterval``; Python's default is 0.005), in a server's worker. A refresh runs in
#: a thread while the event loop answers checks, and the loop gives up the interpreter at every
#: socket call: at 5 ms, each of a check's hand-overs could wait 5 ms for the refresh (the
#: convoy effect), and a check took several of them during a sync's refreshes.
SWITCH_INTERVAL = 0.0005


class Freshness:
    """How a server learns of changes other processes commit (see ``docs/http.md``).

    - ``fence`` (PostgreSQL, the default there): every check waits for a read of its contract's
      version that started after it arrived — one query for all the checks waiting
      (:class:`~seatgate.core.storage.fence.VersionFence`) — and is answered from the cached
      snapshot when the version matches; tokens as with ``notify``.
    - ``notify`` (PostgreSQL): a :class:`~seatgate.core.storage.notifications.ChangeFeed` drops
      cached snapshots and tokens as the changes commit (a sync's writes: lagged, as with a
      fence); nothing is read per check, but a check that arrives before the notification is
      answered from the older snapshot.
    - ``version`` (SQLite, or asked for): every check re-reads the contract's version in a
      thread (one read each), every request re-reads its token.
    """

    FENCE = "fence"
    NOTIFY = "notify"
    VERSION = "version"
    AUTO = "auto"  # fence on PostgreSQL, version on SQLite


def _rate(value: str) -> str:
    parse_rate(value)  # BadInput for anything else
    return value


@attrs.frozen
class Settings:
    """A server's settings. Sizes in bytes, times in seconds.

    :param max_body: largest request body accepted (413 beyond).
    :param rate_limit: requests per token per worker process (429 with ``Retry-After`` beyond).
    :param request_timeout: how long a request may run before a 503 (the sync trigger has its own
        ``wait`` and answers 202 instead).
    :param db_timeout: a statement, a lock or a pool checkout gives up after this.
    :param sync_wait_max: the longest ``wait`` the sync trigger accepts.
    :param freshness: ``auto``, ``notify`` or ``version`` (:class:`Freshness`).
    :param max_age: seconds a cached snapshot or token is trusted between re-validations when
        notifications keep the caches fresh.
    :param sync_lag: seconds a check may answer from a snapshot that a sync's writes alone are
        newer than (fence and notify freshness; 0: never). A person's seat change, the contract and the
        installation are never lagged (docs/http.md, "Freshness").
    :param audit_flush: seconds between writes of buffered denied-check audit rows.
    :param webhook_interval: seconds between runs of the background webhook sender (0: no
        sender in this server; ``seatgate webhook deliver`` from cron sends instead).
    :param webhook_drain: seconds the sender's last pass at shutdown may go on sending.
    :param as_of: a fixed instant for every rule (ISO-8601), as ``--as-of`` (tests, demos).
    """

    max_body: int = 1_048_576
    rate_limit: str = attrs.field(default="1000/second", converter=_rate)
    request_timeout: float = 30.0
    db_timeout: float = 10.0
    sync_wait_max: float = 300.0
    sync_concurrency: int = 2
    freshness: str = Freshness.AUTO
    max_age: float = 5.0
    sync_lag: float = SYNC_LAG
    audit_flush: float = 0.5
    audit_batch: int = 10_000
    webhook_interval: float = 5.0
    webhook_drain: float = 5.0
    as_of: str | None = None
    db_url: str | None = None
    policy: str | None = None

    def to_json(self) -> str:
        return json.dumps(attrs.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Settings:
        data: dict[str, Any] = json.loads(text)
        return cls(**data)
