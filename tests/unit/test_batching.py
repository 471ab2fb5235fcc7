"""Write transactions sized by the time they take (services/batching.py): the slices cover every
user once, in order, whatever the database's speed; each batch is sized for the target time, grows
at most twice per batch, shrinks at once, and stays within its bounds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seatgate.core.services.batching import (
    GROWTH,
    MAX_SIZE,
    SHARED_MAX_SIZE,
    SHARED_TARGET_SECONDS,
    TARGET_SECONDS,
    BatchSizer,
    sizer,
)


class FakeClock:
    """A monotonic clock the test moves: each batch's handler adds its own duration."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run(sizer: BatchSizer, clock: FakeClock, total: int, per_user: float) -> list[int]:
    sizes = []
    for part in sizer.slices(total):
        n = len(range(total)[part])
        sizes.append(n)
        clock.now += n * per_user
    return sizes


def test_a_fast_database_gets_larger_batches_growing_at_most_twice_each() -> None:
    clock = FakeClock()
    sizer = BatchSizer(250, clock=clock)
    sizes = run(sizer, clock, 100_000, per_user=10e-6)  # 250 users: 2.5 ms
    assert sizes[:3] == [250, 500, 1000]
    assert max(sizes) == MAX_SIZE == 1000  # 50 ms would be 5,000 users: bounded
    assert sum(sizes) == 100_000


def test_a_slow_batch_shrinks_the_next_to_the_target_at_once() -> None:
    clock = FakeClock()
    sizer = BatchSizer(1000, clock=clock)
    sizes = run(sizer, clock, 3000, per_user=0.5e-3)  # 1,000 users: 500 ms
    assert sizes[:2] == [1000, round(TARGET_SECONDS / 0.5e-3)]  # 100 users: 50 ms


def test_the_size_settles_where_a_transaction_lasts_the_target() -> None:
    clock = FakeClock()
    sizer = BatchSizer(250, clock=clock)
    per_user = 80e-6  # 625 users in 50 ms
    sizes = run(sizer, clock, 50_000, per_user)
    assert sizes[-2] == pytest.approx(TARGET_SECONDS / per_user, abs=1)


def test_a_size_or_target_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        BatchSizer(0)
    with pytest.raises(ValueError, match="must be positive"):
        BatchSizer(10, target=0)


@given(
    total=st.integers(min_value=0, max_value=20_000),
    start=st.integers(min_value=1, max_value=5000),
    durations=st.lists(st.floats(min_value=0, max_value=5), min_size=1, max_size=50),
)
def test_slices_cover_every_user_once_in_order_within_bounds(
    total: int, start: int, durations: list[float]
) -> None:
    clock = FakeClock()
    sizer = BatchSizer(start, clock=clock)
    covered: list[int] = []
    previous = min(start, MAX_SIZE)
    for i, part in enumerate(sizer.slices(total)):
        users = list(range(total)[part])
        assert users, "no empty batch"
        assert len(users) <= MAX_SIZE
        assert sizer.size <= previous * GROWTH + 1  # grows at most twice per batch
        previous = sizer.size
        covered += users
        clock.now += durations[i % len(durations)]
    assert covered == list(range(total))
    assert 1 <= sizer.size <= MAX_SIZE


@given(
    fixed=st.floats(min_value=0, max_value=1),
    per_user=st.floats(min_value=0, max_value=1e-3),
    total=st.integers(min_value=0, max_value=30_000),
)
def test_with_a_minimum_no_batch_but_the_last_is_smaller_whatever_the_cost(
    fixed: float, per_user: float, total: int
) -> None:
    """A batch's cost may hold a part that does not grow with it (a count, a commit): a sizer
    with a minimum never answers a slow batch with more, smaller ones below it."""
    clock = FakeClock()
    sizer = BatchSizer(250, minimum=250, clock=clock)
    sizes = []
    for part in sizer.slices(total):
        n = len(range(total)[part])
        sizes.append(n)
        clock.now += fixed + n * per_user
    assert sum(sizes) == total
    assert all(n >= 250 for n in sizes[:-1])
    assert len(sizes) <= -(-total // 250)  # never more batches than fixed batches of 250


@pytest.mark.parametrize(
    ("one_writer", "target", "largest"),
    [(True, TARGET_SECONDS, MAX_SIZE), (False, SHARED_TARGET_SECONDS, SHARED_MAX_SIZE)],
)
def test_a_sync_sizes_its_batches_by_who_waits_for_them(
    one_writer: bool, target: float, largest: int
) -> None:
    """SQLite (one writer: every writer waits for the batch) keeps batches near 50 ms and at most
    1,000 users; PostgreSQL (only writers of the same rows wait) lets them last 250 ms, up to
    5,000 users: fewer commits, version bumps, seat counts and events for the same users."""
    clock = FakeClock()
    batches = sizer(250, one_writer=one_writer)
    batches.clock = clock
    per_user = 20e-6  # 50 ms is 2,500 users, 250 ms 12,500: the bound decides
    sizes = run(batches, clock, 100_000, per_user)
    assert max(sizes) == largest
    slow = sizer(250, one_writer=one_writer)
    slow.clock = clock
    sizes = run(slow, clock, 20_000, 200e-6)  # 50 ms is 250 users, 250 ms 1,250
    assert sizes[-2] == pytest.approx(target / 200e-6, abs=1)
    assert min(sizes[:-1]) >= 250


@given(
    one_writer=st.booleans(),
    total=st.integers(min_value=0, max_value=30_000),
    durations=st.lists(st.floats(min_value=0, max_value=5), min_size=1, max_size=50),
)
def test_a_syncs_batches_cover_every_user_once_within_the_databases_bounds(
    one_writer: bool, total: int, durations: list[float]
) -> None:
    clock = FakeClock()
    batches = sizer(250, one_writer=one_writer)
    batches.clock = clock
    largest = MAX_SIZE if one_writer else SHARED_MAX_SIZE
    covered: list[int] = []
    for i, part in enumerate(batches.slices(total)):
        users = list(range(total)[part])
        assert users and len(users) <= largest
        covered += users
        clock.now += durations[i % len(durations)]
    assert covered == list(range(total))
