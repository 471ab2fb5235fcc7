"""The entitlement version of (account, product) as of now, for the checks of a server: one query
answers every check waiting, so a busy server reads the database once per batch of checks, not
once per check (PostgreSQL, asyncio).

Why a read at all: a notification (:mod:`.notifications`) reaches another process shortly after
the commit, but nothing orders it before a request that the committing process's client sends
next; under load a check can arrive first (measured: a check right after an unassign on another
server answered from the stale cache). A query that *starts* after the check arrived sees every
commit made before it: a check waits for the next query to start, never for one already running.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import psycopg

from .db import Database

__all__ = ["NONE", "VersionFence"]

logger = logging.getLogger("seatgate.fence")

_QUERY = """
SELECT k.name, k.product, c.entitlement_version, c.strict_version
FROM unnest(%s::text[], %s::text[]) AS k(name, product)
JOIN accounts a ON a.name = k.name
JOIN contracts c ON c.account_id = a.id AND c.product = k.product
"""


#: The versions of an (account, product) without a contract, or of an unknown account.
NONE = (-1, -1)


class VersionFence:
    """``await version(account, product)``: the contract's (``entitlement_version``,
    ``strict_version``) read by a query that started after the call (:data:`NONE` without a
    contract or account). ``timeout`` in seconds.

    ``readers``: queries in flight at once, each on a connection of its own. A check that
    arrives while every query runs waits for the first to end and then for its own; with one
    query in flight, that is two round trips of a busy database for every check that arrives
    mid-query. A second reader starts that check's query at once."""

    def __init__(self, database: Database, *, timeout: float, readers: int = 2) -> None:
        if database.is_sqlite:
            raise ValueError("the version fence needs PostgreSQL")
        self._dsn = database.engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        self._timeout = timeout
        self._max_readers = max(1, readers)
        self._idle: list[psycopg.AsyncConnection[tuple[str, str, int, int]]] = []
        self._waiting: dict[tuple[str, str], list[asyncio.Future[tuple[int, int]]]] = {}
        self._readers: set[asyncio.Task[None]] = set()
        self._unstarted = 0  # readers made that have not taken their first batch yet
        self._closed = False
        self.queries = 0

    async def version(self, account: str, product: str) -> tuple[int, int]:
        future: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault((account, product), []).append(future)
        # Every reader that runs is in a query (a reader takes the waiting batch as soon as its
        # query ends, with no await between), unless one is yet to take its first batch.
        if not self._unstarted and len(self._readers) < self._max_readers:
            self._unstarted += 1
            reader = asyncio.create_task(self._read())
            self._readers.add(reader)
            reader.add_done_callback(self._readers.discard)
        return await asyncio.wait_for(future, self._timeout)

    async def _read(self) -> None:
        self._unstarted -= 1
        conn = self._idle.pop() if self._idle else None
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, {}  # later arrivals wait for the next query
                try:
                    if conn is None or conn.closed:
                        conn = await asyncio.wait_for(self._connect(), self._timeout)
                    found = await asyncio.wait_for(self._query(conn, list(batch)), self._timeout)
                except Exception as exc:
                    await _discard(conn)
                    conn = None
                    for futures in batch.values():
                        for future in futures:
                            if not future.done():
                                future.set_exception(exc)
                    continue
                for key, futures in batch.items():
                    for future in futures:
                        if not future.done():
                            future.set_result(found.get(key, NONE))
        finally:
            if conn is not None and not self._closed:
                self._idle.append(conn)
            else:
                await _discard(conn)

    async def _connect(self) -> psycopg.AsyncConnection[tuple[str, str, int, int]]:
        return await psycopg.AsyncConnection.connect(
            self._dsn, autocommit=True, connect_timeout=max(1, int(self._timeout))
        )

    async def _query(
        self,
        conn: psycopg.AsyncConnection[tuple[str, str, int, int]],
        keys: Sequence[tuple[str, str]],
    ) -> dict[tuple[str, str], tuple[int, int]]:
        cursor = await conn.execute(
            _QUERY, ([k[0] for k in keys], [k[1] for k in keys]), prepare=True
        )
        self.queries += 1
        return {
            (name, product): (int(v), int(strict))
            for name, product, v, strict in await cursor.fetchall()
        }

    async def close(self) -> None:
        """Close the idle connections; a reader still in a query closes its own when it ends."""
        self._closed = True
        while self._idle:
            await _discard(self._idle.pop())


async def _discard(conn: psycopg.AsyncConnection[Any] | None) -> None:
    """Close ``conn`` (a connection a query failed on, or one no longer wanted), if any."""
    if conn is not None:
        try:
            await conn.close()
        except psycopg.Error:
            logger.warning("version fence: closing a broken connection failed")
