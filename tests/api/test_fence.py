"""The version fence: every waiting check is answered by one query that started after it
arrived; a burst of checks costs a few queries, not one each."""

from __future__ import annotations

import asyncio

import pytest

from seatgate.core.storage.fence import VersionFence

from .conftest import ACME, ADMIN, USERS, World

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_world(world: World) -> World:
    if world.core.db.is_sqlite:
        pytest.skip("the fence is PostgreSQL's")
    return world


def test_a_burst_of_checks_shares_queries_and_sees_the_latest_commit(pg_world: World) -> None:
    core = pg_world.core

    async def scenario() -> None:
        fence = VersionFence(core.db, timeout=10)
        try:
            before = await fence.version(ACME, "memory")
            with core.ports.db.read() as uow:
                assert before == uow.snapshots.version(ACME, "memory") >= 0
            got = await asyncio.gather(*(fence.version(ACME, "memory") for _ in range(200)))
            assert set(got) == {before}
            assert fence.queries < 20  # one per batch, not one per check
            core.seats.assign(ACME, "memory", [USERS[0]], ADMIN)  # committed before the call
            assert await fence.version(ACME, "memory") == before + 1
            assert await fence.version(ACME, "nosuch") == -1
            assert await fence.version("nobody", "memory") == -1
        finally:
            await fence.close()

    asyncio.run(scenario())
