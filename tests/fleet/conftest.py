"""Fixtures of the fleet tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from seatgate.core.plugins.throttle import (
    LocalThrottleStore,
    RedisThrottleStore,
    ThrottleStore,
    use_throttle_store,
)


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest) -> Iterator[ThrottleStore]:
    """The throttle store every client of the process shares, in-process and on Redis (a key
    prefix of the test's own)."""
    made: ThrottleStore
    if request.param == "local":
        made = LocalThrottleStore()
    else:
        url = request.getfixturevalue("redis_url")
        made = RedisThrottleStore(url, prefix=request.getfixturevalue("redis_prefix"))
    use_throttle_store(made)
    yield made
    use_throttle_store(None)
    if isinstance(made, RedisThrottleStore):
        made.close()
