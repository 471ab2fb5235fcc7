"""Seed 002, "Purchasing Authority": adding users is a purchase, recorded as a commitment with the
indicative price of the users the contract does not cover."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from billing_scenario import ADMIN, Scenario

from seatgate.core.domain.events import UsersActivated
from seatgate.core.errors import NotFound
from seatgate.core.plugins.default_billing import BillingListener
from seatgate.core.storage.tables import commitments


def added_users(scenario: Scenario) -> list[sa.Row]:
    with scenario.app.db.read() as conn:
        query = sa.select(commitments).where(commitments.c.action == "add_users")
        return list(conn.execute(query.order_by(commitments.c.id)))


def test_users_within_the_contract_are_a_commitment_priced_at_nothing(scenario: Scenario) -> None:
    scenario.account(users=3)
    scenario.contract(seats=10)
    scenario.on("2026-01-10").assign(0, 3)
    (row,) = added_users(scenario)
    assert row.actor == ADMIN
    assert row.detail["added"] == 3 and row.detail["above_contract"] == 0
    assert str(row.price_shown) == "0.00"  # shown with the currency's minor unit (item 10)


def test_users_above_an_auto_expand_contract_show_their_price_per_billing_period(
    scenario: Scenario,
) -> None:
    scenario.account(users=4)
    scenario.contract(seats=2, mode="auto_expand", frequency="quarterly")
    scenario.on("2026-01-10").assign(0, 1)
    scenario.assign(1, 4)  # 4 users on 2 seats: the last two are above the contract
    first, second = added_users(scenario)
    assert first.detail["above_contract"] == 0
    assert second.detail["above_contract"] == 2
    assert str(second.price_shown) == "150.00"  # 2 users x 25.00 a month x 3 months
    assert second.currency == "USD"


def test_a_refused_assignment_records_no_commitment(scenario: Scenario) -> None:
    scenario.account(users=3)
    scenario.contract(seats=1)
    scenario.on("2026-01-10").assign(0, 1)
    result = scenario.app.assign("acme", "salesforce", ["u1@acme.example"], ADMIN)
    assert result.refused == [{"email": "u1@acme.example", "reason": "capacity_reached"}]
    assert len(added_users(scenario)) == 1


def activated(account: str, email: str, at: dt.datetime) -> UsersActivated:
    return UsersActivated(
        account=account, product="salesforce", at=at, emails=(email,), actor=ADMIN,
        assigned_after=1, price_shown="0.00", currency="USD",
    )  # fmt: skip


def test_a_delivered_batch_records_its_commitments_in_one_transaction_once_each(
    scenario: Scenario,
) -> None:
    """The listener hears the outbox's batch at once (seatgate_events): one transaction for all
    of its commitments, and a batch delivered again after a crash records nothing new."""
    scenario.account(users=3)
    at = scenario.clock.now()
    batch = [activated("acme", f"u{i}@acme.example", at) for i in range(3)]
    listener = BillingListener(scenario.app.ports)
    commits: list[object] = []
    engine, count = scenario.app.db.engine, commits.append
    sa.event.listen(engine, "commit", count)
    try:
        listener.seatgate_events(batch)
    finally:
        sa.event.remove(engine, "commit", count)
    assert len(commits) == 1
    rows = added_users(scenario)
    assert [r.event_id for r in rows] == [e.id for e in batch]
    listener.seatgate_events(batch)
    assert len(added_users(scenario)) == 3


def test_one_event_the_store_refuses_costs_no_other_event_its_commitment(
    scenario: Scenario,
) -> None:
    scenario.account(users=2)
    at = scenario.clock.now()
    batch = [
        activated("acme", "u0@acme.example", at),
        activated("ghost", "g@ghost.example", at),  # no such account
        activated("acme", "u1@acme.example", at),
    ]
    with pytest.raises(NotFound, match="ghost"):
        BillingListener(scenario.app.ports).seatgate_events(batch)
    assert [r.event_id for r in added_users(scenario)] == [batch[0].id, batch[2].id]
