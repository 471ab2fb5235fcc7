"""Write transactions sized by the time they take (issue 12 items 7 and 8).

A sync writes 100,000 users in many short transactions, so a check or an admin's write never
waits long behind it. A fixed number of users per transaction is either too many for a slow
database (a transaction longer than the 100 ms the issue allows on SQLite) or too few for a fast
one (a commit, a version bump and a round trip per few milliseconds of work: on SQLite 250 users
took about 8 ms, so a third of a full sync's writing went to the transactions themselves).

:class:`BatchSizer` learns, per kind of write, how long a user takes and sizes the next batch so
its transaction lasts about :data:`TARGET_SECONDS`: it starts small, grows at most
:data:`GROWTH` times per batch (one slow batch — a checkpoint, a lock held by an admin — is not
taken for the database's speed) and shrinks at once when a batch ran long, down to its
``minimum``. A sync's minimum is its first size: part of a batch's cost does not grow with the
batch (a count, a lookup, the commit), and a sizer free to shrink below it made PostgreSQL's auto
install of 33,333 seats take 1,820 batches of 18 seats (81 s) instead of 134 of 250 (26 s).

How long a batch may last depends on who waits for it (:func:`sizer`). SQLite runs one write
transaction at a time, so every other writer — an admin's seat change, a denied check's audit
row — waits for the sync's batch: :data:`TARGET_SECONDS`, at most :data:`MAX_SIZE` users.
PostgreSQL's readers never wait for a writer and its writers wait only for writers of the same
rows (a sync's batch holds its contract's row from the version's bump to its commit, so a seat
change of that contract waits for it): :data:`SHARED_TARGET_SECONDS`, at most
:data:`SHARED_MAX_SIZE` users. Measured on PostgreSQL (a first sync of 100,000 Salesforce users,
issue 12 item 9): batches of 50 ms took 13.4 s and 7.1 s of the process's CPU — each batch costs
a commit, a version bump, a count of the seats and two events, whatever its size — and batches
of 250 ms took 8.0-8.6 s and 4.0-4.2 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import attrs

__all__ = [
    "GROWTH",
    "MAX_SIZE",
    "SHARED_MAX_SIZE",
    "SHARED_TARGET_SECONDS",
    "TARGET_SECONDS",
    "BatchSizer",
    "sizer",
]

#: Seconds a write transaction of a sync should last: half the 100 ms the issue allows on SQLite,
#: so a batch slower than the ones before it still fits.
TARGET_SECONDS = 0.05
#: A batch is at most this many times its predecessor.
GROWTH = 2.0
#: Users per transaction, whatever the speed (bounds a batch's memory, and the time a commit
#: takes when it also checkpoints SQLite's write-ahead log: with 4,000 the longest transaction of
#: a 100,000-user sync took 230 ms).
MAX_SIZE = 1000
#: Seconds a sync's write transaction should last where only writers of the same rows wait for
#: it (PostgreSQL): an admin's seat change of the contract being synced waits at most about this.
SHARED_TARGET_SECONDS = 0.25
#: Users per transaction there, whatever the speed (bounds a batch's memory).
SHARED_MAX_SIZE = 5000


@attrs.define
class BatchSizer:
    """Users per write transaction for one kind of write.

    :param size: the first batch's size (users); later ones follow the time the batches took.
    :param target: seconds a transaction should last.
    :param clock: a monotonic clock in seconds (``time.perf_counter``; a test passes its own).
    :param minimum: the smallest batch (users), whatever the time; :param maximum: the largest.
    """

    size: int
    target: float = TARGET_SECONDS
    clock: Callable[[], float] = time.perf_counter
    minimum: int = 1
    maximum: int = MAX_SIZE

    def __attrs_post_init__(self) -> None:
        if self.size < 1 or self.target <= 0:
            raise ValueError(f"batch size {self.size} and target {self.target} must be positive")
        self.size = min(max(self.size, self.minimum), self.maximum)

    def observe(self, users: int, seconds: float) -> None:
        """A batch of ``users`` took ``seconds``: size the next one. A batch smaller than the
        size asked for (the last of a list) teaches as much per user as a full one."""
        if users <= 0:
            return
        if seconds <= 0:
            wanted = self.size * GROWTH
        else:
            wanted = min(self.target * users / seconds, self.size * GROWTH)
        self.size = int(min(max(wanted, self.minimum), self.maximum))

    def slices(self, total: int) -> Iterator[slice]:
        """Slices covering ``range(total)`` in order, each sized by the time the one before took
        to be handled (the caller's transaction runs between two steps of the iteration)."""
        start = 0
        while start < total:
            size = self.size
            t0 = self.clock()
            yield slice(start, start + size)
            self.observe(min(size, total - start), self.clock() - t0)
            start += size


def sizer(first: int, *, one_writer: bool) -> BatchSizer:
    """A sizer whose first batch is ``first`` users and never smaller, for a database that runs
    one write transaction at a time (``one_writer``: SQLite) or not (PostgreSQL)."""
    if one_writer:
        return BatchSizer(first, minimum=first)
    return BatchSizer(first, minimum=first, target=SHARED_TARGET_SECONDS, maximum=SHARED_MAX_SIZE)
