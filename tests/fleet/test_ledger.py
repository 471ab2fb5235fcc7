"""The fleet's ledger, locks, settings and commands without a broker (issue 17): the lock of a
connector is held once across processes and freed when its holder's session dies, the ledger's
states, ``fleet status`` on SQLite and PostgreSQL, bad settings refused in one line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock
from seatgate.core.entrypoints.cli import main_group
from seatgate.core.entrypoints.worker.settings import FleetSettings
from seatgate.core.errors import BadInput
from seatgate.core.plugins.manager import build_plugin_manager
from seatgate.core.services.fleet import RunReport
from seatgate.core.storage.db import Database
from seatgate.core.storage.fleet import ConnectorLocks, lock_key
from seatgate.core.testing.memory import MemoryAdapter, MemorySandbox
from seatgate.core.testing.setup import account_with_contract

ADMIN = "admin@fleet.example"
KEY_ENV = "FLEET_MEMORY_TEST_KEY"


def test_a_connector_lock_is_held_once_and_freed_with_its_session(postgres_url: str) -> None:
    one, two = Database(postgres_url), Database(postgres_url)
    try:
        first, second = ConnectorLocks(one), ConnectorLocks(two)
        with first.hold("acme", "pega") as held:
            assert held
            with second.hold("acme", "pega") as again:
                assert not again
            with second.hold("acme", "hubspot") as other:
                assert other  # another connector: its own lock
        with second.hold("acme", "pega") as now:
            assert now
        # A holder whose session dies (a worker killed) frees the lock at once.
        with first.hold("acme", "pega") as held:
            assert held
            with one.engine.connect() as conn:
                key = lock_key(first._scope or "", "acme", "pega") & 0xFFFFFFFFFFFFFFFF
                pids = (
                    conn.execute(
                        sa.text(
                            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                            "AND classid::bigint = :hi AND objid::bigint = :lo AND objsubid = 1"
                        ),
                        {"hi": key >> 32, "lo": key & 0xFFFFFFFF},
                    )
                    .scalars()
                    .all()
                )
                assert len(pids) == 1
                # With a timeout (milliseconds) it returns once the session has ended; without
                # one it returns at the signal, and the lock may still be held (a flaky test).
                ended = conn.execute(sa.select(sa.func.pg_terminate_backend(pids[0], 10_000)))
                assert ended.scalar_one() is True
            with second.hold("acme", "pega") as taken:
                assert taken
        # Leaving the dead holder's block raised nothing: its lock went with its session.
        with first.hold("acme", "pega") as back:
            assert back
    finally:
        one.dispose()
        two.dispose()


def test_the_lock_keys_differ_by_schema_account_and_product() -> None:
    keys = {
        lock_key("db/a", "acme", "pega"),
        lock_key("db/b", "acme", "pega"),
        lock_key("db/a", "acme2", "pega"),
        lock_key("db/a", "acme", "pega2"),
    }
    assert len(keys) == 4
    assert all(-(2**63) <= k < 2**63 for k in keys)


def test_on_sqlite_the_lock_is_per_process(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    try:
        locks = ConnectorLocks(db)
        with locks.hold("acme", "pega") as held, locks.hold("acme", "pega") as again:
            assert held and not again
        with locks.hold("acme", "pega") as free:
            assert free
    finally:
        db.dispose()


@pytest.fixture
def fleet_app(db_url: str, clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    crm = MemorySandbox(users=30)
    monkeypatch.setenv(KEY_ENV, crm.settings()["api_key"])
    plugins = build_plugin_manager(
        builtins=(), entry_points=False, plugins=[("memory", MemoryAdapter())], strict=True
    )
    app = App(db_url, clock=clock, plugins=plugins)
    account_with_contract(app, "acme", "memory", admin=ADMIN, region="US")
    config = {"instance": crm.instance, "api_key": "${" + KEY_ENV + "}"}
    app.installs.install("acme", "memory", config, ADMIN)
    yield app  # the sandbox stays alive meanwhile: the adapter holds it weakly
    app.close()
    del crm


def test_a_task_runs_once_then_a_redelivery_does_nothing(fleet_app: App) -> None:
    app = fleet_app
    sent: list[tuple[int, str, str]] = []
    (d,) = app.fleet.dispatch(lambda *task: sent.append(task))
    assert sent == [(d.task, "acme", "memory", d.task_id)] and len(d.task_id) == 36
    assert app.fleet.due() == []  # queued: not enqueued again
    report = app.fleet.run(d.task, "host:1")
    assert (report.state, report.outcome, report.pulled) == ("done", "succeeded", 30)
    assert app.fleet.run(d.task, "host:2") == RunReport(
        d.task, "already_done", "succeeded", report.run_id
    )
    task = app.fleet.ledger.get(d.task)
    assert task is not None and task.deliveries == 1 and task.worker == "host:1"
    assert app.fleet.due() == []  # ran this period


def test_a_delivery_while_the_connector_runs_is_skipped_and_recorded(fleet_app: App) -> None:
    app = fleet_app
    first = app.fleet.enqueue("acme", "memory", lambda *task: None)
    second = app.fleet.enqueue("acme", "memory", lambda *task: None)
    with app.fleet.locks.hold("acme", "memory") as held:  # the first run, in progress
        assert held
        app.fleet.ledger.start(first.task, app.now(), "host:1")
        assert app.fleet.run(second.task, "host:2").state == "skipped"
    status = app.fleet.status()
    assert [t.id for t in status.running] == [first.task]
    (skip,) = status.skipped
    assert (skip.task, skip.worker, skip.account) == (second.task, "host:2", "acme")
    assert status.counts["skipped"] == 1 and status.counts["skipped_deliveries"] == 1


def test_a_skipped_task_delivered_again_is_not_started(fleet_app: App) -> None:
    app = fleet_app
    first = app.fleet.enqueue("acme", "memory", lambda *task: None)
    second = app.fleet.enqueue("acme", "memory", lambda *task: None)
    with app.fleet.locks.hold("acme", "memory"):
        assert app.fleet.run(second.task, "host:2").state == "skipped"
    # The broker delivers the skipped task again once the connector is free: it stays skipped.
    assert app.fleet.run(second.task, "host:2").state == "already_done"
    assert not app.fleet.ledger.start(second.task, app.now(), "host:2")
    task = app.fleet.ledger.get(second.task)
    assert task is not None and (task.state, task.deliveries) == ("skipped", 0)
    assert app.fleet.run(first.task, "host:1").state == "done"


def test_a_broker_that_refuses_a_task_is_reported_and_the_rest_go_on(fleet_app: App) -> None:
    def refuse(task: int, account: str, product: str, message: str) -> None:
        raise ConnectionError("redis down")

    (d,) = fleet_app.fleet.dispatch(refuse)
    assert d.task_id == "" and "ConnectionError" in d.error
    task = fleet_app.fleet.ledger.get(d.task)
    assert task is not None and (task.state, task.outcome) == ("done", "error")


def test_fleet_status_json(fleet_app: App, tmp_path: Path) -> None:
    fleet_app.fleet.enqueue("acme", "memory", lambda *task: None)
    url = fleet_app.db.url
    fleet_app.close()
    as_of = "2026-02-01T12:00:00Z"
    result = CliRunner().invoke(
        main_group, ["--db", url, "--as-of", as_of, "fleet", "status", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["counts"]["queued"] == 1
    assert data["queued"][0]["account"] == "acme" and data["queued"][0]["product"] == "memory"
    human = CliRunner().invoke(main_group, ["--db", url, "--as-of", as_of, "fleet", "status"])
    assert human.exit_code == 0 and "queued" in human.output and "acme" in human.output


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SEATGATE_BROKER_URL", "http://nope"),
        ("SEATGATE_BEAT_INTERVAL", "0"),
        ("SEATGATE_BEAT_INTERVAL", "soon"),
        ("SEATGATE_VISIBILITY_TIMEOUT", "nan"),
        ("SEATGATE_QUEUE", "a queue"),
    ],
)
def test_a_bad_setting_is_refused_naming_it(name: str, value: str) -> None:
    with pytest.raises(BadInput) as raised:
        FleetSettings.from_env({name: value})
    assert name in str(raised.value) and "\n" not in str(raised.value)


def test_a_broker_password_is_never_shown() -> None:
    settings = FleetSettings.from_env({"SEATGATE_BROKER_URL": "redis://:s3cret@db:6379/0"})
    assert "s3cret" not in repr(settings)
    with pytest.raises(BadInput) as raised:
        FleetSettings.from_env({"SEATGATE_BROKER_URL": "http://:s3cret@db/"})
    assert "s3cret" not in str(raised.value)
