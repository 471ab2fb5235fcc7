"""The shared throttle on the adapters built on their vendors' client libraries (issue 17):
Salesforce (simple-salesforce), ServiceNow (pysnow) and HubSpot (hubspot-api-client), each against
its real sandbox over HTTP. A Retry-After or a spent quota one run is given holds back every other
run on the same CRM instance -- nothing reaches the CRM, and the held-back request is not counted
as one -- in one process (the local store) and through Redis; another instance is not held."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seatgate.adapters.hubspot import plugin as hubspot
from seatgate.adapters.hubspot.adapter import CONFIG_SCHEMA as HUBSPOT_SCHEMA
from seatgate.adapters.hubspot.sandbox import HubSpotSandbox
from seatgate.adapters.salesforce import plugin as salesforce
from seatgate.adapters.salesforce.adapter import CONFIG_SCHEMA as SALESFORCE_SCHEMA
from seatgate.adapters.salesforce.sandbox import SalesforceSandbox
from seatgate.adapters.servicenow import plugin as servicenow
from seatgate.adapters.servicenow.adapter import CONFIG_SCHEMA as SERVICENOW_SCHEMA
from seatgate.adapters.servicenow.sandbox import ServiceNowSandbox
from seatgate.core.errors import QuotaExhausted
from seatgate.core.plugins import RequestContext, RetryPolicy, Sandbox
from seatgate.core.plugins.throttle import (
    HeldQuota,
    HeldRateLimited,
    InstanceThrottle,
    LocalThrottleStore,
    ThrottleStore,
)

USERS = 240
PAGE = 60  # four pages a pull: the fault lands mid-pull
WAIT = 40  # the Retry-After the sandboxes ask for (never slept: the policy's sleep is recorded)


class Case:
    """One adapter: how to make its sandbox and its settings, and how to run one full pull."""

    def __init__(
        self,
        product: str,
        plugin: Any,
        schema: Any,
        make: Callable[[], Sandbox],
        settings: Callable[[Any], dict[str, Any]],
        **hook: Any,
    ) -> None:
        self.product, self.plugin, self.schema = product, plugin, schema
        self.make, self.settings_of = make, settings
        self.hook = hook  # further arguments of the adapter's seatgate_pull_users

    def sandbox(self) -> Sandbox:
        sb = self.make()
        sb.page_size = PAGE  # type: ignore[attr-defined]  # every one of these has the knob
        sb.retry_after = WAIT  # type: ignore[attr-defined]
        return sb

    def pull(self, sb: Sandbox, ctx: RequestContext) -> int:
        settings = self.schema.validate(self.settings_of(sb))
        pages = self.plugin.seatgate_pull_users(
            product=self.product, settings=settings, since=None, ctx=ctx, **self.hook
        )
        with contextlib.closing(pages):
            return sum(len(page.users) for page in pages)


CASES = {
    # A session id: no login request, so the fault meets the org's REST API.
    "salesforce": Case(
        "salesforce",
        salesforce,
        SALESFORCE_SCHEMA,
        lambda: SalesforceSandbox(USERS),
        lambda sb: sb.settings(auth="session"),
    ),
    # OAuth: the token request passes the throttle too.
    "servicenow": Case(
        "servicenow",
        servicenow,
        SERVICENOW_SCHEMA,
        lambda: ServiceNowSandbox(USERS),
        lambda sb: sb.settings(),
        activated_roles=frozenset(),
    ),
    "hubspot": Case(
        "hubspot", hubspot, HUBSPOT_SCHEMA, lambda: HubSpotSandbox(USERS), lambda sb: sb.settings()
    ),
}


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> Case:
    return CASES[request.param]


def ctx_recording(sleeps: list[float], attempts: int = 3) -> RequestContext:
    return RequestContext(policy=RetryPolicy(attempts=attempts, sleep=sleeps.append))


def test_a_retry_after_pauses_the_other_runs_on_the_instance(
    case: Case, store: ThrottleStore
) -> None:
    with case.sandbox() as sb, case.sandbox() as elsewhere:
        # The run told to wait waits once (its policy), then finishes the pull: not twice.
        told_sleeps: list[float] = []
        told = ctx_recording(told_sleeps)
        sb.inject("rate_limit")
        assert case.pull(sb, told) == USERS
        assert told_sleeps == [WAIT]
        # Another run on the same instance sends nothing while the pause lasts...
        seen = sb.requests
        other_sleeps: list[float] = []
        other = ctx_recording(other_sleeps, attempts=1)
        with pytest.raises(HeldRateLimited) as held:
            case.pull(sb, other)
        assert sb.requests == seen
        assert WAIT - 10 < (held.value.retry_after or 0) <= WAIT
        # ...and a request held back is not one in the run's statistics.
        assert other.requests == 0
        # Another instance is not paused.
        assert case.pull(elsewhere, ctx_recording([])) == USERS


def test_a_held_back_run_waits_the_time_left_counting_a_retry_not_a_request(
    case: Case, store: ThrottleStore
) -> None:
    with case.sandbox() as sb:
        sb.inject("rate_limit")
        assert case.pull(sb, ctx_recording([])) == USERS
        seen = sb.requests
        sleeps: list[float] = []
        other = ctx_recording(sleeps, attempts=2)
        # The policy's sleep is recorded, not slept: the pause is still on at the second attempt.
        with pytest.raises(HeldRateLimited):
            case.pull(sb, other)
        assert len(sleeps) == 1 and WAIT - 10 < sleeps[0] <= WAIT
        assert (other.requests, other.retries) == (0, 1)
        assert sb.requests == seen


def test_a_spent_quota_ends_the_other_runs_at_once(case: Case, store: ThrottleStore) -> None:
    with case.sandbox() as sb:
        told = ctx_recording([])
        sb.inject("quota")
        with pytest.raises(QuotaExhausted):
            case.pull(sb, told)
        seen = sb.requests
        other = ctx_recording([])
        with pytest.raises(HeldQuota, match="paused"):
            case.pull(sb, other)
        assert sb.requests == seen
        assert other.requests == 0 and other.retries == 0


# -- the rule, of the kind: the client that set the pause in force goes on, every other is held --


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(100, 5000)), min_size=1, max_size=8))
def test_only_the_client_that_set_the_pause_in_force_goes_on(pauses: list[tuple[int, int]]) -> None:
    store = LocalThrottleStore()
    url = "https://crm.example/users"

    def told(status: int, headers: Any, body: Any) -> float:
        return float(headers["wait"])

    clients = [InstanceThrottle("CRM", rule=told, max_wait=10_000, store=store) for _ in range(3)]
    for who, seconds in pauses:
        assert clients[who].after(url, 429, {"wait": str(seconds)}, lambda: b"") == seconds
    # Deadlines are "now + seconds", set one after another: the longest wait is in force, the
    # latest of equal ones.
    winner = max(range(len(pauses)), key=lambda j: (pauses[j][1], j))
    for i, client in enumerate(clients):
        if i == pauses[winner][0]:
            client.before(url)
        else:
            with pytest.raises(HeldRateLimited):
                client.before(url)
