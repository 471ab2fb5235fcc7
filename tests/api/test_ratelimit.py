"""The per-token bucket: never more than its burst plus its rate over any stretch of time, and a
refusal's wait is exactly when the next request is allowed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seatgate.core.entrypoints.http.ratelimit import RateLimiter, parse_rate
from seatgate.core.errors import BadInput


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@given(
    count=st.integers(1, 50),
    period=st.sampled_from(["second", "minute"]),
    gaps=st.lists(st.floats(0, 5, allow_nan=False), min_size=1, max_size=300),
)
def test_allowed_requests_never_exceed_burst_plus_rate(
    count: int, period: str, gaps: list[float]
) -> None:
    clock = Clock()
    limiter = RateLimiter(f"{count}/{period}", clock)
    allowed: list[float] = []
    for gap in gaps:
        clock.now += gap
        if limiter.hit("tok") == 0.0:
            allowed.append(clock.now)
    per_second = count / {"second": 1.0, "minute": 60.0}[period]
    for i, start in enumerate(allowed):
        for j in range(i, len(allowed)):
            assert j - i + 1 <= count + (allowed[j] - start) * per_second + 1e-6


@given(count=st.integers(1, 20), extra=st.integers(1, 20))
def test_the_wait_of_a_refusal_is_when_the_next_request_passes(count: int, extra: int) -> None:
    clock = Clock()
    limiter = RateLimiter(f"{count}/second", clock)
    assert all(limiter.hit("tok") == 0.0 for _ in range(count))
    for _ in range(extra):
        wait = limiter.hit("tok")
        assert wait > 0
        clock.now += wait
        assert limiter.hit("tok") == 0.0
    assert limiter.hit("other") == 0.0  # buckets are per key


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert RateLimiter.retry_after(0.01) == "1"
    assert RateLimiter.retry_after(1.2) == "2"
    assert RateLimiter.retry_after(30.0) == "30"


@pytest.mark.parametrize("text", ["", "fast", "0/second", "10/fortnight", "-1/second"])
def test_bad_rates_are_refused(text: str) -> None:
    with pytest.raises(BadInput) as exc:
        parse_rate(text)
    assert exc.value.field == "rate limit"


def test_rates_read() -> None:
    assert parse_rate("1000/second") == (1000, 1.0)
    assert parse_rate("3 per minute") == (3, 60.0)
    assert parse_rate("5/hours") == (5, 3600.0)
