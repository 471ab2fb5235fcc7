"""ServiceNow through the sync engine: the connector's activated roles decide which grants the
adapter reads (none when no role is activated), and auto install seats the holders."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from seatgate.adapters.servicenow.sandbox import ServiceNowSandbox
from seatgate.core.bootstrap import App
from seatgate.core.testing.setup import account_with_contract

ADMIN = "admin@example.com"


@pytest.fixture
def sandbox() -> Iterator[ServiceNowSandbox]:
    with ServiceNowSandbox(30) as sb:
        yield sb


def installed(
    app: App, sb: ServiceNowSandbox, monkeypatch: pytest.MonkeyPatch, **core: object
) -> None:
    raw = sb.basic_settings()
    monkeypatch.setenv("SN_TEST_PASSWORD", raw["password"])
    config = {**raw, "password": "${SN_TEST_PASSWORD}", "page_size": 10, **core}
    account_with_contract(app, "acme", "servicenow", admin=ADMIN, seats=100)
    app.installs.install("acme", "servicenow", config, ADMIN)


def test_without_activated_roles_a_sync_reads_only_the_user_pages(
    app: App, sandbox: ServiceNowSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed(app, sandbox, monkeypatch)
    before = sandbox.requests
    summary = app.sync.full_sync("acme", "servicenow")
    assert summary.pulled == 30 and summary.seated == 0
    assert sandbox.requests - before == 3  # 30 users at 10 a page, not one grant read


def test_activated_roles_are_read_and_their_holders_seated(
    app: App, sandbox: ServiceNowSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed(app, sandbox, monkeypatch, activated_roles=["itil"])
    summary = app.sync.full_sync("acme", "servicenow")
    holders = sorted(u.email for u in sandbox.store.users if "itil" in u.roles)
    assert 0 < len(holders) < 30
    assert summary.seated == len(holders)
    assert sorted(app.seats.seated_emails("acme", "servicenow")) == holders


def test_a_role_granted_apart_from_the_user_is_seated_by_the_next_incremental_sync(
    app: App, sandbox: ServiceNowSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed(app, sandbox, monkeypatch, activated_roles=["itil"])
    app.sync.full_sync("acme", "servicenow")
    newcomer = next(u for u in sandbox.store.users if "itil" not in u.roles)
    sandbox.store.grant([newcomer.number], ["itil"])  # sys_user_has_role only
    app.clock.advance(hours=1)  # type: ignore[attr-defined]
    summary = app.sync.sync("acme", "servicenow").summary
    # Pulled: the lookback window before the cursor (LOOKBACK_SECONDS = 120 s): the 30 users,
    # stamped a second apart, and the grant; only the newcomer changes.
    assert summary.full is False and summary.pulled == 30 and summary.seated == 1
    assert summary.updated == 1
    assert newcomer.email in app.seats.seated_emails("acme", "servicenow")
    app.clock.advance(hours=1)  # type: ignore[attr-defined]
    again = app.sync.sync("acme", "servicenow").summary
    # Re-reading what was applied changes nothing.
    assert (again.seated, again.updated, again.created) == (0, 0, 0)
