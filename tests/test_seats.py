"""Manage Seats (seed 000), on SQLite and on PostgreSQL.

- Hard cap: a seat beyond the contracted seats is refused (``capacity_reached``).
- Overage: users already above the contract when Manage Seats is enabled keep their seats
  (grandfathered) and keep working; no user can be added (``in_overage``) until assigned seats are
  back to the contracted number and below it, or more seats are bought.
- auto_expand (marketplace apps, seed 002): users may be added above the contracted quantity.
- Only an actor holding Install or Manage assigns seats; a refusal is audited (seed 002).
- The seat ledger and the audit log are append-only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock
from seatgate.core.domain.money import parse_amount
from seatgate.core.errors import NotAuthorized
from seatgate.core.services.seats import SeatsRefused
from seatgate.core.storage.tables import accounts as accounts_table
from seatgate.core.storage.tables import audit_log, integration_users, seat_ledger, seats

ADMIN = "admin@example.com"
FORGER = "forger@example.com"
PRODUCT = "salesforce"
TRANSITION = dt.datetime(2026, 2, 1, 12, tzinfo=dt.UTC)  # US: enabled, not yet restricted
RESTRICTED = dt.datetime(2026, 3, 20, 12, tzinfo=dt.UTC)
SETUP = dt.datetime(2025, 10, 1, 12, tzinfo=dt.UTC)  # before US enablement


def users(n: int, prefix: str = "agent") -> list[str]:
    return [f"{prefix}{i}@example.com" for i in range(1, n + 1)]


@pytest.fixture
def app(db_url: str, clock: FixedClock) -> Iterator[App]:
    """An App on SQLite and, in a second run, on PostgreSQL."""
    application = App(db_url, clock=clock)
    yield application
    application.db.dispose()


def open_account(
    app: App,
    *,
    seats: int,
    known: list[str],
    mode: str = "hard_cap",
    account: str = "acme",
    product: str | None = PRODUCT,
) -> None:
    """An account in the US whose admin holds Manage, with a contract (unless product is None)
    and integration users known before any sync — set up on 2025-10-01, before Manage Seats is
    enabled in the US (2025-10-25), so its users are the ones grandfathering covers (seed 000);
    the clock then goes back to where it was."""
    clock = app.clock
    assert isinstance(clock, FixedClock)
    now = clock.now()
    clock.set(SETUP)
    try:
        _open_account(app, seats=seats, known=known, mode=mode, account=account, product=product)
    finally:
        clock.set(now)


def _open_account(
    app: App, *, seats: int, known: list[str], mode: str, account: str, product: str | None
) -> None:
    app.accounts.create(account, "US")
    app.accounts.grant(account, ADMIN, "manage", None)
    if product is not None:
        app.contracts.create(
            account,
            product,
            seats=seats,
            plan="standard",
            frequency="monthly",
            start=dt.date(2025, 10, 1),
            months=12,
            # A marketplace purchase is at the listed price (tester report item 6): no price
            # of its own.
            unit_price=None if mode == "auto_expand" else parse_amount("30"),
            mode=mode,
            channel="marketplace" if mode == "auto_expand" else "order_form",
        )
    if known:
        app.accounts.add_users(account, known)


def seated(app: App, account: str = "acme", product: str = PRODUCT) -> set[str]:
    with app.db.read() as conn:
        rows = conn.execute(
            sa.select(integration_users.c.email)
            .join(seats, seats.c.user_id == integration_users.c.id)
            .join(accounts_table, accounts_table.c.id == integration_users.c.account_id)
            .where(accounts_table.c.name == account, seats.c.product == product)
        )
        return {r[0] for r in rows}


def count(app: App, table: sa.Table, **where: Any) -> int:
    query = sa.select(sa.func.count()).select_from(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    with app.db.read() as conn:
        return int(conn.execute(query).scalar_one())


def add_newcomer(app: App) -> None:
    """A user who joins after Manage Seats was enabled (grandfathering does not cover them)."""
    app.accounts.add_users("acme", ["newcomer@example.com"])


def refusals(result: Any) -> dict[str, str]:
    return {r["email"]: r["reason"] for r in result.refused}


# -- hard cap ----------------------------------------------------------------------------------------


def test_hard_cap_refuses_seats_beyond_the_contract(app: App) -> None:
    open_account(app, seats=3, known=users(5))
    result = app.assign("acme", PRODUCT, users(5), ADMIN)
    assert result.newly_assigned == users(3)
    assert refusals(result) == {
        "agent4@example.com": "capacity_reached",
        "agent5@example.com": "capacity_reached",
    }
    assert (result.assigned_count, result.contracted, result.in_overage) == (3, 3, False)
    assert seated(app) == set(users(3))


def test_a_full_account_refuses_the_next_seat_in_a_later_command(app: App) -> None:
    open_account(app, seats=2, known=users(3))
    app.assign("acme", PRODUCT, users(2), ADMIN)
    result = app.assign("acme", PRODUCT, ["agent3@example.com"], ADMIN)
    assert refusals(result) == {"agent3@example.com": "capacity_reached"}
    assert seated(app) == set(users(2))


# -- overage: grandfathering at enablement, then the lock --------------------------------------------


def test_grandfathering_seats_every_user_even_above_the_contract(app: App) -> None:
    open_account(app, seats=3, known=users(5))
    result = app.grandfather("acme", PRODUCT, ADMIN)
    assert sorted(result.newly_assigned) == users(5)
    assert (result.assigned_count, result.contracted, result.in_overage) == (5, 3, True)
    assert seated(app) == set(users(5))


def test_in_overage_no_admin_can_add_a_user(app: App) -> None:
    open_account(app, seats=3, known=users(5))
    app.grandfather("acme", PRODUCT, ADMIN)
    add_newcomer(app)
    result = app.assign("acme", PRODUCT, ["newcomer@example.com"], ADMIN)
    assert refusals(result) == {"newcomer@example.com": "in_overage"}
    assert result.in_overage
    assert "newcomer@example.com" not in seated(app)


@pytest.mark.parametrize("instant", [TRANSITION, RESTRICTED], ids=["transition", "restricted"])
def test_grandfathered_users_keep_working_in_overage(app: App, instant: dt.datetime) -> None:
    open_account(app, seats=3, known=users(5))
    app.grandfather("acme", PRODUCT, ADMIN)
    for email in users(5):
        decision = app.check("acme", PRODUCT, email, "cti", instant)
        assert (decision.allowed, decision.reason) == (True, "seated"), email
        assert (decision.assigned, decision.contracted) == (5, 3)


def test_the_overage_lock_lifts_once_below_capacity(app: App) -> None:
    open_account(app, seats=3, known=users(5))
    app.grandfather("acme", PRODUCT, ADMIN)
    add_newcomer(app)
    newcomer = ["newcomer@example.com"]

    # 4 seats of 3: still in overage.
    after = app.unassign("acme", PRODUCT, ["agent5@example.com"], ADMIN)
    assert (after.assigned_count, after.in_overage) == (4, True)
    assert refusals(app.assign("acme", PRODUCT, newcomer, ADMIN)) == {newcomer[0]: "in_overage"}

    # 3 of 3: out of overage, but the account is full.
    after = app.unassign("acme", PRODUCT, ["agent4@example.com"], ADMIN)
    assert (after.assigned_count, after.in_overage) == (3, False)
    assert refusals(app.assign("acme", PRODUCT, newcomer, ADMIN)) == {
        newcomer[0]: "capacity_reached"
    }

    # 2 of 3: a seat is free, the newcomer gets it.
    app.unassign("acme", PRODUCT, ["agent3@example.com"], ADMIN)
    result = app.assign("acme", PRODUCT, newcomer, ADMIN)
    assert result.newly_assigned == newcomer
    assert (result.assigned_count, result.contracted, result.in_overage) == (3, 3, False)


def test_buying_seats_lifts_the_overage_lock(app: App) -> None:
    open_account(app, seats=3, known=users(5))
    app.grandfather("acme", PRODUCT, ADMIN)
    add_newcomer(app)
    app.set_quantity("acme", PRODUCT, 6, actor=ADMIN)
    result = app.assign("acme", PRODUCT, ["newcomer@example.com"], ADMIN)
    assert result.newly_assigned == ["newcomer@example.com"]
    assert (result.assigned_count, result.contracted, result.in_overage) == (6, 6, False)


def test_lowering_the_contract_below_the_seats_puts_the_account_in_overage(app: App) -> None:
    open_account(app, seats=4, known=[*users(4), "newcomer@example.com"])
    app.assign("acme", PRODUCT, users(4), ADMIN)
    app.set_quantity("acme", PRODUCT, 2, actor=ADMIN)
    assert seated(app) == set(users(4))  # a contract change never takes seats away
    result = app.assign("acme", PRODUCT, ["newcomer@example.com"], ADMIN)
    assert refusals(result) == {"newcomer@example.com": "in_overage"}


# -- auto_expand -------------------------------------------------------------------------------------


def test_auto_expand_adds_users_above_the_contracted_quantity(app: App) -> None:
    open_account(app, seats=2, known=users(5), mode="auto_expand")
    result = app.assign("acme", PRODUCT, users(5), ADMIN)
    assert result.newly_assigned == users(5)
    assert result.refused == []
    assert (result.assigned_count, result.contracted, result.in_overage) == (5, 2, False)


# -- purchasing authority ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "actor", ["someone@example.com", None], ids=["actor without permission", "no actor"]
)
def test_an_actor_without_install_or_manage_is_refused_and_audited(
    app: App, actor: str | None
) -> None:
    open_account(app, seats=5, known=users(2))
    with pytest.raises(SeatsRefused) as refused:
        app.assign("acme", PRODUCT, users(2), actor)
    assert refusals(refused.value.result) == dict.fromkeys(users(2), "not_authorized")
    assert seated(app) == set()
    assert count(app, seat_ledger) == 0
    # The refused action rolled back; its audit row was committed on its own.
    assert count(app, audit_log, action="seats.assign", outcome="not_authorized") == 1
    assert count(app, audit_log, action="seats.assign", outcome="ok") == 0


def test_unassign_without_permission_is_refused_and_audited(app: App) -> None:
    open_account(app, seats=5, known=users(2))
    app.assign("acme", PRODUCT, users(2), ADMIN)
    with pytest.raises(NotAuthorized):
        app.unassign("acme", PRODUCT, users(1), "intruder@example.com")
    assert seated(app) == set(users(2))
    assert count(app, audit_log, action="seats.unassign", outcome="not_authorized") == 1


def test_install_permission_is_enough_to_assign(app: App) -> None:
    open_account(app, seats=5, known=users(1))
    app.accounts.grant("acme", "Installer@Example.com", "install", ADMIN)  # a manage holder
    result = app.assign("acme", PRODUCT, users(1), "installer@example.com")
    assert result.newly_assigned == users(1)


# -- refusals per user -------------------------------------------------------------------------------


def test_no_contract_for_the_product_refuses_every_user(app: App) -> None:
    open_account(app, seats=1, known=users(2), product=None)
    result = app.assign("acme", PRODUCT, users(2), ADMIN)
    assert refusals(result) == dict.fromkeys(users(2), "no_contract")
    assert count(app, seats) == 0


def test_an_unknown_user_is_refused_and_the_others_assigned(app: App) -> None:
    open_account(app, seats=5, known=users(2))
    result = app.assign("acme", PRODUCT, [*users(2), "stranger@example.com"], ADMIN)
    assert result.newly_assigned == users(2)
    assert refusals(result) == {"stranger@example.com": "unknown_user"}


def test_an_inactive_user_is_refused(app: App) -> None:
    open_account(app, seats=5, known=users(2))
    with app.db.write() as conn:  # as a CRM sync would, on a user deactivated in the CRM
        conn.execute(
            integration_users.update()
            .where(integration_users.c.email == "agent2@example.com")
            .values(active=False)
        )
    result = app.assign("acme", PRODUCT, users(2), ADMIN)
    assert result.newly_assigned == users(1)
    assert refusals(result) == {"agent2@example.com": "inactive_user"}


def test_a_user_of_another_account_is_unknown_here(app: App) -> None:
    open_account(app, seats=5, known=users(1))
    open_account(app, seats=5, known=["other@example.com"], account="globex")
    result = app.assign("acme", PRODUCT, ["other@example.com"], ADMIN)
    assert refusals(result) == {"other@example.com": "unknown_user"}


# -- the record --------------------------------------------------------------------------------------


def test_every_seat_change_goes_to_the_ledger(app: App) -> None:
    open_account(app, seats=3, known=users(3))
    app.assign("acme", PRODUCT, users(3), ADMIN)
    app.unassign("acme", PRODUCT, users(1), ADMIN)
    with app.db.read() as conn:
        rows = conn.execute(sa.select(seat_ledger).order_by(seat_ledger.c.id)).all()
    assert [(r.email, r.action, r.actor, r.assigned_after) for r in rows] == [
        ("agent1@example.com", "assign", ADMIN, 1),
        ("agent2@example.com", "assign", ADMIN, 2),
        ("agent3@example.com", "assign", ADMIN, 3),
        ("agent1@example.com", "unassign", ADMIN, 2),
    ]


@pytest.mark.parametrize("table", ["seat_ledger", "audit_log"])
@pytest.mark.parametrize("verb", ["UPDATE", "DELETE"])
def test_the_ledger_and_the_audit_log_are_append_only(app: App, table: str, verb: str) -> None:
    open_account(app, seats=2, known=users(2))
    app.assign("acme", PRODUCT, users(2), ADMIN)
    before = count(app, seat_ledger if table == "seat_ledger" else audit_log)
    assert before > 0
    statement = (
        f"UPDATE {table} SET actor = '{FORGER}'" if verb == "UPDATE" else f"DELETE FROM {table}"
    )
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), app.db.write() as conn:
        conn.execute(sa.text(statement))
    assert count(app, seat_ledger if table == "seat_ledger" else audit_log) == before
    assert count(app, seat_ledger if table == "seat_ledger" else audit_log, actor=FORGER) == 0


def test_assigning_again_is_a_no_op(app: App) -> None:
    open_account(app, seats=3, known=users(3))
    first = app.assign("acme", PRODUCT, users(2), ADMIN)
    ledger = count(app, seat_ledger)
    again = app.assign("acme", PRODUCT, users(2), ADMIN)
    assert again.assigned == users(2)
    assert again.newly_assigned == []
    assert again.refused == []
    assert again.assigned_count == first.assigned_count == 2
    assert count(app, seat_ledger) == ledger


def test_assigning_again_when_full_is_not_a_refusal(app: App) -> None:
    open_account(app, seats=2, known=users(2))
    app.assign("acme", PRODUCT, users(2), ADMIN)
    again = app.assign("acme", PRODUCT, users(2), ADMIN)
    assert again.refused == []
    assert again.assigned == users(2)


def test_grandfathering_runs_once(app: App) -> None:
    open_account(app, seats=1, known=users(3))
    app.grandfather("acme", PRODUCT, ADMIN)
    ledger = count(app, seat_ledger)
    app.accounts.add_users("acme", ["late@example.com"])
    again = app.grandfather("acme", PRODUCT, ADMIN)
    assert again.newly_assigned == []
    assert count(app, seat_ledger) == ledger
    assert seated(app) == set(users(3))


def test_unassigning_a_user_without_a_seat_is_refused(app: App) -> None:
    open_account(app, seats=2, known=users(2))
    app.assign("acme", PRODUCT, users(1), ADMIN)
    result = app.unassign("acme", PRODUCT, users(2), ADMIN)
    assert result.unassigned == users(1)
    assert refusals(result) == {"agent2@example.com": "not_assigned"}
    assert seated(app) == set()


# -- emails ------------------------------------------------------------------------------------------


def test_emails_are_case_insensitive(app: App) -> None:
    open_account(app, seats=2, known=["Ann.Lee@Example.COM"])
    done = app.accounts.add_users("acme", ["ANN.LEE@example.com"])
    added, known = done.added, done.already_known
    assert (added, known) == ([], ["ann.lee@example.com"])

    result = app.assign("acme", PRODUCT, ["ann.lee@EXAMPLE.com"], ADMIN)
    assert result.newly_assigned == ["ann.lee@example.com"]
    again = app.assign("acme", PRODUCT, [" ANN.LEE@example.com ", "Ann.Lee@Example.COM"], ADMIN)
    assert again.newly_assigned == []
    assert again.assigned_count == 1

    decision = app.check("acme", PRODUCT, "Ann.Lee@EXAMPLE.com", "cti", RESTRICTED)
    assert (decision.allowed, decision.reason) == (True, "seated")
    assert app.unassign("acme", PRODUCT, ["ANN.lee@example.com"], ADMIN).unassigned == [
        "ann.lee@example.com"
    ]
    assert seated(app) == set()
