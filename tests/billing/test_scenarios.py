"""Billing scenarios, each a rule of seed 002 (or the overage rule of seed 000) played on a test
clock through whole terms. Prices: salesforce standard lists at 25.00 USD/seat/month."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from billing_scenario import ADMIN, Scenario, kinds

import seatgate.core
from seatgate.core.storage.repositories.audit import SqlAuditLog
from seatgate.core.storage.tables import invoice_lines, invoices

MONTHS_2026 = [f"2026-{m:02d}" for m in range(1, 13)]


def year_total(s: Scenario) -> Decimal:
    total = Decimal("0")
    for period in MONTHS_2026:
        s.on(f"{period}-01")
        total += Decimal(s.run(period)["total"])
    return total


@pytest.mark.parametrize("frequency", ["monthly", "quarterly", "semiannual", "annual"])
def test_a_year_comes_to_the_same_cents_whatever_the_frequency(
    scenario: Scenario, frequency: str
) -> None:
    # 7 seats at 33.33/month: 2,799.72 a year at every frequency. (Unit prices are written with
    # the currency's minor unit since tester report item 10, so 33.3333 is refused; the rounding
    # of running totals is exercised by prorated spans in tests/unit/test_money.py.)
    scenario.account(users=7)
    scenario.contract(seats=7, frequency=frequency, unit_price=Decimal("33.33"))
    assert year_total(scenario) == Decimal("2799.72")


def test_quarterly_contract_is_invoiced_in_the_month_each_quarter_starts(
    scenario: Scenario,
) -> None:
    scenario.account()
    scenario.contract(seats=4, frequency="quarterly")
    scenario.on("2026-01-01")
    assert kinds(scenario.invoice("2026-01")) == [("base", "300.00", "2026-01-01", "2026-04-01")]
    scenario.on("2026-02-01")
    assert scenario.invoice("2026-02")["lines"] == []


def test_removing_users_mid_term_leaves_the_next_invoice_unchanged(scenario: Scenario) -> None:
    # auto_expand: 10 contracted, 13 assigned from January; 3 removed on 10 February.
    scenario.account(users=13)
    scenario.contract(seats=10, mode="auto_expand")
    scenario.on("2026-01-01")
    scenario.assign(0, 13)
    assert scenario.invoice("2026-01")["total"] == "325.00"
    scenario.on("2026-02-01")
    feb = scenario.invoice("2026-02")
    scenario.on("2026-02-10")
    scenario.unassign(10, 13)
    scenario.on("2026-03-01")
    mar = scenario.invoice("2026-03")
    assert feb["total"] == mar["total"] == "325.00"  # the peak of the term (13) is still billed
    assert [(ln["kind"], ln["quantity"]) for ln in mar["lines"]] == [
        ("base", 10),
        ("additional_seats", 3),
    ]


def test_the_peak_carries_into_the_renewal_unless_a_renewal_adjustment_ticket(
    sqlite_url: str,
) -> None:
    for ticket, expected in ((False, "325.00"), (True, "250.00")):
        s = Scenario(sqlite_url.replace(".db", f"{ticket}.db"))
        s.account(users=13)
        s.contract(seats=10, mode="auto_expand", months=1)
        s.on("2026-01-01")
        s.assign(0, 13)
        s.unassign(10, 13)
        if ticket:
            s.app.purchases.open_ticket("acme", "salesforce", "renewal_adjustment", ADMIN)
        s.on("2026-02-01")
        assert s.invoice("2026-02")["total"] == expected
        s.app.db.dispose()


def test_auto_expand_user_added_mid_period_is_billed_from_activation(scenario: Scenario) -> None:
    scenario.account(users=11)
    scenario.contract(seats=10, mode="auto_expand")
    scenario.on("2026-01-01")
    scenario.assign(0, 10)
    assert scenario.invoice("2026-01")["total"] == "250.00"
    scenario.on("2026-01-16")  # 16 of January's 31 days left
    scenario.assign(10, 11)
    scenario.on("2026-02-01")
    assert kinds(scenario.invoice("2026-02")) == [
        ("additional_seats", "12.90", "2026-01-16", "2026-02-01"),  # 25.00 x 16/31
        ("base", "250.00", "2026-02-01", "2026-03-01"),
        ("additional_seats", "25.00", "2026-02-01", "2026-03-01"),
    ]


def grandfathered_overage(s: Scenario) -> None:
    """A hard_cap account with 12 users on 10 contracted seats, grandfathered at enablement."""
    s.account(users=12)
    s.contract(seats=10, mode="hard_cap", start=dt.date(2025, 10, 1))  # in force at enablement
    s.on("2025-12-15")
    s.app.grandfather("acme", "salesforce", ADMIN)


def test_overage_is_billed_from_the_overage_date_and_not_before(scenario: Scenario) -> None:
    grandfathered_overage(scenario)
    for period in ("2026-01", "2026-02", "2026-03", "2026-04"):
        scenario.on(f"{period}-01")
        assert [k for k, *_ in kinds(scenario.invoice(period))] == ["base"], period
    scenario.on("2026-05-01")
    assert kinds(scenario.invoice("2026-05")) == [
        ("base", "250.00", "2026-05-01", "2026-06-01"),
        ("overage", "45.16", "2026-05-04", "2026-06-01"),  # 2 x 25.00 x 28/31
    ]
    scenario.on("2026-06-01")
    assert kinds(scenario.invoice("2026-06"))[-1] == (
        "overage",
        "50.00",
        "2026-06-01",
        "2026-07-01",
    )


def test_overage_date_comes_from_the_policy_revision_in_force(scenario: Scenario) -> None:
    # Before 2026-01-06 the published overage date was 2026-02-02.
    grandfathered_overage(scenario)
    scenario.on("2026-01-01")
    assert scenario.app.billing.overage_begins() == dt.date(2026, 2, 2)
    scenario.on("2026-01-06")
    assert scenario.app.billing.overage_begins() == dt.date(2026, 5, 4)


def test_plan_change_mid_term_bills_the_new_plan_for_all_users_at_the_listed_price(
    scenario: Scenario,
) -> None:
    scenario.account(users=10)
    scenario.contract(seats=10)
    scenario.installed()  # plans are managed once installed (seed 002)
    scenario.on("2026-01-01")
    scenario.invoice("2026-01")
    scenario.on("2026-01-16")
    changed = scenario.app.purchases.change_plan("acme", "salesforce", "premium", ADMIN)
    assert changed["price_per_period"] == "400.00"  # 10 x 40.00, shown before billing
    scenario.on("2026-02-01")
    assert kinds(scenario.invoice("2026-02")) == [
        ("plan_change", "206.45", "2026-01-16", "2026-02-01"),  # 10 x 40.00 x 16/31
        ("proration", "-129.03", "2026-01-16", "2026-02-01"),  # old plan credited: 250 x 16/31
        ("plan_change", "400.00", "2026-02-01", "2026-03-01"),
    ]


@pytest.mark.parametrize("users", [1, 500])
def test_per_account_plan_charges_once_whatever_the_seats(sqlite_url: str, users: int) -> None:
    s = Scenario(sqlite_url)
    s.account(users=users)
    s.contract(product="hubspot", plan="starter", seats=users, unit_price=Decimal("99.00"))
    s.on("2026-01-01")
    s.assign(0, users, product="hubspot")
    assert kinds(s.invoice("2026-01")) == [("base", "99.00", "2026-01-01", "2026-02-01")]
    s.app.db.dispose()


def test_uninstall_without_a_cancellation_ticket_renews(scenario: Scenario) -> None:
    scenario.account()
    scenario.contract(seats=2, months=3)
    scenario.installed()  # issue 13: only what is installed can be uninstalled
    scenario.on("2026-02-10")
    done = scenario.app.purchases.uninstall("acme", "salesforce", ADMIN)
    assert done["effective"] == "2026-04-01"
    scenario.on("2026-04-01")
    assert kinds(scenario.invoice("2026-04")) == [("base", "50.00", "2026-04-01", "2026-05-01")]


def test_uninstall_with_a_cancellation_ticket_stops_billing_at_the_term_end(
    scenario: Scenario,
) -> None:
    scenario.account()
    scenario.contract(seats=2, months=3)
    scenario.installed()  # issue 13: only what is installed can be uninstalled
    scenario.on("2026-02-10")
    scenario.app.purchases.uninstall("acme", "salesforce", ADMIN)
    scenario.app.purchases.open_ticket("acme", "salesforce", "billing_cancellation", ADMIN)
    scenario.on("2026-03-01")
    assert scenario.invoice("2026-03")["total"] == "50.00"  # the term is still billed to its end
    scenario.on("2026-04-01")
    assert scenario.invoice("2026-04")["lines"] == []


def test_a_catalog_price_change_leaves_a_running_contract_alone(
    scenario: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builtin = json.loads(
        (Path(seatgate.core.__file__).parent / "data" / "catalog.json").read_text()
    )
    raised = json.loads(json.dumps(builtin["versions"][0]))
    raised["effective"] = "2026-03-01"
    raised["products"]["salesforce"]["base_plans"]["standard"]["monthly_price"] = "30.00"
    builtin["versions"].append(raised)
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(builtin))
    monkeypatch.setenv("SEATGATE_CATALOG", str(path))
    scenario.account()
    scenario.on("2026-01-01")
    assert scenario.app.list_price("salesforce", "standard") == (Decimal("25.00"), "USD")
    scenario.contract(seats=4, unit_price=scenario.app.list_price("salesforce", "standard")[0])
    scenario.on("2026-03-01")
    assert scenario.app.list_price("salesforce", "standard") == (Decimal("30.00"), "USD")
    assert kinds(scenario.invoice("2026-03")) == [("base", "100.00", "2026-03-01", "2026-04-01")]
    summary = scenario.app.purchases.summary("salesforce", "standard", 4)
    assert summary["per_period"] == "120.00"  # new purchases see the then-listed price


def test_billing_runs_are_idempotent_and_issued_invoices_never_change(
    scenario: Scenario,
) -> None:
    scenario.account(users=3)
    scenario.contract(seats=3)
    scenario.on("2026-01-01")
    first = scenario.run("2026-01")
    assert first["count"] == 1
    again = scenario.run("2026-01")
    assert again["count"] == 0
    assert scenario.count(invoices) == 1
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), scenario.app.db.write() as conn:
        conn.execute(invoice_lines.update().values(amount=Decimal("0")))


def test_the_purchase_summary_and_the_invoice_use_the_same_price(scenario: Scenario) -> None:
    scenario.account()
    scenario.on("2026-01-01")
    shown = scenario.app.purchases.summary("salesforce", "premium", 7, frequency="quarterly")
    assert shown["indicative"] is True
    scenario.contract(seats=7, plan="premium", frequency="quarterly", unit_price=Decimal("40"))
    assert scenario.invoice("2026-01")["total"] == shown["per_period"] == "840.00"


def test_self_serve_contracts_bill_month_to_month(scenario: Scenario) -> None:
    scenario.account()
    scenario.on("2026-01-01")
    # Month to month from the purchase day, at the listed price: an annual frequency, another
    # start or a price of its own are refused (tester report item 6; test_currencies.py).
    scenario.contract(seats=2, frequency="monthly", channel="self_serve", months=1, unit_price=None)
    assert kinds(scenario.invoice("2026-01")) == [("base", "50.00", "2026-01-01", "2026-02-01")]
    scenario.on("2026-02-01")
    assert scenario.invoice("2026-02")["total"] == "50.00"


def test_a_plan_change_needs_purchasing_authority_and_is_recorded(scenario: Scenario) -> None:
    from seatgate.core.errors import NotAuthorized
    from seatgate.core.storage.tables import commitments

    scenario.account()
    scenario.contract(seats=2)
    scenario.installed()  # plans are managed once installed (seed 002)
    scenario.on("2026-01-05")
    with pytest.raises(NotAuthorized):
        scenario.app.purchases.change_plan("acme", "salesforce", "premium", "intern@acme.example")
    with scenario.app.db.read() as conn:
        assert SqlAuditLog(conn).entries("acme", 1)[0]["outcome"] == "not_authorized"
    assert scenario.count(commitments) == 0
    scenario.app.purchases.change_plan("acme", "salesforce", "premium", ADMIN)
    with scenario.app.db.read() as conn:
        row = conn.execute(sa.select(commitments)).one()
    assert (row.actor, row.action, row.price_shown) == (ADMIN, "plan_change", Decimal("80.00"))


def test_a_plan_change_on_a_product_not_installed_is_refused_with_the_remedy(
    scenario: Scenario,
) -> None:
    """Tester report item 7: seed 002 "Once installed, you should manage the App's active
    Plans" — a contract alone has no plans to manage; refused as uninstall is, nothing written."""
    from seatgate.core.errors import NotFound
    from seatgate.core.storage.tables import commitments, plan_changes

    scenario.account()
    scenario.contract(seats=2)
    scenario.on("2026-06-01")
    with pytest.raises(NotFound) as refused:
        scenario.app.purchases.change_plan("acme", "salesforce", "premium", ADMIN)
    assert refused.value.remedy == "install"
    assert "salesforce installation" in str(refused.value) and "\n" not in str(refused.value)
    assert scenario.count(commitments) == scenario.count(plan_changes) == 0
    scenario.installed()
    scenario.app.purchases.change_plan("acme", "salesforce", "premium", ADMIN)
    assert scenario.count(plan_changes) == 1
