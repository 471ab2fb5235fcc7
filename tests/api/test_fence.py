"""The version fence: every waiting check is answered by one query that started after it
arrived; a burst of checks costs a few queries, not one each."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from seatgate.core.bootstrap import App
from seatgate.core.entrypoints.http.refresh import SnapshotRefresher
from seatgate.core.storage.fence import NONE, VersionFence
from seatgate.core.testing.memory import MemorySandbox

from .conftest import ACME, ADMIN, USERS, listen, make_core, seed, settle


def read_versions(core: App) -> tuple[int, int]:
    """The (entitlement, strict) versions of acme's memory contract, read by a fence."""

    async def read() -> tuple[int, int]:
        fence = VersionFence(core.db, timeout=10)
        try:
            return await fence.version(ACME, "memory")
        finally:
            await fence.close()

    return asyncio.run(read())


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
                assert before[0] == uow.snapshots.version(ACME, "memory") >= 0
            got = await asyncio.gather(*(fence.version(ACME, "memory") for _ in range(200)))
            assert set(got) == {before}
            assert fence.queries < 20  # one per batch, not one per check
            core.seats.assign(ACME, "memory", [USERS[0]], ADMIN)  # committed before the call
            # A person's seat change moves both versions.
            assert await fence.version(ACME, "memory") == (before[0] + 1, before[1] + 1)
            assert await fence.version(ACME, "nosuch") == NONE
            assert await fence.version("nobody", "memory") == NONE
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
    core, _ = make_core(postgres_url)
    other, _ = make_core(postgres_url)  # another server process, as far as caches go
    seed(core, crm)
    try:
        core.entitlements.max_age = 5.0  # as a fence server sets it
        core.seats.assign(ACME, "memory", [USERS[0]], ADMIN)
        assert core.check(ACME, "memory", USERS[0], "cti").allowed  # cached
        other.seats.unassign(ACME, "memory", [USERS[0]], ADMIN)
        version = read_versions(core)
        entitlement, strict = version
        assert core.check(ACME, "memory", USERS[0], "cti").allowed  # stale, and trusted
        calls: list[str] = []
        snapshot = core.entitlements.snapshot

        def counted(account: str, product: str, at: object, **kw: bool) -> object:
            calls.append(account)
            return snapshot(account, product, at, **kw)  # type: ignore[arg-type]

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
        assert asyncio.run(refresher.fresh(ACME, "memory", (entitlement + 1, strict + 1)))
        assert calls == [ACME]
        assert core.check(ACME, "memory", USERS[0], "cti").allowed
        assert not asyncio.run(refresher.fresh("nobody", "memory", NONE))
    finally:
        other.close()
        core.close()


def reason(core: App, email: str) -> str:
    return str(core.check(ACME, "memory", email, "cti").reason)


def _lags_then_catches_up(
    now: list[float],
    fresh: Callable[[], Coroutine[Any, Any, bool]],
    refresher: SnapshotRefresher,
    reason: Callable[[], str],
) -> None:
    """A seated user just written inactive by a sync (the snapshot of the sync lag's 2 s read
    at ``now``): the checks answer from the snapshot, starting a refresh only past half the lag,
    which then answers the change."""
    now[0] += 0.5  # younger than half the lag: answered from the snapshot, nothing started
    assert asyncio.run(fresh())
    assert refresher.background == 0
    assert reason() == "seated"
    now[0] += 0.6  # past half the lag: still answered at once, and a refresh starts
    assert asyncio.run(fresh())
    assert refresher.background == 1


@pytest.mark.postgres
def test_checks_lag_a_syncs_writes_by_at_most_the_sync_lag_and_never_a_persons_seat_change(
    postgres_url: str, crm: MemorySandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15 during a sync: a sync's writes move the entitlement version only, so a check
    answers from its snapshot while it is less than ``sync_lag`` old, a refresh starting in the
    background from half that age; past the lag it waits for one. A person's unassign moves the
    strict version too: the next check waits for a refresh and denies."""
    core, _ = make_core(postgres_url)
    other, _ = make_core(postgres_url)  # another server process, and the process that syncs
    seed(core, crm)
    now = [1000.0]
    monkeypatch.setattr(core.entitlements, "_monotonic", lambda: now[0])
    try:
        core.entitlements.max_age = 5.0
        other.sync.sync(ACME, "memory")
        person = crm.store.users[0]
        other.seats.assign(ACME, "memory", [person.email], ADMIN)
        started: list[str] = []  # what the server's metrics count
        refresher = SnapshotRefresher(
            core.entitlements, core.now, sync_lag=2.0, on_refresh=started.append
        )

        async def fresh() -> bool:
            fence = VersionFence(core.db, timeout=10)
            try:
                return await refresher.fresh(ACME, "memory", await fence.version(ACME, "memory"))
            finally:
                await refresher.idle()  # (a refresh started in the background has ended)
                await fence.close()

        assert asyncio.run(fresh())  # read now
        assert core.check(ACME, "memory", person.email, "cti").reason == "seated"
        crm.store.deactivate([person.number])
        other.sync.sync(ACME, "memory", full=True)  # writes the user inactive: a sync's write
        _lags_then_catches_up(now, fresh, refresher, lambda: reason(core, person.email))
        assert core.check(ACME, "memory", person.email, "cti").reason == "user_inactive"

        crm.store.change([person.number], active=True)
        other.sync.sync(ACME, "memory", full=True)
        now[0] += 2.0  # as old as the lag: this check waits for the refresh
        assert asyncio.run(fresh())
        assert refresher.background == 1
        assert core.check(ACME, "memory", person.email, "cti").reason == "seated"

        now[0] += 10.0  # a quiet spell: the snapshot found current by the fence all along
        assert asyncio.run(fresh())
        before = read_versions(core)
        crm.store.grant([person.number], ["Supervisor"])
        other.sync.sync(ACME, "memory", full=True)  # a sync's write right after it
        after = read_versions(core)
        assert after[0] > before[0] and after[1] == before[1]  # the sync's alone
        assert asyncio.run(fresh())  # answered at once: found current is as good as read

        other.seats.unassign(ACME, "memory", [person.email], ADMIN)  # a person's: never lagged
        assert asyncio.run(fresh())
        assert core.check(ACME, "memory", person.email, "cti").reason == "no_seat"
        assert started == ["awaited", "background", "awaited", "awaited"]
    finally:
        other.close()
        core.close()


@pytest.mark.postgres
def test_a_syncs_writes_are_told_as_lagged_and_everything_else_as_a_change(
    postgres_url: str, crm: MemorySandbox
) -> None:
    """Migration access_0002: a contract update that moves ``entitlement_version`` alone (a
    sync's writes) is told ``l:<account>``; one that moves the strict version (a person's seat
    change), changes any other column, or inserts a contract is told ``e:<account>``."""
    core, _ = make_core(postgres_url)
    other, _ = make_core(postgres_url)
    seed(core, crm)
    told, feed = listen(core)
    try:
        settle(told)
        told.clear()
        crm.store.deactivate([crm.store.users[1].number])
        other.sync.sync(ACME, "memory", full=True)  # a sync's writes alone
        notes = settle(told)
        assert notes and set(notes) == {f"l:{ACME}"}
        told.clear()
        other.seats.assign(ACME, "memory", [crm.store.users[0].email], ADMIN)  # a person's
        notes = settle(told)
        assert notes and f"e:{ACME}" in notes and f"l:{ACME}" not in notes
        told.clear()
        with other.db.engine.begin() as conn:  # another column than the sync's version
            conn.exec_driver_sql(
                "UPDATE contracts SET entitlement_version = entitlement_version + 1, "
                "quantity = quantity + 1 WHERE product = 'memory' AND account_id = "
                "(SELECT id FROM accounts WHERE name = 'acme')"
            )
        assert settle(told) == [f"e:{ACME}"]
    finally:
        feed.stop()
        other.close()
        core.close()


@pytest.mark.postgres
def test_with_notifications_alone_checks_lag_a_syncs_writes_by_at_most_the_sync_lag(
    postgres_url: str, crm: MemorySandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``notify`` freshness during a sync (issue 15): a sync's writes, told ``l:``, leave the
    cached snapshot trusted for at most ``sync_lag`` seconds after its read — a refresh starts
    in the background from half that age, and past it a check waits for one — while a person's
    unassign, told ``e:``, makes the next check wait for a refresh and deny."""
    core, _ = make_core(postgres_url)
    other, _ = make_core(postgres_url)  # the process that syncs and unassigns
    seed(core, crm)
    now = [1000.0]
    monkeypatch.setattr(core.entitlements, "_monotonic", lambda: now[0])
    ents = core.entitlements
    told, feed = listen(core)
    try:
        ents.max_age = 60.0
        other.sync.sync(ACME, "memory")
        person = crm.store.users[0]
        other.seats.assign(ACME, "memory", [person.email], ADMIN)
        started: list[str] = []
        refresher = SnapshotRefresher(ents, core.now, sync_lag=2.0, on_refresh=started.append)

        def tell(notes: list[str]) -> None:
            """Hand the notes to the service as the server's change feed does."""
            for note in notes:
                kind, account = note.split(":", 1)
                (ents.lagged if kind == "l" else ents.invalidate)(account)

        async def fresh() -> bool:
            try:
                return await refresher.fresh(ACME, "memory", None)
            finally:
                await refresher.idle()

        settle(told)
        told.clear()
        assert asyncio.run(fresh())  # read now
        assert core.check(ACME, "memory", person.email, "cti").reason == "seated"
        now[0] += 0.1
        crm.store.deactivate([person.number])
        other.sync.sync(ACME, "memory", full=True)  # writes the user inactive: a sync's write
        notes = settle(told)
        assert notes and set(notes) == {f"l:{ACME}"}
        tell(notes)
        told.clear()
        assert ents.behind(ACME, "memory") == pytest.approx(0.0)  # from the note, not the read
        _lags_then_catches_up(now, fresh, refresher, lambda: reason(core, person.email))
        assert ents.behind(ACME, "memory") is None  # read after the note
        assert core.check(ACME, "memory", person.email, "cti").reason == "user_inactive"

        now[0] += 0.1
        crm.store.change([person.number], active=True)
        other.sync.sync(ACME, "memory", full=True)
        tell(settle(told))
        told.clear()
        now[0] += 2.0  # as old as the lag: this check waits for the refresh
        assert asyncio.run(fresh())
        assert refresher.background == 1
        assert core.check(ACME, "memory", person.email, "cti").reason == "seated"

        now[0] += 0.1
        other.seats.unassign(ACME, "memory", [person.email], ADMIN)  # a person's: never lagged
        tell(settle(told))
        assert asyncio.run(fresh())
        assert core.check(ACME, "memory", person.email, "cti").reason == "no_seat"
        assert started == ["awaited", "background", "awaited", "awaited"]
    finally:
        feed.stop()
        other.close()
        core.close()
