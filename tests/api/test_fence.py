"""The version fence: every waiting check is answered by one query that started after it
arrived; a burst of checks costs a few queries, not one each."""

from __future__ import annotations

import asyncio

import pytest

from seatgate.core.storage.fence import VersionFence
from seatgate.core.testing.memory import MemorySandbox

from .conftest import ACME, ADMIN, USERS, make_core, seed


@pytest.mark.postgres
def test_a_burst_of_checks_shares_queries_and_sees_the_latest_commit(
    postgres_url: str, crm: MemorySandbox
) -> None:
    core, _ = make_core(postgres_url)
    seed(core, crm)

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

    try:
        asyncio.run(scenario())
    finally:
        core.close()
