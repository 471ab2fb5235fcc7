"""Retry-After, as every adapter reads it (core.retry.parse_retry_after)."""

from __future__ import annotations

import datetime as dt
import email.utils

import pytest

from seatgate.core.plugins import parse_retry_after


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("30", 30.0), ("0", 0.0), ("1.5", 1.5), ("-4", 0.0), (None, None), ("", None)],
)
def test_delta_seconds(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_an_http_date_is_the_wait_until_then() -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=120)
    wait = parse_retry_after(email.utils.format_datetime(later, usegmt=True))
    assert wait is not None and 100 < wait <= 120


def test_a_date_in_the_past_means_now() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_garbage_is_ignored_so_the_backoff_applies() -> None:
    assert parse_retry_after("soon, please") is None
