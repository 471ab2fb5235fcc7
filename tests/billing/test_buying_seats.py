"""Issue 6: buying seats — the way out of overage, with the price shown before the commitment."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from billing_scenario import ADMIN, Scenario, kinds

from seatgate.core.errors import BadInput, Conflict, NotAuthorized
from seatgate.core.storage.repositories.audit import SqlAuditLog
from seatgate.core.storage.tables import commitments, contracts
from seatgate.core.storage.tables import purchases as purchases_table


def in_overage(s: Scenario) -> None:
    """12 users grandfathered on 10 hard_cap seats; a 13th user joins after enablement."""
    s.account(users=12)
    s.contract(seats=10, mode="hard_cap", start=dt.date(2025, 10, 1))  # in force at enablement
    s.on("2025-12-15")
    s.app.grandfather("acme", "salesforce", ADMIN)
    s.app.accounts.add_users("acme", ["u12@acme.example"])


def test_an_overage_account_buys_exactly_enough_and_adds_a_user_right_after(
    scenario: Scenario,
) -> None:
    in_overage(scenario)
    scenario.on("2026-03-20")
    # Warm the entitlement cache: the purchase must invalidate it, not wait for it to expire.
    assert not scenario.app.check("acme", "salesforce", "u12@acme.example", "cti").allowed
    refused = scenario.app.assign("acme", "salesforce", ["u12@acme.example"], ADMIN)
    assert refused.refused[0]["reason"] == "in_overage"
    bought = scenario.buy(3)  # 12 seated + 1 to add = 13 = 10 + 3
    assert bought["in_overage_after"] is False
    done = scenario.app.assign("acme", "salesforce", ["u12@acme.example"], ADMIN)
    assert done.refused == [] and done.assigned_count == 13
    assert scenario.app.check("acme", "salesforce", "u12@acme.example", "cti").allowed


def test_two_seats_leave_overage_but_a_third_is_needed_to_add_a_user(scenario: Scenario) -> None:
    in_overage(scenario)
    scenario.on("2026-03-20")
    assert scenario.buy(2)["in_overage_after"] is False
    after = scenario.app.assign("acme", "salesforce", ["u12@acme.example"], ADMIN)
    assert after.refused[0]["reason"] == "capacity_reached"  # 12 of 12: out of overage, full


def test_the_summary_shows_the_price_and_writes_nothing(scenario: Scenario) -> None:
    scenario.account()
    scenario.contract(seats=10)
    scenario.on("2026-03-17")  # 15 of March's 31 days left, then 9 full months of the term
    before = scenario.count(commitments)
    quote = scenario.app.purchases.buy_seats("acme", "salesforce", 2, ADMIN, confirm=False)
    assert quote["committed"] is False
    assert (quote["quantity_before"], quote["quantity_after"]) == (10, 12)
    assert quote["per_billing_period"] == "50.00"
    assert quote["prorated_rest_of_term"] == "474.19"  # 2 x 25 x (9 + 15/31)
    assert scenario.count(commitments) == before
    assert scenario.count(purchases_table) == 0


def test_a_purchase_mid_term_is_prorated_on_the_next_invoice_and_full_on_the_one_after(
    scenario: Scenario,
) -> None:
    scenario.account()
    scenario.contract(seats=10)
    scenario.on("2026-03-01")
    scenario.invoice("2026-03")
    scenario.on("2026-03-17")
    scenario.buy(2)
    scenario.on("2026-04-01")
    assert kinds(scenario.invoice("2026-04")) == [
        ("seats_purchased", "24.19", "2026-03-17", "2026-04-01"),  # 2 x 25 x 15/31
        ("base", "250.00", "2026-04-01", "2026-05-01"),
        ("seats_purchased", "50.00", "2026-04-01", "2026-05-01"),
    ]
    scenario.on("2026-05-01")
    assert kinds(scenario.invoice("2026-05")) == [
        ("base", "250.00", "2026-05-01", "2026-06-01"),
        ("seats_purchased", "50.00", "2026-05-01", "2026-06-01"),
    ]


def test_self_serve_seats_are_bought_at_the_listed_price_month_to_month(
    scenario: Scenario,
) -> None:
    from decimal import Decimal

    scenario.account()
    scenario.on("2026-01-01")
    # A self-serve purchase is month to month from today at the listed price (tester report
    # item 6); the 20.00 it was bought at stands for an earlier price list.
    made = scenario.contract(
        seats=2, channel="self_serve", unit_price=None, start=dt.date(2026, 1, 1), months=1
    )
    with scenario.app.db.write() as conn:
        conn.execute(
            sa.update(contracts)
            .where(contracts.c.id == made.id)
            .values(unit_price=Decimal("20.00"))
        )
    scenario.on("2026-01-17")
    quote = scenario.buy(1)
    assert quote["unit_price"] == "25.00"  # the then-listed price, not the contract's 20.00
    assert quote["rest_of_term"] == {"start": "2026-01-17", "end": "2026-02-01"}
    assert quote["prorated_rest_of_term"] == "12.10"  # 25 x 15/31


def test_a_retry_with_the_same_key_charges_once(scenario: Scenario) -> None:
    scenario.account()
    scenario.contract(seats=10)
    scenario.on("2026-03-17")
    first = scenario.buy(2, key="order-42")
    again = scenario.buy(2, key="order-42")
    assert again["replayed"] is True and first["replayed"] is False
    assert {k: v for k, v in again.items() if k != "replayed"} == {
        k: v for k, v in first.items() if k != "replayed"
    }
    assert scenario.count(purchases_table) == scenario.count(commitments) == 1
    with scenario.app.db.read() as conn:
        assert conn.execute(sa.select(contracts.c.quantity)).scalar_one() == 12
    with pytest.raises(Conflict, match="order-42"):
        scenario.buy(3, key="order-42")


def test_a_key_is_generated_when_absent(scenario: Scenario) -> None:
    scenario.account()
    scenario.contract(seats=10)
    scenario.on("2026-03-17")
    assert len(scenario.buy(1)["idempotency_key"]) == 32


def test_an_actor_without_permission_is_refused_and_audited(scenario: Scenario) -> None:
    scenario.account()
    scenario.contract(seats=10)
    scenario.on("2026-03-17")
    with pytest.raises(NotAuthorized):
        scenario.buy(2, actor="intern@acme.example")
    with scenario.app.db.read() as conn:
        last = SqlAuditLog(conn).entries("acme", 1)[0]
        assert (last["action"], last["outcome"]) == ("seats.buy", "not_authorized")
        assert conn.execute(sa.select(contracts.c.quantity)).scalar_one() == 10
    assert scenario.count(purchases_table) == 0


@pytest.mark.parametrize("quantity", [0, -3])
def test_zero_or_negative_quantity_points_at_the_renewal_adjustment_ticket(
    scenario: Scenario, quantity: int
) -> None:
    scenario.account()
    scenario.contract(seats=10)
    with pytest.raises(BadInput, match="renewal_adjustment"):
        scenario.buy(quantity)
    assert scenario.count(purchases_table) == 0
