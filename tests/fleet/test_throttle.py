"""The shared throttle of a CRM instance (issue 17): a Retry-After one client is given pauses the
other clients of the same instance — in one process (the local store) and across processes (Redis)
— while the client that was told does not wait twice; a spent quota ends the others' runs."""

from __future__ import annotations

import time

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from seatgate.core.errors import QuotaExhausted, RateLimited
from seatgate.core.plugins.kit import HttpClient
from seatgate.core.plugins.retry import RequestContext, RetryPolicy
from seatgate.core.plugins.throttle import (
    RedisThrottleStore,
    ThrottleStore,
    origin,
    use_throttle_store,
)


class Crm:
    """A CRM behind httpx's MockTransport: answers 429 with ``Retry-After`` while ``throttle`` is
    set, 200 otherwise; counts what reached it."""

    def __init__(self) -> None:
        self.seen = 0
        self.throttle: str | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen += 1
        if self.throttle is not None:
            wait, self.throttle = self.throttle, None
            return httpx.Response(429, headers={"Retry-After": wait}, json={"detail": "slow down"})
        return httpx.Response(200, json={"ok": True})


def client(crm: Crm, base: str = "https://crm-1.example") -> HttpClient:
    return HttpClient(base, transport=httpx.MockTransport(crm))


def test_a_retry_after_pauses_the_other_clients_of_the_instance(store: ThrottleStore) -> None:
    crm = Crm()
    told, other, elsewhere = client(crm), client(crm), client(crm, "https://crm-2.example")
    crm.throttle = "30"
    sleeps: list[float] = []
    ctx = RequestContext(policy=RetryPolicy(attempts=3, sleep=sleeps.append))
    # The client told to wait waits once (its policy), then goes on: not twice.
    assert told.request(ctx, "GET", "/users").status_code == 200
    assert sleeps == [30.0] and crm.seen == 2
    # Another client of the same instance sends nothing while the pause lasts.
    with pytest.raises(RateLimited) as raised:
        other.send("GET", "/users")
    assert 28 < (raised.value.retry_after or 0) <= 30
    assert crm.seen == 2
    # Another instance is not paused.
    assert elsewhere.send("GET", "/users").status_code == 200


def test_a_pause_longer_than_the_policy_accepts_ends_the_others_runs(store: ThrottleStore) -> None:
    crm = Crm()
    told, other = client(crm), client(crm)
    crm.throttle = "86400"  # a spent daily quota
    with pytest.raises(QuotaExhausted):
        told.send("GET", "/users", max_retry_after=300)
    with pytest.raises(QuotaExhausted, match="paused"):
        other.send("GET", "/users", max_retry_after=300)
    assert crm.seen == 1


def test_a_pause_ends(store: ThrottleStore) -> None:
    store.pause("https://crm-3.example", 0.2)
    assert store.pause_of("https://crm-3.example")[1] > 0
    time.sleep(0.3)  # network time, not a business clock: the pause is real seconds
    assert store.pause_of("https://crm-3.example") == (0.0, 0.0)


def test_a_later_pause_is_kept(store: ThrottleStore) -> None:
    long = store.pause("https://crm-4.example", 60)
    assert store.pause("https://crm-4.example", 1) < long  # the shorter one's own deadline
    assert store.pause_of("https://crm-4.example") == (long, pytest.approx(60, abs=10))


def test_an_unreachable_redis_never_fails_a_request() -> None:
    unreachable = RedisThrottleStore("redis://127.0.0.1:1/0", timeout=0.2)
    use_throttle_store(unreachable)
    try:
        crm = Crm()
        assert client(crm).send("GET", "/users").status_code == 200
        assert "127.0.0.1:1" in repr(unreachable)
    finally:
        use_throttle_store(None)


@given(
    scheme=st.sampled_from(["http", "https"]),
    host=st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z]{2,6}){1,2}", fullmatch=True),
    path=st.sampled_from(["", "/", "/api/v1?x=1"]),
)
def test_an_instance_is_one_origin_with_its_default_port_written_or_not(
    scheme: str, host: str, path: str
) -> None:
    """RFC 6454: ``https://h:443`` is ``https://h`` (one throttle, one tenant), and a host in other
    capitals is the same host; another port or scheme is another origin."""
    default = {"http": 80, "https": 443}[scheme]
    bare = origin(f"{scheme}://{host}{path}")
    assert origin(f"{scheme}://{host}:{default}{path}") == bare == f"{scheme}://{host}"
    assert origin(f"{scheme.upper()}://{host.upper()}{path}") == bare
    assert origin(f"{scheme}://{host}:8443{path}") != bare
    other = "https" if scheme == "http" else "http"
    assert origin(f"{other}://{host}{path}") != bare
