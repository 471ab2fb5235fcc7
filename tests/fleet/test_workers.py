"""Issue 17: syncs on real Celery worker processes, with PostgreSQL as the store and Redis as the
broker — every connector synced exactly once per due period, a worker killed with SIGKILL mid-run,
a duplicate enqueue skipped and recorded, the CRM's throttle shared by the workers."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from seatgate.adapters.hubspot.sandbox import HubSpotSandbox
from seatgate.adapters.pega.sandbox import PegaSandbox
from seatgate.adapters.salesforce.sandbox import SalesforceSandbox
from seatgate.adapters.servicenow.sandbox import ServiceNowSandbox
from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock, parse_instant
from seatgate.core.plugins import Sandbox
from seatgate.core.testing.setup import account_with_contract

from .harness import (
    CLI,
    agents,
    all_done,
    fixed_app,
    fleet_env,
    install_sandbox,
    prepare,
    runs_per_connector,
    tasks,
    tick,
    wait_for,
    workers,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

# In the transition phase (US): unseated users are still synced as agents, so every user is one.
T0 = parse_instant("2026-02-02T09:00:00Z")


@pytest.fixture
def fleet(
    postgres_url: str, redis_url: str, redis_prefix: str
) -> Iterator[tuple[App, FixedClock, dict[str, str]]]:
    app, clock = fixed_app(postgres_url, T0)
    env = fleet_env(postgres_url, redis_url, redis_prefix)
    yield app, clock, env
    app.close()


def slow(base: type[Sandbox]) -> type[Any]:
    """``base`` (a sandbox), answering each request after ``delay`` seconds (a slow CRM), noting
    when each request arrived and when each 429 was sent; faults meet API requests only."""

    class Slow(base):  # type: ignore[valid-type,misc]
        def __init__(self, users: int, delay: float) -> None:
            super().__init__(users=users)
            self.delay = delay
            self.arrivals: list[float] = []
            self.throttled_at: list[float] = []

        def route(self, request: Any) -> Any:
            self.arrivals.append(time.monotonic())
            time.sleep(self.delay)
            return super().route(request)

        def _next_fault(self, request: Any) -> str | None:
            # The fault meets the CRM's API, not a login: a login's throttling is its own
            # answer (Salesforce's SOAP fault carries no wait).
            if self.is_auth(request):
                with self._lock:
                    self._count(request)
                return None
            return super()._next_fault(request)

        def fault_response(self, fault: str, request: Any) -> Any:
            self.arrivals.append(time.monotonic())
            if fault == "rate_limit":
                self.throttled_at.append(time.monotonic())
            return super().fault_response(fault, request)

    Slow.__name__ = f"Slow{base.__name__}"
    return Slow


SlowPega = slow(PegaSandbox)

# Every adapter's throttle is shared by the workers: the kit's HttpClient (Pega) and the vendor
# libraries' transports (Salesforce, ServiceNow, HubSpot). Pages of 50: 30 requests a run.
THROTTLED = {
    "pega": (SlowPega, {"page_size": 50}),
    "salesforce": (slow(SalesforceSandbox), {}),
    "servicenow": (slow(ServiceNowSandbox), {}),
    "hubspot": (slow(HubSpotSandbox), {}),
}


def test_two_workers_sync_every_connector_once_per_due_period(
    fleet: tuple[App, FixedClock, dict[str, str]], tmp_path: Path
) -> None:
    app, clock, env = fleet
    with PegaSandbox(users=200) as crm:
        _names, secrets = prepare(app, 12, {"pega": crm})
        env.update(secrets)
        with workers(env, tmp_path, 2) as started:
            logs = [w.log for w in started]
            sent = tick(app, env)
            assert len(sent) == 12 and not any(d.error for d in sent)
            # A second tick while they wait or run enqueues nothing more.
            assert tick(app, env) == []
            wait_for(lambda: all_done(app), 120, "the first period's runs", logs)
            done = tasks(app)
            assert {t.outcome for t in done} == {"succeeded"}
            assert {t.worker.split(":")[0] for t in done}  # host:pid recorded
            assert len({t.worker for t in done}) == 2, "both workers took tasks"
            assert sorted(runs_per_connector(app).values()) == [1] * 12
            assert agents(app) == (12 * 200, 12 * 200)
            # Same period: nothing is due.
            assert tick(app, env) == []
            # The next period (the interval is 60 minutes): each connector once more.
            clock.advance(minutes=60)
            assert len(tick(app, env)) == 12
            wait_for(lambda: all_done(app), 120, "the second period's runs", logs)
            assert sorted(runs_per_connector(app).values()) == [2] * 12
            assert agents(app) == (12 * 200, 12 * 200)


def test_a_disabled_connector_leaves_the_schedule_and_an_enabled_one_joins_it(
    fleet: tuple[App, FixedClock, dict[str, str]], tmp_path: Path
) -> None:
    app, _clock, env = fleet
    with PegaSandbox(users=20) as crm:
        names, secrets = prepare(app, 3, {"pega": crm})
        env.update(secrets)
        app.installs.set_enabled(names[0], "pega", False, "admin@fleet.example")
        assert sorted(a for a, _ in app.fleet.due()) == names[1:]
        app.installs.set_enabled(names[0], "pega", True, "admin@fleet.example")
        assert sorted(a for a, _ in app.fleet.due()) == names


def test_a_worker_killed_mid_run_the_task_completes_on_another(
    fleet: tuple[App, FixedClock, dict[str, str]], tmp_path: Path
) -> None:
    app, _clock, env = fleet
    env["SEATGATE_VISIBILITY_TIMEOUT"] = "3"
    with SlowPega(users=3000, delay=0.15) as crm:
        _, secrets = prepare(app, 1, {"pega": crm}, page_size=100)
        env.update(secrets)
        with workers(env, tmp_path / "a", 1) as (first,):
            (task,) = tick(app, env)
            wait_for(
                lambda: tasks(app)[0].state == "running" and len(crm.arrivals) >= 8,
                60,
                "the run to be under way",
                [first.log],
            )
            first.kill()
        assert tasks(app)[0].state == "running"  # its worker died holding it
        assert runs_per_connector(app) == {}  # nothing of the run was committed
        assert agents(app) == (0, 0)
        with workers(env, tmp_path / "b", 1) as (second,):
            wait_for(lambda: all_done(app), 120, "the redelivered run", [second.log])
        (done,) = tasks(app)
        assert done.id == task.task
        assert done.outcome == "succeeded"
        assert done.deliveries == 2, "redelivered once after the kill"
        assert done.worker.split(":")[1] == str(second.pid)
        assert list(runs_per_connector(app).values()) == [1]
        assert agents(app) == (3000, 3000)  # no duplicate agent, no lost user


def test_a_duplicate_enqueue_is_skipped_and_recorded(
    fleet: tuple[App, FixedClock, dict[str, str]], tmp_path: Path
) -> None:
    from seatgate.core.entrypoints.worker.app import create_app, enqueue_one
    from seatgate.core.entrypoints.worker.settings import FleetSettings

    app, _clock, env = fleet
    with SlowPega(users=1000, delay=0.1) as crm:
        _, secrets = prepare(app, 1, {"pega": crm}, page_size=100)
        env.update(secrets)
        with workers(env, tmp_path, 2) as started:
            celery = create_app(FleetSettings.from_env(env))
            first = enqueue_one(celery, app, "acct000", "pega")
            wait_for(
                lambda: tasks(app)[0].state == "running",
                60,
                "the first run",
                [w.log for w in started],
            )
            second = enqueue_one(celery, app, "acct000", "pega")
            wait_for(lambda: all_done(app), 120, "both deliveries", [w.log for w in started])
            celery.close()
        by_id = {t.id: t for t in tasks(app)}
        assert by_id[first.task].outcome == "succeeded"
        assert by_id[second.task].state == "skipped"
        status = app.fleet.status()
        (skip,) = status.skipped
        assert (skip.task, skip.account, skip.product) == (second.task, "acct000", "pega")
        assert "holds its lock" in skip.reason
        assert list(runs_per_connector(app).values()) == [1]


@pytest.mark.parametrize("product", sorted(THROTTLED))
def test_a_retry_after_seen_by_one_worker_pauses_the_other(
    fleet: tuple[App, FixedClock, dict[str, str]], tmp_path: Path, product: str
) -> None:
    app, _clock, env = fleet
    sandbox, core = THROTTLED[product]
    with sandbox(users=1500, delay=0.05) as crm:
        crm.retry_after = 3
        crm.page_size = 50
        _, secrets = prepare(app, 2, {product: crm}, **core)
        env.update(secrets)
        with workers(env, tmp_path, 2) as started:
            logs = [w.log for w in started]
            tick(app, env)
            wait_for(
                lambda: (
                    [t.state for t in tasks(app)] == ["running", "running"]
                    and len(crm.arrivals) >= 6
                ),
                60,
                "both runs under way",
                logs,
            )
            crm.inject("rate_limit")
            wait_for(lambda: all_done(app), 120, "both runs", logs)
        assert {t.outcome for t in tasks(app)} == {"succeeded"}
        (throttled,) = crm.throttled_at
        # Retry-After: 3 — neither worker called the CRM again before it was over (a little
        # slack for the clocks of Redis and of this process).
        early = [a for a in crm.arrivals if throttled + 0.01 < a < throttled + 3 - 0.25]
        assert early == [], f"{len(early)} request(s) inside the pause"
        after = [a for a in crm.arrivals if a > throttled]
        assert len(after) >= 2  # both runs went on afterwards
        total, distinct = agents(app)
        assert total == distinct > 0
        if product == "pega":
            assert total == 3000


def test_fleet_status_shows_the_ledger(
    fleet: tuple[App, FixedClock, dict[str, str]], tmp_path: Path
) -> None:
    app, clock, env = fleet
    with PegaSandbox(users=5) as crm:
        prepare(app, 2, {"pega": crm})
        sent = tick(app, env)  # no worker: they stay queued
        status = app.fleet.status()
        assert [t.id for t in status.queued] == [d.task for d in sent]
        assert status.counts["queued"] == 2
        clock.advance(hours=3)  # past the stale age: lost, no longer holding the schedule
        status = app.fleet.status()
        assert status.queued == [] and len(status.stale) == 2
        assert len(app.fleet.due()) == 2


def test_beat_reads_the_schedule_at_each_tick_without_a_restart(
    fleet: tuple[App, FixedClock, dict[str, str]], tmp_path: Path
) -> None:

    app, _clock, env = fleet
    env["SEATGATE_BEAT_INTERVAL"] = "1"
    with PegaSandbox(users=50) as crm:
        _, secrets = prepare(app, 2, {"pega": crm})
        env.update(secrets)
        with workers(env, tmp_path, 1) as (worker,):
            log = (tmp_path / "beat.log").open("w")
            beat = subprocess.Popen(
                [*CLI, "--as-of", "2026-02-02T09:00:00Z", "beat"],
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=tmp_path,
            )
            try:
                logs = [worker.log, tmp_path / "beat.log"]
                wait_for(lambda: len(runs_per_connector(app)) == 2, 60, "the first ticks", logs)
                time.sleep(3)  # three more ticks: nothing is due again as of the same instant
                assert sorted(runs_per_connector(app).values()) == [1, 1]
                # A connector added while beat runs joins the schedule at its next tick.
                account_with_contract(app, "late", "pega", admin="admin@fleet.example", region="US")
                install_sandbox(app, "late", "pega", crm)
                wait_for(lambda: len(runs_per_connector(app)) == 3, 60, "the new connector", logs)
                assert sorted(runs_per_connector(app).values()) == [1, 1, 1]
                assert len(tasks(app)) == 3  # each enqueued once over all the ticks
            finally:
                beat.terminate()
                beat.wait(20)
                log.close()


def test_fleet_dispatch_enqueue_and_status_from_the_command_line(
    fleet: tuple[App, FixedClock, dict[str, str]], tmp_path: Path
) -> None:
    import json

    app, _clock, env = fleet
    with PegaSandbox(users=5) as crm:
        _, secrets = prepare(app, 2, {"pega": crm})
        env.update(secrets)
        run_env = {**os.environ, **env, "SEATGATE_NOW": "2026-02-02T09:00:00Z"}

        def seatgate(*args: str) -> tuple[int, Any]:
            done = subprocess.run(
                [*CLI, "--json", *args], env=run_env, capture_output=True, text=True, cwd=tmp_path
            )
            assert "Traceback" not in done.stderr
            return done.returncode, json.loads(done.stdout)

        code, sent = seatgate("fleet", "dispatch")
        assert code == 0 and sorted(d["account"] for d in sent["enqueued"]) == [
            "acct000",
            "acct001",
        ]
        assert seatgate("fleet", "dispatch") == (0, {"enqueued": []})
        code, one = seatgate("fleet", "enqueue", "acct000", "pega")
        assert code == 0 and one["enqueued"][0]["product"] == "pega"
        code, missing = seatgate("fleet", "enqueue", "nobody", "pega")
        assert code == 2 and "nobody" in missing["error"]["message"]
        code, status = seatgate("fleet", "status")
        assert code == 0 and status["counts"]["queued"] == 3 and len(status["queued"]) == 3
