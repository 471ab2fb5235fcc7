"""Issue 11, "Money and seats exactly right": each field report's right value, through the services
on SQLite and on PostgreSQL (the kinds are property-tested in tests/unit and test_as_of.py).
Prices: salesforce standard lists at 25.00 USD/seat/month, premium at 40.00."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa
from billing_scenario import ADMIN, Scenario, kinds

from seatgate.core.domain.calendar import add_months
from seatgate.core.errors import BadInput, Conflict, NotAuthorized
from seatgate.core.storage.repositories.audit import SqlAuditLog
from seatgate.core.storage.tables import commitments, purchases

D = dt.date
SF = "salesforce"


def emails(n_from: int, n_to: int) -> list[str]:
    return [f"u{i}@acme.example" for i in range(n_from, n_to)]


# -- 1. month-end anchors ----------------------------------------------------------------------------


def test_1_a_self_serve_month_from_january_31_is_25_every_month_300_a_year(
    scenario: Scenario,
) -> None:
    scenario.account()
    scenario.on("2026-01-31")  # a self-serve purchase starts the day it is made (item 6)
    scenario.contract(
        seats=1, start=D(2026, 1, 31), months=1, channel="self_serve", unit_price=None
    )
    totals = []
    month = D(2026, 1, 1)
    for _ in range(12):
        scenario.on(add_months(month, 1).isoformat())  # the month's periods have all begun
        totals.append(Decimal(scenario.invoice(month.strftime("%Y-%m"))["total"]))
        month = add_months(month, 1)
    assert totals == [Decimal("25.00")] * 12
    assert sum(totals) == Decimal("300.00")


# -- 2. overage only from the overage-billing date ---------------------------------------------------


def two_seats_three_users(s: Scenario) -> None:
    """hard_cap, 2 seats (in force at enablement), 3 users grandfathered in January 2026."""
    s.account(users=3)
    s.contract(seats=2, start=D(2025, 10, 1))
    s.on("2026-01-10")
    assert len(s.app.grandfather("acme", SF, ADMIN).newly_assigned) == 3


def test_2_out_of_overage_before_the_overage_date_no_overage_is_billed(scenario: Scenario) -> None:
    two_seats_three_users(scenario)
    scenario.on("2026-04-01")
    scenario.unassign(2, 3)
    for period in ("2026-04", "2026-05", "2026-06"):
        scenario.on(f"{period}-01")
        assert kinds(scenario.invoice(period)) == [
            (
                "base",
                "50.00",
                f"{period}-01",
                add_months(D.fromisoformat(f"{period}-01"), 1).isoformat(),
            )
        ]


def test_2_still_in_overage_on_the_overage_date_is_billed_from_that_day(scenario: Scenario) -> None:
    two_seats_three_users(scenario)
    scenario.on("2026-05-01")
    assert kinds(scenario.invoice("2026-05"))[-1] == (
        "overage",
        "22.58",
        "2026-05-04",
        "2026-06-01",
    )


# -- 3. a final invoice carries everything -----------------------------------------------------------


def test_3_seats_bought_before_an_uninstall_are_invoiced(scenario: Scenario) -> None:
    scenario.account(users=10)
    scenario.contract(seats=10, frequency="annual")
    scenario.installed()  # issue 13: only what is installed can be uninstalled
    scenario.on("2026-01-01")
    scenario.invoice("2026-01")
    scenario.on("2026-07-17")
    shown = scenario.buy(3)
    assert shown["prorated_rest_of_term"] == "411.29"
    scenario.on("2026-08-01")
    scenario.app.purchases.uninstall("acme", SF, ADMIN)
    scenario.app.purchases.open_ticket("acme", SF, "billing_cancellation", ADMIN)
    assert kinds(scenario.invoice("2026-08")) == [
        ("seats_purchased", "411.29", "2026-07-17", "2027-01-01")
    ]
    scenario.on("2027-01-01")
    assert scenario.invoice("2027-01")["lines"] == []  # billing stopped: nothing left


def test_3_a_user_added_in_the_last_month_reaches_the_final_invoice(scenario: Scenario) -> None:
    scenario.account(users=3)
    scenario.contract(seats=2, mode="auto_expand")
    scenario.installed()
    scenario.on("2026-11-01")
    scenario.app.purchases.uninstall("acme", SF, ADMIN)
    scenario.app.purchases.open_ticket("acme", SF, "billing_cancellation", ADMIN)
    scenario.on("2026-12-01")
    scenario.invoice("2026-12")
    scenario.on("2026-12-10")
    scenario.assign(0, 3)
    scenario.on("2027-01-01")
    assert kinds(scenario.invoice("2027-01")) == [
        ("additional_seats", "17.74", "2026-12-10", "2027-01-01")  # 25.00 x 22/31
    ]


# -- 4. the contracted plan again ---------------------------------------------------------------------


def test_4_back_on_the_contracted_plan_the_negotiated_price_applies(scenario: Scenario) -> None:
    scenario.account(users=10)
    scenario.contract(seats=10, unit_price=Decimal("20.00"))
    scenario.installed()  # plans are managed once installed (seed 002)
    scenario.on("2026-01-01")
    scenario.invoice("2026-01")
    scenario.on("2026-01-10")
    scenario.app.purchases.change_plan("acme", SF, "premium", ADMIN)
    scenario.on("2026-01-20")
    back = scenario.app.purchases.change_plan("acme", SF, "standard", ADMIN)
    assert back["price_per_period"] == "200.00"
    for period in ("2026-02", "2026-03"):
        scenario.on(f"{period}-01")
        scenario.invoice(period)
    assert scenario.app.billing.preview("acme", None, "2026-03")["total"] == "200.00"


# -- 5. what is shown is what is billed --------------------------------------------------------------


def test_5_the_quote_the_commitment_and_the_invoice_bill_the_same_users(scenario: Scenario) -> None:
    scenario.account(users=4)
    scenario.contract(seats=2, mode="auto_expand")
    scenario.installed()  # plans are managed once installed (seed 002)
    scenario.on("2026-01-05")
    scenario.assign(0, 4)
    scenario.on("2026-01-20")
    scenario.unassign(2, 4)
    scenario.on("2026-02-01")
    changed = scenario.app.purchases.change_plan("acme", SF, "premium", ADMIN)
    assert (changed["users"], changed["price_per_period"]) == (4, "160.00")
    with scenario.app.db.read() as conn:
        shown = conn.execute(
            sa.select(commitments.c.price_shown).where(commitments.c.action == "plan_change")
        ).scalar_one()
    assert shown == Decimal("160.00")
    feb = [ln for ln in scenario.invoice("2026-02")["lines"] if ln["start"] == "2026-02-01"]
    assert [(ln["kind"], ln["quantity"], ln["amount"]) for ln in feb] == [
        ("plan_change", 4, "160.00")
    ]


def test_5_seats_bought_under_another_plan_are_quoted_at_that_plan(scenario: Scenario) -> None:
    scenario.account()
    scenario.contract(seats=2)
    scenario.installed()  # plans are managed once installed (seed 002)
    scenario.on("2026-01-01")
    scenario.invoice("2026-01")
    scenario.app.purchases.change_plan("acme", SF, "premium", ADMIN)
    scenario.on("2026-02-01")
    scenario.invoice("2026-02")
    quote = scenario.buy(1)
    assert (quote["plan"], quote["unit_price"], quote["per_billing_period"]) == (
        "premium",
        "40.00",
        "40.00",
    )
    rest = Decimal(quote["prorated_rest_of_term"])
    billed = Decimal(0)
    for month in range(3, 13):
        scenario.on(f"2026-{month:02d}-01")
        billed += Decimal(scenario.invoice(f"2026-{month:02d}")["total"]) - Decimal("80.00")
    assert rest == billed == Decimal("440.00")  # 11 months of premium for the third seat


# -- 6. an order form's own plan ---------------------------------------------------------------------


def test_6_an_order_form_may_carry_its_own_plan(scenario: Scenario) -> None:
    scenario.account()
    made = scenario.contract(seats=4, plan="enterprise-2026", unit_price=Decimal("18.00"))
    assert made.charge_model == "per_seat"
    scenario.on("2026-01-01")
    assert kinds(scenario.invoice("2026-01")) == [("base", "72.00", "2026-01-01", "2026-02-01")]
    with pytest.raises(BadInput, match="listed on the marketplace") as refused:
        scenario.app.purchases.change_plan("acme", SF, "enterprise-2027", ADMIN)
    assert refused.value.remedy == "plan_not_listed"


def test_6_an_order_form_plan_of_its_own_may_be_per_account(scenario: Scenario) -> None:
    scenario.account(users=30)
    scenario.contract(
        seats=30, plan="site-licence", unit_price=Decimal("500.00"), charge_model="per_account"
    )
    scenario.on("2026-01-01")
    scenario.assign(0, 30)
    assert kinds(scenario.invoice("2026-01")) == [("base", "500.00", "2026-01-01", "2026-02-01")]


def test_6_the_marketplace_lists_its_plans_and_says_where_to_go_for_others(
    scenario: Scenario,
) -> None:
    scenario.account()
    with pytest.raises(BadInput) as refused:
        scenario.contract(plan="enterprise-2026", unit_price=Decimal("18"), channel="marketplace")
    assert refused.value.remedy == "plan_not_listed"


# -- 7. renewal adjustments --------------------------------------------------------------------------


def cut_to_eight(s: Scenario) -> int:
    """Quarterly terms from 2026-01-01, 10 contracted + 5 bought, 15 users cut to 8, a renewal
    adjustment ticket; returns the ticket."""
    s.account(users=16)
    s.contract(seats=10, frequency="quarterly", months=3)
    s.on("2026-01-15")
    s.buy(5)
    s.assign(0, 15)
    s.on("2026-02-10")
    s.unassign(8, 15)
    opened = s.app.purchases.open_ticket("acme", SF, "renewal_adjustment", ADMIN)
    return int(opened["ticket"])


def test_7_with_the_ticket_the_renewal_bills_the_users_held(scenario: Scenario) -> None:
    cut_to_eight(scenario)
    scenario.on("2026-04-01")
    assert scenario.invoice("2026-04")["total"] == "600.00"  # not 1,125.00
    # The contracted quantity of the new term is 8 for seats too: a 9th user is refused.
    refused = scenario.app.assign("acme", SF, ["u15@acme.example"], ADMIN)
    assert refused.refused == [{"email": "u15@acme.example", "reason": "capacity_reached"}]


def test_7_support_sets_the_renewal_quantity_audited(scenario: Scenario) -> None:
    ticket = cut_to_eight(scenario)
    support = "agent@support.example"
    done = scenario.app.purchases.resolve_ticket(
        "acme", SF, ticket, renewal_quantity=10, actor=support
    )
    assert done["renewal"] == "2026-04-01"
    with scenario.app.db.read() as conn:
        last = SqlAuditLog(conn).entries("acme", 5)
    assert any(
        (e["action"], e["actor"], e["detail"].get("renewal_quantity"))
        == ("ticket.resolve", support, 10)
        for e in last
    )
    scenario.on("2026-04-01")
    assert scenario.invoice("2026-04")["total"] == "750.00"  # max(10, 8 held)
    with pytest.raises(BadInput):
        scenario.app.purchases.resolve_ticket(
            "acme", SF, ticket + 99, renewal_quantity=1, actor=support
        )


# -- 8. grandfathering is no back door ----------------------------------------------------------------


def test_8_a_contract_that_starts_after_enablement_has_nobody_to_grandfather(
    scenario: Scenario,
) -> None:
    scenario.account(users=5)
    scenario.contract(seats=2, start=D(2026, 4, 1))
    scenario.on("2026-04-02")
    result = scenario.app.assign("acme", SF, emails(0, 3), ADMIN)
    assert result.refused == [{"email": "u2@acme.example", "reason": "capacity_reached"}]
    assert scenario.app.grandfather("acme", SF, ADMIN).newly_assigned == []
    again = scenario.app.grandfather("acme", SF, ADMIN)
    assert (again.newly_assigned, again.assigned_count) == ([], 2)


def test_8_only_the_users_of_enablement_day_are_grandfathered(scenario: Scenario) -> None:
    scenario.account(users=3)  # 2025-10-01, before the US enablement (2025-10-25)
    scenario.contract(seats=1, start=D(2025, 10, 1))
    with pytest.raises(Conflict, match="not enabled"):
        scenario.app.grandfather("acme", SF, ADMIN)  # before enablement: not known yet
    scenario.on("2025-11-02")
    scenario.app.accounts.add_users("acme", ["late@acme.example"])
    done = scenario.app.grandfather("acme", SF, ADMIN)
    assert sorted(done.newly_assigned) == emails(0, 3)


# -- 9. the overage lock has no grace ------------------------------------------------------------------


def test_9_a_user_added_to_an_account_in_overage_is_denied(scenario: Scenario) -> None:
    scenario.account(users=2)
    scenario.contract(seats=1, start=D(2025, 10, 1))
    scenario.on("2025-11-01")
    scenario.app.grandfather("acme", SF, ADMIN)
    scenario.on("2026-01-15")
    scenario.app.accounts.add_users("acme", ["u2@acme.example"])
    refused = scenario.app.assign("acme", SF, ["u2@acme.example"], ADMIN)
    assert refused.refused[0]["reason"] == "in_overage"
    scenario.on("2026-02-01")  # the transition
    decision = scenario.app.check("acme", SF, "u2@acme.example", "cti")
    assert (decision.allowed, decision.reason, decision.phase) == (
        False,
        "in_overage",
        "transition",
    )
    assert scenario.app.check("acme", SF, "u0@acme.example", "cti").reason == "seated"


# -- 11. idempotency keys belong to one account -------------------------------------------------------


def test_11_an_idempotency_key_belongs_to_one_account(scenario: Scenario) -> None:
    scenario.account()
    scenario.contract(seats=2)
    scenario.account("globex")
    scenario.contract(account="globex", seats=2)
    scenario.on("2026-02-01")
    scenario.buy(1, key="PO-1001")
    theirs = scenario.app.purchases.buy_seats(
        "globex", SF, 3, ADMIN, confirm=True, idempotency_key="PO-1001"
    )
    assert (theirs["account"], theirs["quantity_after"], theirs["replayed"]) == ("globex", 5, False)
    with pytest.raises(NotAuthorized) as refused:
        scenario.app.purchases.buy_seats(
            "acme", SF, 1, "nobody@acme.example", confirm=True, idempotency_key="PO-1001"
        )
    assert "globex" not in str(refused.value)
    with pytest.raises(Conflict) as reused:
        scenario.buy(2, key="PO-1001")
    assert "globex" not in str(reused.value) and "'quantity'" not in str(reused.value)
    assert scenario.count(purchases) == 2


# -- 12. reinstalling ---------------------------------------------------------------------------------
# (the install service's side: tests/billing/test_installs_self_serve.py)


# -- 13. access after the uninstall takes effect ------------------------------------------------------


def test_13_from_the_effective_date_every_check_answers_uninstalled(scenario: Scenario) -> None:
    scenario.account(users=1)
    scenario.contract(seats=1, months=3)
    scenario.installed()
    scenario.on("2026-02-10")
    scenario.assign(0, 1)
    done = scenario.app.purchases.uninstall("acme", SF, ADMIN)
    assert done["effective"] == "2026-04-01"
    scenario.app.purchases.open_ticket("acme", SF, "billing_cancellation", ADMIN)
    scenario.on("2026-03-31")
    assert scenario.app.check("acme", SF, "u0@acme.example", "cti").reason == "seated"
    scenario.on("2026-04-02")  # no sync, no uninstall hook ran
    decision = scenario.app.check("acme", SF, "u0@acme.example", "cti")
    assert (decision.allowed, decision.reason) == (False, "uninstalled")


# -- 15. before the term starts ------------------------------------------------------------------------


def test_15_before_the_term_starts_seats_and_quotes_answer(scenario: Scenario) -> None:
    scenario.account(users=2)
    scenario.contract(seats=1, mode="auto_expand", start=D(2026, 1, 1))
    scenario.on("2025-12-01")
    assigned = scenario.app.assign("acme", SF, emails(0, 2), ADMIN)
    assert assigned.assigned_count == 2 and assigned.refused == []
    quote = scenario.app.purchases.buy_seats("acme", SF, 1, ADMIN, confirm=False)
    assert quote["rest_of_term"] == {"start": "2026-01-01", "end": "2027-01-01"}
    # The whole first term of a seat bought now; it replaces one of the two additional seats.
    assert (quote["per_billing_period"], quote["prorated_rest_of_term"]) == ("25.00", "0.00")


# -- 16. regions belong to the policy -----------------------------------------------------------------


def test_16_a_region_the_policy_does_not_list_is_enabled_on_its_latest_date(
    scenario: Scenario,
) -> None:
    account = scenario.app.accounts.create("br", "br", admin="admin@br.example")
    assert account.region == "BR"
    enabled = scenario.app.accounts.enablement("BR")
    assert (enabled.day, enabled.listed) == (D(2025, 10, 25), False)
    assert "latest enablement date" in enabled.note
    with pytest.raises(BadInput, match="two-letter"):
        scenario.app.accounts.create("mars", "Mars")
