"""Issue 12 item 2: seats, activated roles and the role gain are per product. Two products of one
CRM (Salesforce and Salesforce Voice, one org) on one account: a user already known from the first
product gains the second product's seat when they hold its activated role — the same seats as on an
account with the second product alone. And issue 12 item 3 on a small account: an empty full pull
halts even below the guard's minimum."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from seatgate.adapters.salesforce import plugin as salesforce_plugin
from seatgate.adapters.salesforce.sandbox import SalesforceSandbox
from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock
from seatgate.core.plugins.manager import build_plugin_manager
from seatgate.core.testing.memory import MemorySandbox
from seatgate.core.testing.setup import account_with_contract

from .conftest import ACCOUNT, ADMIN

ROLE = "Agent"  # a user role both products activate: the old engine saw it as already held


@pytest.fixture
def org() -> Iterator[SalesforceSandbox]:
    with SalesforceSandbox(users=60) as sb:
        yield sb


@pytest.fixture
def sf_app(db_url: str, clock: FixedClock) -> Iterator[App]:
    plugins = build_plugin_manager(
        builtins=(), entry_points=False, plugins=[("salesforce", salesforce_plugin)], strict=True
    )
    application = App(db_url, clock=clock, plugins=plugins)
    yield application
    application.db.dispose()


def config(org: SalesforceSandbox, monkeypatch: pytest.MonkeyPatch, **more: Any) -> dict[str, Any]:
    raw = org.settings()
    for key in ("password", "security_token"):
        monkeypatch.setenv(f"SF_TEST_{key.upper()}", raw[key])
        raw[key] = "${SF_TEST_" + key.upper() + "}"
    return {**raw, "activated_roles": [ROLE], **more}


def add_contract(app: App, account: str, product: str) -> None:
    app.contracts.create(
        account,
        product,
        seats=1000,
        plan="standard",
        frequency="monthly",
        start=dt.date(2026, 1, 1),
        months=12,
        unit_price=Decimal("10"),
        mode="hard_cap",
    )


def voice_holders(org: SalesforceSandbox) -> set[str]:
    return {
        u.email
        for u in org.store.users
        if u.active and ROLE in u.roles and org.call_center(u) == org.CALL_CENTER_ID
    }


def test_a_second_product_of_one_crm_seats_its_role_holders(
    sf_app: App, org: SalesforceSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    voice = {"voice_call_centers": [org.CALL_CENTER_ID]}  # odd-numbered users only
    account_with_contract(sf_app, ACCOUNT, "salesforce", admin=ADMIN)
    add_contract(sf_app, ACCOUNT, "salesforce_voice")
    sf_app.installs.install(ACCOUNT, "salesforce", config(org, monkeypatch), ADMIN)
    sf_app.installs.install(ACCOUNT, "salesforce_voice", config(org, monkeypatch, **voice), ADMIN)

    first = sf_app.sync.sync(ACCOUNT, "salesforce").summary
    assert first.outcome == "succeeded" and first.seated > 0
    second = sf_app.sync.sync(ACCOUNT, "salesforce_voice").summary
    expected = voice_holders(org)
    assert 0 < len(expected) < first.seated
    assert second.outcome == "succeeded" and second.created == 0  # every user already known
    assert second.updated == 0  # linked to the voice records, and not changed by them
    assert second.seated == len(expected)
    assert set(sf_app.seats.seated_emails(ACCOUNT, "salesforce_voice")) == expected
    assert second.agents_synced == second.pulled - second.gated  # the gate ran for all

    # The same org on an account with voice alone seats the same people.
    account_with_contract(sf_app, "solo", "salesforce_voice", admin=ADMIN)
    sf_app.installs.install("solo", "salesforce_voice", config(org, monkeypatch, **voice), ADMIN)
    alone = sf_app.sync.sync("solo", "salesforce_voice").summary
    assert alone.seated == second.seated
    assert set(sf_app.seats.seated_emails("solo", "salesforce_voice")) == expected

    # Another run of each changes nothing: neither product's roles count as the other's.
    sf_app.clock.advance(hours=1)  # type: ignore[attr-defined]
    for product in ("salesforce", "salesforce_voice"):
        again = sf_app.sync.sync(ACCOUNT, product, full=True).summary
        assert (again.outcome, again.seated, again.updated) == ("succeeded", 0, 0), product


def test_losing_the_role_in_one_product_keeps_the_others_seat_gain_separate(
    sf_app: App, org: SalesforceSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    account_with_contract(sf_app, ACCOUNT, "salesforce", admin=ADMIN)
    add_contract(sf_app, ACCOUNT, "salesforce_voice")
    sf_app.installs.install(ACCOUNT, "salesforce", config(org, monkeypatch), ADMIN)
    sync = sf_app.sync.sync(ACCOUNT, "salesforce").summary
    holders = {u.email for u in org.store.users if ROLE in u.roles}
    assert sync.seated == len(holders)
    # Voice installed later, with another activated role: its own gain, not salesforce's.
    sf_app.installs.install(
        ACCOUNT,
        "salesforce_voice",
        config(org, monkeypatch, activated_roles=["Team Lead"]),
        ADMIN,
    )
    voice = sf_app.sync.sync(ACCOUNT, "salesforce_voice").summary
    leads = {u.email for u in org.store.users if "Team Lead" in u.roles}
    assert voice.seated == len(leads) > 0
    assert set(sf_app.seats.seated_emails(ACCOUNT, "salesforce_voice")) == leads


def test_an_empty_full_pull_halts_a_small_account_below_the_guards_minimum(
    installed: Callable[..., App], crm: MemorySandbox
) -> None:
    crm.store.users = crm.store.users[:4]
    app = installed()  # deletion_guard_min 5: four users are below it
    assert app.sync.sync(ACCOUNT, "memory").summary.agents_synced == 4
    crm.store.users = []
    result = app.sync.sync(ACCOUNT, "memory", full=True)
    assert result.outcome == "halted" and result.remedy == "force"
    assert "no user" in result.summary.message and "force" in result.summary.message
    assert all(a["active"] for a in app.sync.agents(ACCOUNT, "memory"))
    # A pull deactivating all four halts too; forced, it goes through.
    crm.store.users = list(crm.store.by_number.values())[:4]
    crm.store.deactivate([u.number for u in crm.store.users])
    assert app.sync.sync(ACCOUNT, "memory").outcome == "halted"
    forced = app.sync.sync(ACCOUNT, "memory", force=True)
    assert forced.outcome == "succeeded"
    assert not any(a["active"] for a in app.sync.agents(ACCOUNT, "memory"))
