"""The reads the console added to the services, on SQLite and PostgreSQL: what a summary shows is
what the act then does, and nothing is written by showing it; users searched by email prefix."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock, parse_instant
from seatgate.core.errors import BadInput, Conflict, NotFound
from seatgate.core.plugins.manager import build_plugin_manager
from seatgate.core.testing.memory import MemoryAdapter, MemorySandbox
from seatgate.core.testing.setup import account_with_contract, installed_without_a_crm

ADMIN = "admin@acme.example"


@pytest.fixture
def core(db_url: str) -> Iterator[App]:
    plugins = build_plugin_manager(
        entry_points=False, plugins=[("memory", MemoryAdapter())], strict=True, lazy=True
    )
    app = App(db_url, clock=FixedClock(parse_instant("2026-03-20T12:00:00Z")), plugins=plugins)
    account_with_contract(app, "acme", "salesforce", admin=ADMIN, seats=10)
    app.contracts.create(
        "acme",
        "memory",
        seats=5,
        plan="standard",
        frequency="monthly",
        start=dt.date(2026, 1, 1),
        months=12,
        unit_price=Decimal("10"),
    )
    emails = [f"{p}{i:03d}@acme.example" for p in ("ann", "bob", "a_b", "a%b") for i in range(30)]
    app.accounts.add_users("acme", emails, actor=ADMIN)
    app.seats.assign("acme", "salesforce", emails[:4], ADMIN)
    yield app
    app.close()


def test_the_plan_change_summary_is_what_the_change_bills(core: App) -> None:
    with pytest.raises(NotFound, match="installation"):  # plans are managed once installed
        core.purchases.plan_change_summary("acme", "salesforce", "premium")
    installed_without_a_crm(core, "acme", "salesforce", ADMIN)
    shown = core.purchases.plan_change_summary("acme", "salesforce", "premium")
    assert core.purchases.plans_in_force("acme")["salesforce"] == "standard"  # nothing written
    done = core.purchases.change_plan("acme", "salesforce", "premium", ADMIN)
    for key in ("from", "to", "users", "list_price", "price_per_period", "currency", "effective"):
        assert shown[key] == done[key], key
    # all selected users: the 10 contracted seats billed (4 assigned, fewer than contracted)
    assert shown["users"] == 10 and shown["committed"] is False
    assert core.purchases.plans_in_force("acme")["salesforce"] == "premium"
    with pytest.raises(BadInput, match="a plan other than the current one"):
        core.purchases.plan_change_summary("acme", "salesforce", "premium")


def test_the_uninstall_summary_names_the_effective_day_and_the_ticket(
    core: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(NotFound, match="installation"):
        core.purchases.uninstall_summary("acme", "memory")  # never installed
    with MemorySandbox(users=3) as crm:
        monkeypatch.setenv("MEMORY_CRM_CONSOLE_KEY", crm.settings()["api_key"])
        config = {"instance": crm.instance, "api_key": "${MEMORY_CRM_CONSOLE_KEY}"}
        core.installs.install("acme", "memory", config, ADMIN)
    shown = core.purchases.uninstall_summary("acme", "memory")
    assert core.installs.get("acme", "memory").uninstall_effective is None  # nothing written
    assert shown["effective"] == "2027-01-01" and shown["remedy"] == "billing_cancellation_ticket"
    done = core.purchases.uninstall("acme", "memory", ADMIN)
    assert done["effective"] == shown["effective"] and done["remedy"] == shown["remedy"]
    with pytest.raises(Conflict, match="already uninstalled"):
        core.purchases.uninstall_summary("acme", "memory")


def test_users_are_searched_by_email_prefix_literally(core: App) -> None:
    def emails(search: str | None, cursor: str | None = None, limit: int = 100) -> list[str]:
        page = core.listings.users("acme", search=search, cursor=cursor, limit=limit)
        return [u["email"] for u in page.items]

    assert len(emails("BOB")) == 30 and all(e.startswith("bob") for e in emails("bob"))
    assert emails("a_b") == [f"a_b{i:03d}@acme.example" for i in range(30)]  # _ is no wildcard
    assert emails("a%") == [f"a%b{i:03d}@acme.example" for i in range(30)]  # nor is %
    assert emails("zed") == []
    assert len(emails(None)) == 100 and len(emails("  ")) == 100  # blank: no search
    first = core.listings.users("acme", search="ann", limit=20)
    rest = emails("ann", first.next_cursor)
    assert len(first.items) == 20 and len(rest) == 10 and rest[0] == "ann020@acme.example"
    with pytest.raises(BadInput, match="search"):
        emails("x" * 300)
