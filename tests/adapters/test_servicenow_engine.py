"""ServiceNow through the sync engine: the connector's activated roles decide which grants the
adapter reads (none when no role is activated), and auto install seats the holders."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from seatgate.adapters.servicenow.sandbox import ServiceNowSandbox
from seatgate.core.app import App
from seatgate.core.installs import install
from seatgate.core.sync import full_sync, seated_emails
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
    install(app, "acme", "servicenow", config, ADMIN)


def test_without_activated_roles_a_sync_reads_only_the_user_pages(
    app: App, sandbox: ServiceNowSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed(app, sandbox, monkeypatch)
    before = sandbox.requests
    summary = full_sync(app, "acme", "servicenow")
    assert summary.pulled == 30 and summary.seated == 0
    assert sandbox.requests - before == 3  # 30 users at 10 a page, not one grant read


def test_activated_roles_are_read_and_their_holders_seated(
    app: App, sandbox: ServiceNowSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed(app, sandbox, monkeypatch, activated_roles=["itil"])
    summary = full_sync(app, "acme", "servicenow")
    holders = sorted(u.email for u in sandbox.store.users if "itil" in u.roles)
    assert 0 < len(holders) < 30
    assert summary.seated == len(holders)
    with app.db.read() as conn:
        assert sorted(seated_emails(conn, "acme", "servicenow")) == holders
