"""A real sync against a CRM sandbox over HTTP: the ServiceNow adapter (pysnow) and its Table API
sandbox, through install, a full sync, an incremental one with a throttled page, and deactivation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from seatgate.adapters.servicenow.sandbox import ServiceNowSandbox
from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock
from seatgate.core.plugins import RetryPolicy
from seatgate.core.plugins.manager import build_plugin_manager
from seatgate.core.plugins.throttle import use_throttle_store
from seatgate.core.storage.tables import integration_users

from .conftest import ACCOUNT, ADMIN, Sleeps, setup_account

P = "servicenow"


@pytest.fixture
def sandbox() -> Iterator[ServiceNowSandbox]:
    with ServiceNowSandbox(25) as sb:
        sb.max_page = 10  # three pages
        yield sb


def test_servicenow_sync_over_http(
    sandbox: ServiceNowSandbox,
    sqlite_url: str,
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
    sleeps: Sleeps,
) -> None:
    plugins = build_plugin_manager(
        builtins=("seatgate.adapters.servicenow",), entry_points=False, strict=True
    )
    app = App(sqlite_url, clock=clock, plugins=plugins)
    raw = sandbox.settings()
    monkeypatch.setenv("SN_PASSWORD", raw["password"])
    monkeypatch.setenv("SN_CLIENT_SECRET", raw["client_secret"])
    config = {
        **raw,
        "password": "${SN_PASSWORD}",
        "client_secret": "${SN_CLIENT_SECRET}",
    }
    setup_account(app, seats=100, product=P)
    retry = RetryPolicy(attempts=3, sleep=sleeps)
    app.installs.install(ACCOUNT, P, config, ADMIN, retry=retry)
    assert ACCOUNT in sandbox.installations

    first = app.sync.sync(ACCOUNT, P, retry=retry)
    assert first.outcome == "succeeded", first.summary.message
    assert (first.summary.pulled, first.summary.created) == (25, 25)
    assert first.summary.requests >= 3  # a token, then pages

    sandbox.store.change([2, 3], last_name="Changed")
    sandbox.inject("rate_limit")
    second = app.sync.sync(ACCOUNT, P, retry=retry)
    assert second.outcome == "succeeded" and second.summary.full is False
    assert second.summary.updated == 2 and second.summary.retries == 1 and sleeps

    sandbox.store.deactivate([4])
    # The Retry-After the second run was told of pauses every run on the instance (the shared
    # throttle, in real seconds); the recorded sleep did not let them pass, so lift the pause.
    use_throttle_store(None)
    third = app.sync.sync(ACCOUNT, P, full=True, retry=retry)
    assert third.summary.updated == 1 and third.summary.deactivated == 0
    with app.db.read() as conn:
        inactive = [
            r[0]
            for r in conn.execute(
                sa.select(integration_users.c.email).where(integration_users.c.active.is_(False))
            )
        ]
        directory = {a["email"]: a["active"] for a in app.sync.agents(ACCOUNT, P)}
    assert inactive == [sandbox.store.by_number[4].email]
    assert directory[sandbox.store.by_number[4].email] is False
    assert sum(directory.values()) == 24
    app.db.dispose()
