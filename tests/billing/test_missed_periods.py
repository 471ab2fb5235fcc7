"""A period whose month was run before its contract was recorded (an order form entered late,
backdated to its signed start) is invoiced by the next run: a period is invoiced in the month it
starts, so no later run had billed it, and the month's base was lost unless someone re-ran that
month (docs/billing.md, "What an invoice holds")."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from pathlib import Path

from billing_scenario import Scenario, kinds
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seatgate.core.domain.calendar import add_months
from seatgate.core.storage.tables import billed_periods


def test_a_backdated_contract_recorded_after_its_months_run_is_billed_by_the_next_run(
    scenario: Scenario,
) -> None:
    scenario.account()
    assert scenario.on("2026-03-01").run("2026-03")["count"] == 0  # no contract yet
    scenario.on("2026-03-20").contract(start=dt.date(2026, 3, 1))
    april = scenario.on("2026-04-01").invoice("2026-04")
    assert kinds(april) == [
        ("base", "250.00", "2026-03-01", "2026-04-01"),
        ("base", "250.00", "2026-04-01", "2026-05-01"),
    ]
    assert scenario.run("2026-03")["count"] == 0  # March again: invoiced once, in April
    assert kinds(scenario.on("2026-05-01").invoice("2026-05")) == [
        ("base", "250.00", "2026-05-01", "2026-06-01")
    ]


def test_a_month_never_run_keeps_its_period_for_its_own_run(scenario: Scenario) -> None:
    scenario.account()
    scenario.on("2026-03-20").contract(start=dt.date(2026, 3, 1))
    april = scenario.on("2026-04-01").invoice("2026-04")
    assert kinds(april) == [("base", "250.00", "2026-04-01", "2026-05-01")]
    march = scenario.invoice("2026-03")
    assert kinds(march) == [("base", "250.00", "2026-03-01", "2026-04-01")]


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    start=st.integers(0, 11),  # months before the contract is recorded (2027-01)
    early=st.sets(st.integers(0, 11)),  # months (before the recording) already run
    frequency=st.sampled_from(["monthly", "quarterly", "annual"]),
)
def test_every_period_up_to_the_last_run_is_invoiced_exactly_once(
    tmp_path: Path, start: int, early: set[int], frequency: str
) -> None:
    """The kind: whatever months were run before the contract was recorded, running every month
    from then on invoices every period that started by the last run once, and none twice."""
    # One database per example (hypothesis runs them all in one tmp_path).
    scenario = Scenario(f"sqlite:///{tmp_path / f'{uuid.uuid4().hex}.db'}")
    try:
        recorded = dt.date(2027, 1, 1)
        first = add_months(recorded, -12)
        scenario.account()
        runs = [add_months(first, m) for m in sorted(early)]
        for month in runs:
            scenario.on(month.isoformat()).run(month.strftime("%Y-%m"))
        anchor = add_months(first, start)
        scenario.on(recorded.isoformat()).contract(start=anchor, frequency=frequency, months=12)
        later = [add_months(recorded, m) for m in range(4)]
        for month in later:
            scenario.on(month.isoformat()).run(month.strftime("%Y-%m"))
        with scenario.app.db.read() as conn:
            invoiced = Counter(r.period_start for r in conn.execute(billed_periods.select()))
        step = {"monthly": 1, "quarterly": 3, "annual": 12}[frequency]
        starts = [add_months(anchor, k * step) for k in range(20)]
        ran = set(runs) | set(later)
        expected = [day for day in starts if day <= later[-1] and day.replace(day=1) in ran]
        assert sorted(invoiced) == expected and set(invoiced.values()) == (
            {1} if expected else set()
        )
    finally:
        scenario.app.db.dispose()
