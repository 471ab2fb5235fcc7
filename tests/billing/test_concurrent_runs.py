"""Two billing runs of the same month at once still invoice each contract period once."""

from __future__ import annotations

import threading

from billing_scenario import Scenario

from seatgate.core.bootstrap import App
from seatgate.core.storage.tables import billed_periods, invoices


def test_two_runs_at_once_issue_one_invoice(scenario: Scenario) -> None:
    scenario.account(users=3)
    scenario.contract(seats=3)
    scenario.on("2026-01-02")
    apps = [App(scenario.app.db.url, clock=scenario.clock) for _ in range(2)]
    counts: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2, timeout=30)

    def run(app: App) -> None:
        try:
            barrier.wait()
            counts.append(app.billing.run("2026-01")["count"])
        except BaseException as exc:  # reported below: a thread's exception would be lost
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(app,)) for app in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for app in apps:
        app.db.dispose()
    assert errors == []
    assert sorted(counts) == [0, 1]
    assert scenario.count(invoices) == scenario.count(billed_periods) == 1
