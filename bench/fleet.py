"""Issue 17's benchmark: syncs on 1, 2 and 4 Celery worker processes (PostgreSQL store, Redis
broker), ACCOUNTS accounts x 3 sandbox connectors (pega, oracle_sc, sap_c4c) x USERS users.

    .venv/bin/python bench/fleet.py --accounts 500 --users 1000 --workers 1,2,4 --periods 3
    .venv/bin/python bench/fleet.py --accounts 20             # a quick run

Needs PostgreSQL (``--db``, default SEATGATE_TEST_POSTGRES_URL or
postgresql+psycopg://postgres@127.0.0.1:5432/test) and Redis (``--broker``, default
SEATGATE_TEST_REDIS_URL or redis://127.0.0.1:6379/0). Each worker count gets a schema of its own
(dropped afterwards) and Redis keys and a queue of its own.

What is measured, for each worker count: ``seatgate worker`` processes (solo pool: one sync at a
time each) are started and ready; then, for each period, one beat tick (``fleet dispatch`` as of
the period's start) enqueues every connector, and the clock runs until the ledger says every task
is done. Runs per minute = connectors / seconds; users per second = users pulled / seconds.
Period 1 is the first sync of every connector (every user inserted); the later periods are full
re-syncs of the same users (``full_every`` 1: every run pulls every user; nothing changes), and
their median is the steady figure. The sandboxes (the CRMs) run in processes of their own on the
same machine, so they, PostgreSQL and Redis share its cores with the workers: say so with the
figures.

Where the time goes, printed per period: the CPU seconds of the workers, the sandboxes,
PostgreSQL (all its processes) and Redis (/proc/PID/stat); the machine's busy, idle and stolen
CPU seconds (/proc/stat), so what other processes took shows; the time the runs spent inside
``SyncService.sync`` (``sync_runs.seconds``) against the workers' wall time (the rest is Celery,
the connector lock and the ledger, and waiting for a task); and the workers' threads' time on a
core, runnable but waiting for one, and blocked (on PostgreSQL, the CRM or Redis), from
/proc/PID/task/TID/schedstat. The last line is the scaling from 1 to 2 workers against the goal
(>= 1.7x).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

CLI = [sys.executable, "-c", "from seatgate.core.entrypoints.cli import main; main()"]
PRODUCTS = ("pega", "oracle_sc", "sap_c4c")
SANDBOXES = {"pega": "pega", "oracle_sc": "oracle", "sap_c4c": "sap_c4c"}  # product -> adapter
ADMIN = "admin@bench.example"
GOAL = 1.7  # issue 17: 1 -> 2 workers
T0 = dt.datetime(2026, 2, 2, 9, 0, tzinfo=dt.UTC)  # transition (US): every user is an agent


TICK = os.sysconf("SC_CLK_TCK")


def cpu_of(pids: list[int]) -> float:
    """CPU seconds (user + system) the processes ``pids`` used so far (Linux /proc)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def pids_named(name: str) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    out.append(int(entry.name))
            except OSError:
                continue
    return out


def sched_of(pids: list[int]) -> dict[int, tuple[int, int]]:
    """Per thread of ``pids``: (nanoseconds on a core, nanoseconds runnable but waiting for one),
    from /proc/PID/task/TID/schedstat."""
    out: dict[int, tuple[int, int]] = {}
    for pid in pids:
        try:
            tids = [int(t.name) for t in Path(f"/proc/{pid}/task").iterdir()]
        except OSError:
            continue
        for tid in tids:
            try:
                on, wait, _ = Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()
            except (OSError, ValueError):
                continue
            out[tid] = (int(on), int(wait))
    return out


def sched_delta(
    before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]]
) -> tuple[float, float]:
    """(seconds on a core, seconds waiting for a core) between two :func:`sched_of`, over the
    threads alive at both (a read-ahead thread that came and went is not in it)."""
    on = wait = 0
    for tid, (a_on, a_wait) in after.items():
        if tid in before:
            on += a_on - before[tid][0]
            wait += a_wait - before[tid][1]
    return on / 1e9, wait / 1e9


def machine_cpu() -> dict[str, float]:
    """The machine's CPU seconds so far (/proc/stat): busy (every process), idle, steal (taken
    by the hypervisor for other guests)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return {
        "busy": (user + nice + system + irq + softirq) / TICK,
        "idle": (idle + iowait) / TICK,
        "steal": steal / TICK,
    }


def cpu_split(workers: list[int], sandboxes: list[int]) -> dict[str, float]:
    """CPU seconds so far of the workers, the sandboxes, PostgreSQL, Redis and this process."""
    return {
        "workers": cpu_of(workers),
        "sandboxes": cpu_of(sandboxes),
        "postgres": cpu_of(pids_named("postgres")),
        "redis": cpu_of(pids_named("redis-server")),
        "bench": cpu_of([os.getpid()]),
    }


def start_sandboxes(users: int) -> dict[str, dict[str, Any]]:
    """One sandbox process per CRM (``seatgate sandbox NAME --background``): product -> its
    pid, config (secrets as ${ENV}) and the env those need."""
    out: dict[str, dict[str, Any]] = {}
    try:
        for product in PRODUCTS:
            done = subprocess.run(
                [
                    *CLI,
                    "--json",
                    "sandbox",
                    SANDBOXES[product],
                    "--users",
                    str(users),
                    "--background",
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            out[product] = json.loads(done.stdout)
    except BaseException:
        for started in out.values():  # none outlives a failed start
            os.kill(int(started["pid"]), signal.SIGKILL)
        raise
    return out


def new_schema(base: str) -> tuple[str, str]:
    schema = f"bench_fleet_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    sep = "&" if "?" in base else "?"
    return schema, f"{base}{sep}options={quote(f'-csearch_path={schema}')}"


def drop_schema(base: str, schema: str) -> None:
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def drop_keys(url: str, prefix: str) -> None:
    """Delete this measurement's Redis keys (the broker's bindings, queues, throttle)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def prepare(url: str, accounts: int, sandboxes: dict[str, dict[str, Any]]) -> Any:
    from seatgate.core.bootstrap import App
    from seatgate.core.clock import FixedClock

    app = App(url, clock=FixedClock(T0))
    for i in range(accounts):
        name = f"acct{i:04d}"
        app.accounts.create(name, "US")
        app.accounts.grant(name, ADMIN, "install", None)
        for product in PRODUCTS:
            app.contracts.create(
                name,
                product,
                seats=100_000,
                plan="standard",
                frequency="monthly",
                start=dt.date(2026, 1, 1),
                months=12,
                unit_price=Decimal("10"),
                mode="hard_cap",
            )
            config = {**sandboxes[product]["config"], "full_every": 1}
            app.installs.install(name, product, config, ADMIN)
    return app


def wait_done(app: Any, timeout: float) -> None:
    from seatgate.core.storage.tables import fleet_tasks

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with app.db.read() as conn:
            left = conn.execute(
                sa.select(sa.func.count())
                .select_from(fleet_tasks)
                .where(fleet_tasks.c.state.in_(("queued", "running")))
            ).scalar_one()
        if left == 0:
            return
        time.sleep(0.2)
    raise SystemExit(f"timed out after {timeout} s with {left} task(s) left")


def period_totals(app: Any, since_task: int) -> tuple[int, int, int]:
    """(tasks, succeeded, users pulled) of the tasks after ``since_task``."""
    from seatgate.core.storage.tables import fleet_tasks

    t = fleet_tasks
    with app.db.read() as conn:
        row = conn.execute(
            sa.select(
                sa.func.count(),
                sa.func.count().filter(t.c.outcome == "succeeded"),
                sa.func.coalesce(sa.func.sum(t.c.pulled), 0),
            ).where(t.c.id > since_task)
        ).one()
    return int(row[0]), int(row[1]), int(row[2])


def sync_seconds(app: Any, since_task: int) -> float:
    """Seconds the runs of the tasks after ``since_task`` spent in ``SyncService.sync`` (each run
    records its own, ``sync_runs.seconds``)."""
    from seatgate.core.storage.tables import fleet_tasks, sync_runs

    with app.db.read() as conn:
        total = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(sync_runs.c.seconds), 0.0))
            .select_from(sync_runs.join(fleet_tasks, fleet_tasks.c.run_id == sync_runs.c.id))
            .where(fleet_tasks.c.id > since_task)
        ).scalar_one()
    return float(total)


def last_task(app: Any) -> int:
    from seatgate.core.storage.tables import fleet_tasks

    with app.db.read() as conn:
        return int(
            conn.execute(sa.select(sa.func.coalesce(sa.func.max(fleet_tasks.c.id), 0))).scalar_one()
        )


def measure(
    args: argparse.Namespace, n: int, sandboxes: dict[str, dict[str, Any]]
) -> list[dict[str, float]]:
    from seatgate.core.entrypoints.worker.app import create_app, dispatch
    from seatgate.core.entrypoints.worker.settings import FleetSettings

    schema, url = new_schema(args.db)
    prefix = f"bench{uuid.uuid4().hex[:8]}:"
    env = {
        "SEATGATE_DATABASE_URL": url,
        "SEATGATE_BROKER_URL": args.broker,
        "SEATGATE_REDIS_PREFIX": prefix,
        "SEATGATE_QUEUE": prefix.replace(":", ".") + "sync",
    }
    for sb in sandboxes.values():
        env.update(sb["env"])
    os.environ.update({k: v for k, v in env.items() if k not in ("SEATGATE_DATABASE_URL",)})
    workers: list[subprocess.Popen[bytes]] = []
    logs = Path(args.logs)
    logs.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        app = prepare(url, args.accounts, sandboxes)
        print(
            f"  {n} worker(s): prepared {args.accounts} accounts x {len(PRODUCTS)} connectors "
            f"in {time.perf_counter() - t:.1f} s",
            flush=True,
        )
        for i in range(n):
            log = (logs / f"worker{n}-{i}.log").open("w")
            workers.append(
                subprocess.Popen(
                    [*CLI, "worker", "--loglevel", "warning", "--hostname", f"b{n}-{i}@%h"],
                    env={**os.environ, **env},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        time.sleep(3 + n)  # the workers connect and register (not timed)
        celery = create_app(FleetSettings.from_env(env))
        results = []
        for period in range(args.periods):
            app.clock.set(T0 + dt.timedelta(hours=period))
            before = last_task(app)
            sandbox_pids = [int(sb["pid"]) for sb in sandboxes.values()]
            cpu_before = cpu_split([w.pid for w in workers], sandbox_pids)
            machine_before = machine_cpu()
            sched_before = sched_of([w.pid for w in workers])
            pg_sched_before = sched_of(pids_named("postgres"))
            start = time.perf_counter()
            sent = dispatch(celery, app)
            enqueued = time.perf_counter() - start
            wait_done(app, args.timeout)
            seconds = time.perf_counter() - start
            count, ok, pulled = period_totals(app, before)
            cpu_after = cpu_split([w.pid for w in workers], sandbox_pids)
            cpu = {k: cpu_after[k] - cpu_before[k] for k in cpu_after}
            machine = {k: v - machine_before[k] for k, v in machine_cpu().items()}
            on_core, for_core = sched_delta(sched_before, sched_of([w.pid for w in workers]))
            pg_on, pg_for = sched_delta(pg_sched_before, sched_of(pids_named("postgres")))
            in_sync = sync_seconds(app, before)
            results.append(
                {
                    "period": period + 1,
                    "runs": count,
                    "succeeded": ok,
                    "users": pulled,
                    "seconds": seconds,
                    "enqueue_seconds": enqueued,
                }
            )
            print(
                f"  {n} worker(s) period {period + 1}: {len(sent)} runs ({ok} succeeded), "
                f"{pulled} users in {seconds:.1f} s (enqueue {enqueued:.1f} s): "
                f"{count / seconds * 60:,.0f} runs/min, {pulled / seconds:,.0f} users/s",
                flush=True,
            )
            busy = sum(cpu.values())
            print(
                "    CPU seconds: "
                + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items())
                + f" = {busy:.1f} of {seconds * (os.cpu_count() or 1):.1f} available "
                f"({busy / seconds:.2f} cores busy; postgres counts every client of the server)",
                flush=True,
            )
            print(
                f"    machine: {machine['busy']:.1f} CPU-s busy, {machine['idle']:.1f} idle, "
                f"{machine['steal']:.1f} stolen by the hypervisor; other processes than these "
                f"(other users, and postgres' other clients) took about "
                f"{max(0.0, machine['busy'] - busy):.1f} CPU-s",
                flush=True,
            )
            worker_wall = n * seconds
            print(
                f"    where the workers' time went ({worker_wall:.1f} worker-seconds): inside "
                f"SyncService.sync {in_sync:.1f} s ({in_sync / worker_wall:.0%}; the rest is "
                f"Celery, the lock and the ledger, and waiting for a task); their threads were "
                f"on a core {on_core:.1f} s and runnable but waiting for a core {for_core:.1f} s "
                f"(the rest, blocked on PostgreSQL, the CRM or Redis: "
                f"{max(0.0, worker_wall - on_core - for_core):.1f} s); PostgreSQL's processes "
                f"(every client's backends) waited for a core {pg_for:.1f} s "
                f"(on one {pg_on:.1f} s)",
                flush=True,
            )
        celery.close()
        app.close()
        return results
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            try:
                w.wait(20)
            except subprocess.TimeoutExpired:
                w.kill()
        drop_schema(args.db, schema)
        drop_keys(args.broker, prefix)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=500)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument(
        "--periods", type=int, default=3, help="periods per worker count (1 = first sync only)"
    )
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument(
        "--db",
        default=os.environ.get(
            "SEATGATE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument(
        "--broker", default=os.environ.get("SEATGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--logs", default="/tmp/seatgate-bench-fleet")
    args = parser.parse_args()
    counts = [int(x) for x in args.workers.split(",")]
    print(
        f"$ python bench/fleet.py --accounts {args.accounts} --users {args.users} "
        f"--workers {args.workers} --periods {args.periods}"
    )
    print(
        f"machine: {os.cpu_count()} cores, shared with the sandboxes, PostgreSQL and Redis "
        "(and other users: medians, not best runs)"
    )
    sandboxes = start_sandboxes(args.users)
    summary: dict[int, dict[str, float]] = {}
    try:
        for n in counts:
            results = measure(args, n, sandboxes)
            first = results[0]
            steady = results[1:] or results
            summary[n] = {
                "first_runs_min": first["runs"] / first["seconds"] * 60,
                "first_users_s": first["users"] / first["seconds"],
                "runs_min": statistics.median(r["runs"] / r["seconds"] * 60 for r in steady),
                "users_s": statistics.median(r["users"] / r["seconds"] for r in steady),
            }
    finally:
        for sb in sandboxes.values():  # they serve until killed (SIGTERM is not enough)
            os.kill(int(sb["pid"]), signal.SIGKILL)
    print()
    print(
        f"{'workers':>7}  {'first: runs/min':>16} {'users/s':>9}  {'steady: runs/min':>17} {'users/s':>9}  {'scaling':>7}"
    )
    base = summary[counts[0]]["users_s"]
    for n in counts:
        s = summary[n]
        print(
            f"{n:>7}  {s['first_runs_min']:>16,.0f} {s['first_users_s']:>9,.0f}  "
            f"{s['runs_min']:>17,.0f} {s['users_s']:>9,.0f}  {s['users_s'] / base:>6.2f}x"
        )
    if 1 in summary and 2 in summary:
        scaling = summary[2]["users_s"] / summary[1]["users_s"]
        verdict = "met" if scaling >= GOAL else "NOT met"
        print(
            f"scaling from 1 to 2 workers: {scaling:.2f}x (goal >= {GOAL}x: {verdict}; "
            f"{os.cpu_count()} cores, shared with the sandboxes, PostgreSQL and Redis -- see "
            "the CPU lines above for where they went)"
        )


if __name__ == "__main__":
    main()
