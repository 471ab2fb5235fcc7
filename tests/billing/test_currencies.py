"""Tester report items 3, 6, 9 and 10 through the services, on SQLite and PostgreSQL: ISO 4217
currencies and their minor units, per-currency totals, self-serve terms, contracted seats
bounded, unit prices written with their minor unit. Each refusal writes nothing."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from billing_scenario import ADMIN, Scenario

from seatgate.core.errors import BadInput
from seatgate.core.storage.tables import commitments, contracts, purchases


def mixed(s: Scenario) -> None:
    """Account acme: USD (listed), EUR (its own price), JPY (its own price), from 2026-01-01."""
    s.account()
    s.contract("hubspot", unit_price=None, seats=2)  # 15.00 USD listed
    s.contract("salesforce", unit_price=Decimal("22"), currency="EUR", seats=2)
    s.contract("oracle_sc", unit_price=Decimal("33"), currency="JPY", seats=3)


def test_the_preview_totals_each_currency_apart(scenario: Scenario) -> None:
    mixed(scenario)
    scenario.on("2026-01-31")
    data = scenario.app.billing.preview("acme", None, "2026-01")
    assert data["totals"] == {"EUR": "44.00", "JPY": "99", "USD": "30.00"}
    assert (data["currency"], data["total"]) == (None, None)  # never one sum of three
    assert {(ln["product"], ln["currency"], ln["amount"]) for ln in data["lines"]} == {
        ("hubspot", "USD", "30.00"),
        ("salesforce", "EUR", "44.00"),
        ("oracle_sc", "JPY", "99"),
    }
    run = scenario.app.billing.run("2026-01")
    assert run["count"] == 3 and run["total"] is None
    assert run["totals"] == {"EUR": "44.00", "JPY": "99", "USD": "30.00"}
    assert sorted(i["currency"] for i in run["issued"]) == ["EUR", "JPY", "USD"]


def test_jpy_is_quoted_and_billed_in_whole_yen(scenario: Scenario) -> None:
    mixed(scenario)
    scenario.on("2026-02-10")
    quote = scenario.app.purchases.buy_seats("acme", "oracle_sc", 1, ADMIN, confirm=False)
    # 33 x 19/28 = 22.39 -> 22 for February, then 10 full months of 33.
    assert (quote["prorated_rest_of_term"], quote["per_billing_period"]) == ("352", "33")
    assert quote["unit_price"] == "33"


@pytest.mark.parametrize(
    ("currency", "price", "message"),
    [
        ("XYZ", "10", "bad currency 'XYZ': expected an ISO 4217 currency code"),
        ("EUR", None, "bad currency 'EUR': expected USD, the currency the catalog lists"),
        ("JPY", "100.50", "bad unit price '100.50': expected a whole amount of JPY"),
        ("USD", "1.005", "bad unit price '1.005': expected an amount of USD with at most 2"),
    ],
)
def test_a_bad_currency_or_price_is_one_line_and_writes_nothing(
    scenario: Scenario, currency: str, price: str | None, message: str
) -> None:
    scenario.account()
    with pytest.raises(BadInput) as refused:
        scenario.contract(
            "salesforce", currency=currency, unit_price=None if price is None else Decimal(price)
        )
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)
    assert scenario.count(contracts) == 0


def test_a_plan_change_outside_the_contracts_currency_names_both(scenario: Scenario) -> None:
    mixed(scenario)
    scenario.installed("salesforce")
    scenario.on("2026-02-01")
    with pytest.raises(BadInput) as refused:
        scenario.app.purchases.change_plan("acme", "salesforce", "premium", ADMIN)
    text = str(refused.value)
    assert "EUR, the contract's currency" in text and "in USD only" in text
    assert refused.value.remedy == "plan_not_listed"


def test_unit_prices_are_stored_and_shown_with_the_minor_unit(scenario: Scenario) -> None:
    scenario.account()
    made = scenario.contract("salesforce", unit_price=Decimal("5"))
    assert str(made.unit_price) == "5.00"
    (listed,) = [v.as_dict() for v in scenario.app.contracts.list("acme")]
    assert listed["unit_price"] == "5.00"
    free = scenario.contract("servicenow", unit_price=Decimal("0"))
    assert str(free.unit_price) == "0.00"


def test_self_serve_is_month_to_month_at_the_listed_price(scenario: Scenario) -> None:
    scenario.account()
    scenario.on("2026-02-01")
    terms = dict(frequency="monthly", start=dt.date(2026, 2, 1), months=1, channel="self_serve")
    for bad, field in (
        ({"unit_price": Decimal("1.00")}, "unit price"),
        ({"frequency": "annual"}, "frequency"),
        ({"months": 12}, "months"),
        ({"start": dt.date(2025, 1, 1)}, "start"),
    ):
        with pytest.raises(BadInput) as refused:
            scenario.contract("hubspot", **{**terms, "unit_price": None, **bad})
        assert refused.value.field == field
    assert scenario.count(contracts) == scenario.count(commitments) == 0
    made = scenario.contract("hubspot", **{**terms, "unit_price": None})
    assert (str(made.unit_price), made.currency) == ("15.00", "USD")  # the listed price
    with pytest.raises(BadInput, match="marketplace purchase is at the then-listed price"):
        scenario.contract("salesforce", channel="marketplace", unit_price=Decimal("1.00"))


def test_contracted_seats_stay_within_1_to_1_000_000(scenario: Scenario) -> None:
    scenario.account()
    scenario.contract(seats=3)
    scenario.on("2026-02-01")
    before = scenario.count(purchases)
    for quantity in (999_998, 10**23):
        with pytest.raises(BadInput, match="quantity"):
            scenario.app.purchases.buy_seats("acme", "salesforce", quantity, ADMIN, confirm=True)
    with pytest.raises(BadInput, match=r"1 to 999,997 more seats"):
        scenario.app.purchases.buy_seats("acme", "salesforce", 999_998, ADMIN, confirm=False)
    assert scenario.count(purchases) == before
    assert scenario.buy(999_997)["quantity_after"] == 1_000_000  # up to the bound exactly
    with pytest.raises(BadInput, match="no more seats"):
        scenario.buy(1)
    ticket = scenario.app.purchases.open_ticket("acme", "salesforce", "renewal_adjustment", ADMIN)
    with pytest.raises(BadInput, match="renewal quantity 0"):
        scenario.app.purchases.resolve_ticket(
            "acme", "salesforce", ticket["ticket"], renewal_quantity=0, actor="support@x.example"
        )
    with pytest.raises(BadInput, match="seats 0"):
        scenario.app.contracts.set_quantity("acme", "salesforce", 0, ADMIN)


def test_added_users_within_the_contract_show_zero_with_cents(scenario: Scenario) -> None:
    scenario.account(users=1)
    scenario.contract(seats=2)
    scenario.on("2026-01-10").assign(0, 1)
    with scenario.app.db.read() as conn:
        shown = conn.execute(sa.select(commitments.c.price_shown)).scalar_one()
    assert str(shown) == "0.00"


def test_the_entitlement_check_never_loads_the_currency_table(tmp_path: Path) -> None:
    """The currency table (iso4217) is imported the first time money is made, never on the
    hot path: a `seatgate check` in a fresh process leaves it unloaded."""
    db = f"sqlite:///{tmp_path}/seatgate.db"
    s = Scenario(db)
    try:
        s.account(users=1)
        s.contract(seats=1)
        s.on("2026-01-10").assign(0, 1)
    finally:
        s.app.db.dispose()
    probe = (
        "import sys\n"
        "from seatgate.core.entrypoints.cli import main\n"
        "try:\n"
        f"    main(['--db', {db!r}, '--as-of', '2026-03-20', 'check', 'acme', "
        "'salesforce', 'u0@acme.example', 'cti'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('LOADED' if 'iso4217' in sys.modules else 'NOT LOADED')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.stdout.strip().endswith("NOT LOADED"), done.stdout + done.stderr
    assert "allowed" in done.stdout.lower() or "seated" in done.stdout.lower(), done.stdout
