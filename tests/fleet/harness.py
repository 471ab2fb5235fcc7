"""What the fleet tests share: real worker processes (``seatgate worker``) on the real Redis and
PostgreSQL, accounts whose connectors point at sandbox CRMs (real HTTP servers in this process),
and waiting on the ledger."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock
from seatgate.core.entrypoints.cli.adapters import sandbox_config
from seatgate.core.entrypoints.worker.app import create_app, dispatch
from seatgate.core.entrypoints.worker.settings import FleetSettings
from seatgate.core.services.fleet import Dispatched
from seatgate.core.services.ports.fleet import FleetTask
from seatgate.core.storage.tables import agent_directory, fleet_tasks, sync_runs
from seatgate.core.testing.setup import account_with_contract

ADMIN = "admin@fleet.example"
CLI = [sys.executable, "-c", "from seatgate.core.entrypoints.cli import main; main()"]


def fleet_env(db_url: str, redis_url: str, prefix: str, **extra: str) -> dict[str, str]:
    """The environment of a worker of this test: its database, its broker, its own keys and
    queue (other tests and helpers share the Redis)."""
    return {
        "SEATGATE_DATABASE_URL": db_url,
        "SEATGATE_BROKER_URL": redis_url,
        "SEATGATE_REDIS_PREFIX": prefix,
        "SEATGATE_QUEUE": f"{prefix}sync".replace(":", "."),
        **extra,
    }


def install_sandbox(
    app: App, account: str, product: str, sandbox: Any, **core: Any
) -> dict[str, str]:
    """Install ``product`` on ``account`` against ``sandbox``; returns the environment its
    config's ``${ENV}`` secrets need (set in this process too)."""
    config, env = sandbox_config(product, sandbox.settings())
    os.environ.update(env)
    app.installs.install(account, product, {**config, **core}, ADMIN)
    return env


def prepare(
    app: App, accounts: int, connectors: Mapping[str, Any], *, seats: int = 100_000, **core: Any
) -> tuple[list[str], dict[str, str]]:
    """``accounts`` accounts (``acct000``...), each with a contract and an installation of every
    product of ``connectors`` (product -> its sandbox). Returns the names and the secrets' env."""
    names, env = [], {}
    for i in range(accounts):
        name = f"acct{i:03d}"
        names.append(name)
        for n, (product, sandbox) in enumerate(connectors.items()):
            if n == 0:
                account_with_contract(app, name, product, admin=ADMIN, seats=seats, region="US")
            else:
                app.contracts.create(
                    name,
                    product,
                    seats=seats,
                    plan="standard",
                    frequency="monthly",
                    start=dt.date(2026, 1, 1),
                    months=12,
                    unit_price=Decimal("10"),
                    mode="hard_cap",
                )
            env.update(install_sandbox(app, name, product, sandbox, **core))
    return names, env


class Worker:
    """One ``seatgate worker`` process (solo pool: it is the process that syncs)."""

    def __init__(self, env: Mapping[str, str], log: Path, name: str) -> None:
        self.log = log
        self.name = name
        self._out = log.open("w")
        self.process = subprocess.Popen(
            [*CLI, "worker", "--loglevel", "info", "--hostname", f"{name}@%h"],
            env={**os.environ, **env},
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "ready." in self.log.read_text():
                return
            if self.process.poll() is not None:
                raise AssertionError(f"worker {self.name} exited:\n{self.log.read_text()}")
            time.sleep(0.1)
        raise AssertionError(f"worker {self.name} not ready:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL, as a crash would: no shutdown, no acknowledgement."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._out.close()


@contextlib.contextmanager
def workers(env: Mapping[str, str], tmp: Path, count: int) -> Iterator[list[Worker]]:
    tmp.mkdir(parents=True, exist_ok=True)
    started = [Worker(env, tmp / f"worker{i}.log", f"w{i}") for i in range(count)]
    try:
        for w in started:
            w.wait_ready()
        yield started
    finally:
        for w in started:
            w.stop()


def tick(app: App, env: Mapping[str, str]) -> list[Dispatched]:
    """One beat tick in this process, as of ``app``'s clock."""
    celery = create_app(FleetSettings.from_env(env))
    try:
        return dispatch(celery, app)
    finally:
        celery.close()


def tasks(app: App) -> list[FleetTask]:
    found = [app.fleet.ledger.get(i) for i in _task_ids(app)]
    return [t for t in found if t is not None]


def _task_ids(app: App) -> list[int]:
    with app.db.read() as conn:
        return list(conn.execute(sa.select(fleet_tasks.c.id).order_by(fleet_tasks.c.id)).scalars())


def wait_for(
    check: Callable[[], bool], timeout: float, what: str, logs: list[Path] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    shown = "\n".join(p.read_text()[-3000:] for p in logs or [])
    raise AssertionError(f"timed out waiting for {what}\n{shown}")


def all_done(app: App) -> bool:
    with app.db.read() as conn:
        left = conn.execute(
            sa.select(sa.func.count())
            .select_from(fleet_tasks)
            .where(fleet_tasks.c.state.in_(("queued", "running")))
        ).scalar_one()
    return left == 0


def runs_per_connector(app: App) -> dict[tuple[int, str], int]:
    with app.db.read() as conn:
        rows = conn.execute(
            sa.select(sync_runs.c.account_id, sync_runs.c.product, sa.func.count())
            .where(sync_runs.c.outcome == "succeeded")
            .group_by(sync_runs.c.account_id, sync_runs.c.product)
        ).all()
    return {(r[0], r[1]): r[2] for r in rows}


def agents(app: App) -> tuple[int, int]:
    """(rows of the agent directory, distinct (account, product, email) among them)."""
    ad = agent_directory
    with app.db.read() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(ad)).scalar_one()
        distinct = conn.execute(
            sa.select(sa.func.count()).select_from(
                sa.select(ad.c.account_id, ad.c.product, ad.c.email).distinct().subquery()
            )
        ).scalar_one()
    return int(total), int(distinct)


def fixed_app(db_url: str, at: dt.datetime) -> tuple[App, FixedClock]:
    clock = FixedClock(at)
    return App(db_url, clock=clock), clock
