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
    contract or account). ``timeout`` in seconds."""

    def __init__(self, database: Database, *, timeout: float) -> None:
        if database.is_sqlite:
            raise ValueError("the version fence needs PostgreSQL")
        self._dsn = database.engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        self._timeout = timeout
        self._conn: psycopg.AsyncConnection[tuple[str, str, int, int]] | None = None
        self._waiting: dict[tuple[str, str], list[asyncio.Future[tuple[int, int]]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.queries = 0

    async def version(self, account: str, product: str) -> tuple[int, int]:
        future: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault((account, product), []).append(future)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read())
        return await asyncio.wait_for(future, self._timeout)

    async def _read(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, {}  # later arrivals wait for the next query
            try:
                found = await asyncio.wait_for(self._query(list(batch)), self._timeout)
            except Exception as exc:
                await self._reset()
                for futures in batch.values():
                    for future in futures:
                        if not future.done():
                            future.set_exception(exc)
                continue
            for key, futures in batch.items():
                for future in futures:
                    if not future.done():
                        future.set_result(found.get(key, NONE))

    async def _query(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[int, int]]:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(
                self._dsn, autocommit=True, connect_timeout=max(1, int(self._timeout))
            )
        cursor = await self._conn.execute(
            _QUERY, ([k[0] for k in keys], [k[1] for k in keys]), prepare=True
        )
        self.queries += 1
        return {
            (name, product): (int(v), int(strict))
            for name, product, v, strict in await cursor.fetchall()
        }

    async def _reset(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except psycopg.Error:
                logger.warning("version fence: closing a broken connection failed")

    async def close(self) -> None:
        await self._reset()
