"""The sync engine's own overhead: N users from the in-memory adapter through the whole pipeline
(pull, validate, reconcile, auto install, the agent_sync gate, the agent directory, the run record
and the cursor) into a fresh SQLite file.

    .venv/bin/python bench/sync_engine.py --users 100000 --runs 3

Each run is a child process (so its peak RSS is its own) with a new database and a new in-memory
CRM. Printed per scenario: the median seconds and users/s over the runs, and the peak RSS of the
whole process (which holds the in-memory CRM's users too), with the RSS just before the timed sync
for reference.

Scenarios:
- ``first``: an empty database; half the users hold the activated role and get a seat by auto
  install (50,000 seat assignments at 100,000 users).
- ``first-no-roles``: the same without activated roles (no auto install).
- ``resync``: a second full sync over the same, unchanged users (the steady state of a nightly run).

Adapter benchmarks reuse :func:`prepare` and :func:`full_sync` with their own App and sandbox.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchlib import peak_rss_mb

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock, parse_instant
from seatgate.core.plugins import ConfigSchema, SyncSummary
from seatgate.core.testing.setup import account_with_contract

ADMIN = "bench-admin@example.com"


def full_sync(app: App, account: str, product: str) -> SyncSummary:
    """One forced full sync through the whole pipeline; returns the run's summary."""
    return app.sync.full_sync(account, product)


def prepare(
    app: App,
    account: str,
    product: str,
    settings: Mapping[str, Any],
    schema: ConfigSchema,
    *,
    seats: int,
    activated_roles: Sequence[str] = (),
    region: str = "US",
) -> None:
    """Create ``account`` with an admin and a hard-cap contract of ``seats``, and install
    ``product`` with ``settings``. Secret fields are moved to environment variables and passed as
    ``${ENV}`` references, as a real config file must."""
    config = dict(settings)
    for field in schema.fields:
        if field.secret and field.name in config:
            env = f"BENCH_{product.upper()}_{field.name.upper()}"
            os.environ[env] = str(config[field.name])
            config[field.name] = "${" + env + "}"
    if activated_roles:
        config["activated_roles"] = list(activated_roles)
    account_with_contract(app, account, product, admin=ADMIN, seats=seats, region=region)
    app.installs.install(account, product, config, ADMIN)


def child(users: int, scenario: str) -> dict[str, Any]:
    from seatgate.core.plugins.manager import build_plugin_manager
    from seatgate.core.testing.memory import MEMORY_SCHEMA, MemoryAdapter, MemorySandbox

    with tempfile.TemporaryDirectory() as tmp:
        crm = MemorySandbox(users=users)  # roles alternate Agent / Admin
        plugins = build_plugin_manager(
            builtins=(), entry_points=False, plugins=[("memory", MemoryAdapter())], strict=True
        )
        # Restricted phase, so the gate really decides (unseated users are kept out).
        clock = FixedClock(parse_instant("2026-04-01T12:00:00Z"))
        app = App(f"sqlite:///{tmp}/bench.db", clock=clock, plugins=plugins)
        roles = () if scenario == "first-no-roles" else ("Agent",)
        prepare(
            app,
            "bench",
            "memory",
            crm.settings(),
            MEMORY_SCHEMA,
            seats=users,
            activated_roles=roles,
        )
        if scenario == "resync":
            app.sync.full_sync("bench", "memory")
            clock.advance(hours=1)
        before = peak_rss_mb()
        t0 = time.perf_counter()
        summary = app.sync.full_sync("bench", "memory")
        seconds = time.perf_counter() - t0
        peak = peak_rss_mb()
        app.db.dispose()
    if summary.outcome != "succeeded" or summary.pulled != users:
        raise SystemExit(f"bench run did not sync every user: {summary}")
    return {
        "seconds": seconds,
        "pulled": summary.pulled,
        "created": summary.created,
        "seated": summary.seated,
        "agents_synced": summary.agents_synced,
        "rss_before_mb": before,
        "peak_rss_mb": peak,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--scenario",
        action="append",
        choices=("first", "first-no-roles", "resync"),
        help="default: all three",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.users, args.scenario[0])))
        return
    print(
        f"$ {Path(sys.executable).name} bench/sync_engine.py --users {args.users} --runs {args.runs}"
    )
    for scenario in args.scenario or ("first", "first-no-roles", "resync"):
        results = []
        for _ in range(args.runs):
            out = subprocess.run(
                [sys.executable, __file__, "--child", "--users", str(args.users),
                 "--scenario", scenario],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        secs = statistics.median(r["seconds"] for r in results)
        peak = max(r["peak_rss_mb"] for r in results)
        before = statistics.median(r["rss_before_mb"] for r in results)
        last = results[-1]
        each = ", ".join(f"{r['seconds']:.2f}s" for r in results)
        print(
            f"{scenario:15} {args.users} users: median {secs:.2f}s = {args.users / secs:,.0f} "
            f"users/s over {args.runs} runs (each: {each}); "
            f"peak RSS {peak:.0f} MB (RSS just before the timed sync: {before:.0f} MB); "
            f"created {last['created']}, seated {last['seated']}, agents {last['agents_synced']}"
        )


if __name__ == "__main__":
    main()
