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


@pytest.mark.postgres
def test_checks_that_need_a_refresh_await_one_refresh_and_see_the_change(
    postgres_url: str, crm: MemorySandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A snapshot gone stale (a seat unassigned by another process) is refreshed once for every
    check waiting on it (entrypoints/http/refresh.py), each answering the new state; a version
    newer than the refresh read takes another round; an unknown account sends the check to the
    slower path, which reports it."""
    from seatgate.core.entrypoints.http.refresh import SnapshotRefresher

    core, _ = make_core(postgres_url)
    other, _ = make_core(postgres_url)  # another server process, as far as caches go
    seed(core, crm)
    try:
        core.entitlements.max_age = 5.0  # as a fence server sets it
        core.seats.assign(ACME, "memory", [USERS[0]], ADMIN)
        assert core.check(ACME, "memory", USERS[0], "cti").allowed  # cached
        other.seats.unassign(ACME, "memory", [USERS[0]], ADMIN)
        with core.ports.db.read() as uow:
            version = uow.snapshots.version(ACME, "memory")
        assert core.check(ACME, "memory", USERS[0], "cti").allowed  # stale, and trusted
        calls: list[str] = []
        snapshot = core.entitlements.snapshot

        def counted(account: str, product: str, at: object) -> object:
            calls.append(account)
            return snapshot(account, product, at)  # type: ignore[arg-type]

        monkeypatch.setattr(core.entitlements, "snapshot", counted)
        refresher = SnapshotRefresher(core.entitlements, core.now)

        async def burst() -> list[bool]:
            return await asyncio.gather(
                *(refresher.fresh(ACME, "memory", version) for _ in range(30))
            )

        assert asyncio.run(burst()) == [True] * 30
        assert calls == [ACME]  # one refresh for the thirty
        calls.clear()
        decision = core.check(ACME, "memory", USERS[0], "cti")
        assert not decision.allowed and decision.reason.value == "no_seat"
        # A version newer than any snapshot read yet: refreshed again, then trusted.
        other.seats.assign(ACME, "memory", [USERS[0]], ADMIN)
        calls.clear()
        assert asyncio.run(refresher.fresh(ACME, "memory", version + 1))
        assert calls == [ACME]
        assert core.check(ACME, "memory", USERS[0], "cti").allowed
        assert not asyncio.run(refresher.fresh("nobody", "memory", -1))
    finally:
        other.close()
        core.close()
