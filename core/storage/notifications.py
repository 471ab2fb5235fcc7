"""Changes committed by any process, as they commit: PostgreSQL ``LISTEN`` on the schema's channel.

The ``access`` migrations' triggers ``NOTIFY`` when a contract row changes (every seat, user,
contract or installation change bumps its ``entitlement_version``; payload ``e:<account>``, or
``l:<account>`` when only a sync's writes moved it: access_0002) and when a token is made or
revoked (payload ``t``). They send on the channel of the table's schema, and :class:`ChangeFeed`
listens on the channel of its connection's ``current_schema()``, both named by the database's
``seatgate_channel(schema)`` (access_0003): a channel is database-wide, and deployments in two
schemas of one database must not hear each other's changes. The feed listens on a connection of
its own, in a thread, and calls back; it is what lets every server process keep its in-process
caches and still answer a check right after another process's unassign.

While not listening (the database restarted, the network dropped) nothing is known about what
changed, so every (re)connection first reports "everything may have changed" (``None`` and
``on_tokens``), and ``connected`` is False until it listens again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from psycopg import sql

from .db import Database

__all__ = ["ChangeFeed"]

# The database names the channel (migration access_0003): one SQL function that the triggers call
# too, so they and the listeners cannot disagree on the rule.
_CHANNEL_QUERY = "SELECT seatgate_channel(current_schema())"
logger = logging.getLogger("seatgate.notifications")


class ChangeFeed:
    """Calls ``on_entitlements(account)`` (None: any account) and ``on_tokens()`` for the changes
    other processes commit, and ``on_lagged(account)`` for a contract whose entitlement version a
    sync's writes alone moved (a change a server may lag: ``serve --sync-lag``; without
    ``on_lagged``, ``on_entitlements`` is called for it too). PostgreSQL only; :meth:`start` and
    :meth:`stop` run and end its thread. ``reconnect_delay`` and ``poll`` are in seconds.

    ``channel`` is the channel listened on, asked of the database at each connection (None until
    the first): the schema's own, so a feed hears the changes of its schema only. A database whose
    ``access`` branch is older than access_0003 has no ``seatgate_channel``: the feed logs the
    error and retries, never connected, as for a database that does not answer."""

    def __init__(
        self,
        database: Database,
        *,
        on_entitlements: Callable[[str | None], None],
        on_tokens: Callable[[], None],
        on_lagged: Callable[[str], None] | None = None,
        reconnect_delay: float = 1.0,
        poll: float = 0.5,
        connect_timeout: int = 5,
    ) -> None:
        if database.is_sqlite:
            raise ValueError("change notifications need PostgreSQL")
        url = database.engine.url.set(drivername="postgresql")
        self._dsn = url.render_as_string(hide_password=False)
        self._on_entitlements = on_entitlements
        self._on_tokens = on_tokens
        self._on_lagged = on_lagged or on_entitlements
        self._reconnect_delay = reconnect_delay
        self._poll = poll
        self._connect_timeout = connect_timeout
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()
        self.received = 0
        self.channel: str | None = None

    def __repr__(self) -> str:
        return (
            f"ChangeFeed(channel={self.channel!r}, connected={self.connected.is_set()}, "
            f"received={self.received})"
        )

    def start(self) -> ChangeFeed:
        self._thread = threading.Thread(target=self._run, name="seatgate-change-feed", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _dispatch(self, payload: str) -> None:
        self.received += 1
        if payload.startswith("e:"):
            self._on_entitlements(payload[2:])
        elif payload.startswith("l:"):
            self._on_lagged(payload[2:])
        elif payload == "t":
            self._on_tokens()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self._dsn, autocommit=True, connect_timeout=self._connect_timeout
                ) as conn:
                    row = conn.execute(_CHANNEL_QUERY).fetchone()
                    # One row, never NULL: the function is found only in an existing schema of
                    # the search path, so current_schema() names one.
                    assert row is not None and isinstance(row[0], str)
                    self.channel = row[0]
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    # Whatever changed while nobody listened is unknown: drop every cache entry.
                    self._on_entitlements(None)
                    self._on_tokens()
                    self.connected.set()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=self._poll):
                            self._dispatch(note.payload)
            except psycopg.Error as exc:
                # The message of a connection error names the host, never the password.
                logger.warning("change feed disconnected (%s); retrying", type(exc).__name__)
            finally:
                self.connected.clear()
            self._stop.wait(self._reconnect_delay)
