"""The change feed hears the changes of its own schema only: two deployments in two schemas of one
database (staging beside production; every test's schema) each have a channel (migration
access_0003), so neither drops its caches for the other's writes."""

from __future__ import annotations

import pytest

from seatgate.core.storage.db import Database
from seatgate.core.testing.memory import MemorySandbox

from .conftest import ACME, OTHER, listen, make_core, seed, settle


@pytest.mark.postgres
def test_two_schemas_of_one_database_do_not_hear_each_others_changes(
    postgres_url: str, other_postgres_url: str, crm: MemorySandbox
) -> None:
    """The same accounts written in one schema are told to its feed alone, then in the other
    schema to the other feed alone (before access_0003 both heard both: tests/api/test_fence.py
    saw ``e:acme`` of another process's schema)."""
    here, _ = make_core(postgres_url)
    there, _ = make_core(other_postgres_url)
    heard_here, feed_here = listen(here)
    heard_there, feed_there = listen(there)
    try:
        assert feed_here.channel and feed_there.channel
        assert feed_here.channel != feed_there.channel
        seed(here, crm)  # contracts of acme and other, and tokens
        # Settled here first: a note sent on a shared channel would have reached both by then.
        assert {f"e:{ACME}", f"e:{OTHER}", "t"} <= set(settle(heard_here))
        assert settle(heard_there) == []
        heard_here.clear()
        seed(there, crm)  # the same names, in the other schema
        assert {f"e:{ACME}", f"e:{OTHER}", "t"} <= set(settle(heard_there))
        assert settle(heard_here) == []
    finally:
        feed_here.stop()
        feed_there.stop()
        there.close()
        here.close()


@pytest.mark.postgres
def test_a_schemas_channel_is_a_short_name_of_its_own_whatever_the_schema_name(
    postgres_url: str,
) -> None:
    """A channel name must be shorter than 64 bytes and a schema name can be 63: the channel is a
    fixed prefix and a digest, distinct for names differing only at their end or in case, and
    made of characters no identifier needs quoted."""
    database = Database(postgres_url)
    names = ["public", "Public", "x" * 63, "x" * 62 + "y", "é" * 31 + "x", 'a "quoted" schema']
    try:
        with database.engine.connect() as conn:
            channels = [
                conn.exec_driver_sql("SELECT seatgate_channel(%(name)s)", {"name": name}).scalar()
                for name in names
            ]
    finally:
        database.dispose()
    assert len(set(channels)) == len(names)
    for channel in channels:
        assert isinstance(channel, str) and len(channel.encode()) < 64
        assert channel.startswith("seatgate_changes_") and channel.isascii()
        assert channel.replace("_", "").isalnum() and channel == channel.lower()
