"""Every adapter honours an inclusive ``since`` exactly (issue 12): an incremental pull returns every
user stamped at or after ``since``, at the precision the CRM compares stamps (Salesforce's SOQL and
ServiceNow's ``sys_updated_on``: the second; HubSpot's ``updatedAt``, compared by the adapter: the
millisecond), and none stamped before. A naive ``since`` is UTC, and an offset names the same
instant. The core re-reads its lookback window on this guarantee."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seatgate.adapters.hubspot import adapter as hubspot
from seatgate.adapters.hubspot.sandbox import HubSpotSandbox
from seatgate.adapters.salesforce import adapter as salesforce
from seatgate.adapters.salesforce.sandbox import SalesforceSandbox
from seatgate.adapters.servicenow import adapter as servicenow
from seatgate.adapters.servicenow.sandbox import ServiceNowSandbox
from seatgate.core.plugins import RequestContext, Sandbox

USERS = 12


def _floor_second(instant: dt.datetime) -> dt.datetime:
    return instant.replace(microsecond=0)


def _exact(instant: dt.datetime) -> dt.datetime:
    return instant


# product -> (adapter module, sandbox class, the precision the CRM compares at, extra hook args)
CASES: dict[
    str, tuple[Any, type[Sandbox], Callable[[dt.datetime], dt.datetime], dict[str, Any]]
] = {
    "salesforce": (salesforce, SalesforceSandbox, _floor_second, {}),
    "servicenow": (servicenow, ServiceNowSandbox, _floor_second, {"activated_roles": frozenset()}),
    "hubspot": (hubspot, HubSpotSandbox, _exact, {}),
}


@pytest.fixture(scope="module", autouse=True)
def local_time_is_not_utc() -> Iterator[None]:
    # A naive `since` read as local time would be off by the zone: make the zone show.
    before = os.environ.get("TZ")
    os.environ["TZ"] = "IST-5:30"  # POSIX: UTC+05:30, no zone database needed
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


@pytest.fixture(scope="module", params=sorted(CASES))
def crm(request: pytest.FixtureRequest) -> Iterator[tuple[str, Any, Any]]:
    product: str = request.param
    module, sandbox_class, _, _ = CASES[product]
    with sandbox_class(USERS) as sb:
        # A few users changed, so stamps are not in the order of the users' numbers.
        sb.store.change([2, 7, 5])
        yield product, module, sb


def _pulled(product: str, module: Any, sb: Any, since: dt.datetime) -> set[str]:
    conf = module.CONFIG_SCHEMA.validate(sb.settings(), resolve_env=False)
    pages = module.plugin.seatgate_pull_users(
        product=product, settings=conf, since=since, ctx=RequestContext(), **CASES[product][3]
    )
    return {u.external_id for page in pages for u in page.users}


ZONES = [
    None,
    dt.UTC,
    dt.timezone(dt.timedelta(hours=5, minutes=30)),
    dt.timezone(-dt.timedelta(hours=8)),
]


@settings(max_examples=30, deadline=None)
@given(
    at=st.integers(min_value=-1, max_value=USERS),
    offset_ms=st.integers(min_value=-2500, max_value=2500),
    zone=st.sampled_from(ZONES),
)
def test_an_incremental_pull_returns_exactly_the_users_stamped_at_or_after_since(
    crm: tuple[str, Any, Any], at: int, offset_ms: int, zone: dt.tzinfo | None
) -> None:
    product, module, sb = crm
    stamps = sorted(u.modified_at for u in sb.store.users)
    base = stamps[min(max(at, 0), len(stamps) - 1)]
    since_utc = base + dt.timedelta(milliseconds=offset_ms)
    since = since_utc.replace(tzinfo=None) if zone is None else since_utc.astimezone(zone)
    precision = CASES[product][2]
    expected = {u.id for u in sb.store.users if u.modified_at >= precision(since_utc)}
    assert _pulled(product, module, sb, since) == expected


def test_a_user_stamped_on_since_comes_back(crm: tuple[str, Any, Any]) -> None:
    product, module, sb = crm
    user = sb.store.by_number[7]
    assert user.id in _pulled(product, module, sb, user.modified_at)
    later = user.modified_at + dt.timedelta(seconds=1)
    assert user.id not in _pulled(product, module, sb, later)


def test_each_adapter_declares_its_lookback_window() -> None:
    seconds = {
        product: module.plugin.seatgate_adapter_info().lookback_seconds
        for product, (module, *_) in CASES.items()
    }
    assert seconds == {"salesforce": 600, "servicenow": 120, "hubspot": 900}
