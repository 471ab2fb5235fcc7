"""How far a cached snapshot is behind a sync's writes told by notifications (``notify``
freshness, issue 15): counted from the first write told after its read, so a snapshot read in a
quiet spell does not make the checks wait at a sync's first batch, and never less than it is."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from seatgate.core.bootstrap import App
from seatgate.core.entrypoints.http.refresh import SnapshotRefresher
from seatgate.core.testing.memory import MemorySandbox

from .conftest import ACME, USERS, make_core, seed

PRODUCT = "salesforce"  # contracted by seed(), not installed: nothing syncs it


def _core(tmp_path: Path, crm: MemorySandbox, now: list[float]) -> App:
    core, _ = make_core(f"sqlite:///{tmp_path}/lag.db")
    seed(core, crm)
    core.entitlements.max_age = 1e9  # trusted but for what the test tells it
    core.entitlements._monotonic = lambda: now[0]
    assert core.check(ACME, PRODUCT, USERS[0], "cti").reason == "no_seat"  # cached
    return core


def test_a_snapshot_read_long_before_a_syncs_first_write_answers_at_once(
    tmp_path: Path, crm: MemorySandbox
) -> None:
    """Read, then an hour of quiet, then a sync's first batch is told: the checks answer from the
    snapshot without waiting (behind by 0 s, not by the hour), start a refresh in the background
    only at half the lag after the note, and wait for one only at the lag after it."""
    now = [1000.0]
    core = _core(tmp_path, crm, now)
    ents = core.entitlements
    started: list[str] = []
    refresher = SnapshotRefresher(ents, core.now, sync_lag=2.0, on_refresh=started.append)

    async def fresh() -> bool:
        try:
            return await refresher.fresh(ACME, PRODUCT, None)
        finally:
            await refresher.idle()

    try:
        now[0] += 3600
        ents.lagged(ACME)
        assert ents.behind(ACME, PRODUCT) == 0.0
        assert asyncio.run(fresh()) and started == []
        now[0] += 0.9
        ents.lagged(ACME)  # a later batch does not move how far behind it is
        assert asyncio.run(fresh()) and started == []
        assert ents.behind(ACME, PRODUCT) == pytest.approx(0.9)
        now[0] += 0.2  # past half the lag after the first note: a refresh in the background
        assert asyncio.run(fresh()) and started == ["background"]
        assert ents.behind(ACME, PRODUCT) is None  # read after both notes
        now[0] += 5.0
        ents.lagged(ACME)
        now[0] += 2.0  # the lag after the note: this check waits for a refresh
        assert asyncio.run(fresh()) and started == ["background", "awaited"]
    finally:
        core.close()


def test_behind_counts_from_the_first_note_after_the_read_and_never_less(
    tmp_path: Path, crm: MemorySandbox
) -> None:
    """The kind, over any interleaving of reads and notes: ``behind`` is None exactly when no note
    came at or after the snapshot's read, and otherwise the time since the first such note (the
    oldest write it may miss), never the read's age."""
    now = [1000.0]
    core = _core(tmp_path, crm, now)
    ents = core.entitlements
    step = st.tuples(st.sampled_from(["note", "read", "quiet"]), st.sampled_from([0.0, 0.01, 0.5]))

    @settings(max_examples=60, deadline=None)
    @given(st.lists(step, max_size=60))
    def run(steps: list[tuple[str, float]]) -> None:
        now[0] += 10_000  # every earlier example's notes are before this one's first read
        ents.snapshot(ACME, PRODUCT, core.now(), reread=True)
        read, told = now[0], []
        for kind, pause in steps:
            now[0] += pause
            if kind == "note":
                ents.lagged(ACME)
                told.append(now[0])
            elif kind == "read":
                ents.snapshot(ACME, PRODUCT, core.now(), reread=True)
                read = now[0]
            since = [t for t in told if t >= read]  # one told at the read's start counts
            got = ents.behind(ACME, PRODUCT)
            if not since:
                assert got is None
                continue
            assert got is not None
            assert got == now[0] - since[0]

    try:
        run()
    finally:
        core.close()


def test_a_note_told_while_a_snapshot_is_read_leaves_it_behind_from_the_reads_start(
    tmp_path: Path, crm: MemorySandbox
) -> None:
    """A note that arrives during a refresh may be of a commit the refresh did not see: the
    snapshot it stores is behind from the read's start, not up to date."""
    now = [1000.0]
    core = _core(tmp_path, crm, now)
    ents = core.entitlements
    now[0] += 1.0
    ents.lagged(ACME)
    now[0] += 1.0
    told: list[bool] = []

    def note_during_the_read(*_: object) -> None:
        if not told:
            told.append(True)
            now[0] += 0.01
            ents.lagged(ACME)

    sa.event.listen(core.db.engine, "before_cursor_execute", note_during_the_read)
    try:
        ents.snapshot(ACME, PRODUCT, core.now(), reread=True)  # starts at 1002.0
    finally:
        sa.event.remove(core.db.engine, "before_cursor_execute", note_during_the_read)
        core.close()
    assert told
    now[0] += 0.1
    assert ents.behind(ACME, PRODUCT) == pytest.approx(0.11)
