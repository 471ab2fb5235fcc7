"""Issue 5's benchmark: for each CRM adapter, a full sync of N users from its sandbox into SQLite
(or the databases ``--db`` names) next to the raw pull of the same users with the bare client
library, then an incremental sync after 1% of the users changed, then a full resync.

    .venv/bin/python bench/adapter_sync.py --users 100000 --runs 3 [--only salesforce]

Each run is a child process (so peak RSS is that run's); the sandbox is hosted in a process of
its own, so the peak RSS is seatgate's and the client's alone, not the CRM's. The run times the raw pull
(bench/pull_<crm>.py's ``raw_pull``), prepares an account with a contract and an installation
(bench/sync_engine.py's ``prepare``), times a full sync through the whole engine, changes 1% of the
users in the CRM and times an incremental sync. Medians are printed.

Fair comparison: before each timed pull the sandbox drops what it rendered ahead (its cached JSON
fragments), so the raw pull and the sync each pay the same server work, as they would against a
real CRM, which caches nothing for us.

Requests are counted by the sandbox, logins and token requests apart: the minimum,
ceil(users / largest page), counts pages of users; a login (Salesforce password, ServiceNow OAuth)
fetches none and is printed beside it.

``--activated-roles ROLE[,ROLE]`` installs the connector with activated roles (auto install seats
their holders, and ServiceNow then reads their grants from sys_user_has_role).

``--db URL`` (repeatable; ``sqlite`` for SQLite files, the default) runs against that database: a
PostgreSQL URL gets a new schema per run. With SQLite and PostgreSQL both, the PostgreSQL figures
are printed against the SQLite ones (issue 12 item 9: first sync and resync each <= 1.5x).

Goals printed (issue 12 item 8): full sync <= 1.2x the raw pull; incremental after 1% <= 2 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import math
import multiprocessing
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

CRMS = {
    # product: (sandbox module, sandbox class, largest page of the users listing)
    "salesforce": ("seatgate.adapters.salesforce.sandbox", "SalesforceSandbox", 2000),
    "servicenow": ("seatgate.adapters.servicenow.sandbox", "ServiceNowSandbox", 10000),
    "hubspot": ("seatgate.adapters.hubspot.sandbox", "HubSpotSandbox", 500),
    "oracle_sc": ("seatgate.adapters.oracle.sandbox", "OracleSandbox", 20000),
    "pega": ("seatgate.adapters.pega.sandbox", "PegaSandbox", 5000),
    "sap_c4c": ("seatgate.adapters.sap_c4c.sandbox", "SapC4CSandbox", 1000),
}
# The raw pull's script, where it is not bench/pull_<product>.py.
PULL_SCRIPTS = {"oracle_sc": "pull_oracle"}


def _host(conn: Any, product: str, users: int) -> None:
    """The sandbox's own process: serves HTTP and answers the benchmark's requests on a pipe."""
    module_name, class_name, _ = CRMS[product]
    sandbox = getattr(importlib.import_module(module_name), class_name)(users=users).start()
    info = {"url": sandbox.url, "settings": sandbox.settings()}
    for name in ("SESSION_ID", "access_token"):
        if hasattr(sandbox, name):
            info[name] = getattr(sandbox, name)
    if hasattr(sandbox, "basic_settings"):
        info["basic_settings"] = sandbox.basic_settings()
    conn.send(info)
    while True:
        command, arg = conn.recv()
        if command == "requests":
            conn.send((sandbox.requests, sandbox.auth_requests))
        elif command == "cold":
            sandbox.drop_caches()
            conn.send(True)
        elif command == "change":
            sandbox.store.change(range(1, arg + 1))
            conn.send(True)
        else:
            sandbox.stop()
            conn.send(True)
            return


class RemoteSandbox:
    """Stands in for a sandbox object (url, settings(), credentials, request count) while the
    sandbox itself runs in another process."""

    def __init__(self, product: str, users: int) -> None:
        context = multiprocessing.get_context("fork")
        self._conn, theirs = context.Pipe()
        self._process = context.Process(target=_host, args=(theirs, product, users), daemon=True)
        self._process.start()
        info = self._conn.recv()
        self.url = info["url"]
        self._info = info
        for name in ("SESSION_ID", "access_token"):
            if name in info:
                setattr(self, name, info[name])

    def settings(self) -> dict[str, Any]:
        return dict(self._info["settings"])

    def basic_settings(self) -> dict[str, Any]:
        return dict(self._info["basic_settings"])

    def _ask(self, command: str, arg: int = 0) -> Any:
        self._conn.send((command, arg))
        return self._conn.recv()

    @property
    def requests(self) -> int:
        return int(self._ask("requests")[0])

    def counts(self) -> tuple[int, int]:
        """(requests, of which logins and token requests)."""
        requests, auth = self._ask("requests")
        return int(requests), int(auth)

    def drop_caches(self) -> None:
        self._ask("cold")

    def change(self, count: int) -> None:
        self._ask("change", count)

    def __enter__(self) -> RemoteSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self._ask("stop")
        self._process.join(10)


def _counted(sandbox: RemoteSandbox, before: tuple[int, int]) -> tuple[int, int]:
    """(user requests, logins) since ``before``."""
    requests, auth = sandbox.counts()
    return requests - before[0] - (auth - before[1]), auth - before[1]


def child(product: str, users: int, activated_roles: list[str], db: str) -> dict[str, Any]:
    # The sandbox process is forked first, before this process has grown.
    remote = RemoteSandbox(product, users)
    from benchlib import peak_rss_mb, scratch_database
    from sync_engine import prepare  # bench/sync_engine.py

    from seatgate.core.bootstrap import App
    from seatgate.core.clock import FixedClock

    page = CRMS[product][2]
    raw_pull = importlib.import_module(PULL_SCRIPTS.get(product, f"pull_{product}")).raw_pull
    out: dict[str, Any] = {"product": product, "users": users, "minimum": math.ceil(users / page)}
    with remote as sandbox, scratch_database(db) as url:
        sandbox.drop_caches()
        before = sandbox.counts()
        t0 = time.perf_counter()
        pulled = raw_pull(sandbox, activated_roles)
        out["raw_seconds"] = time.perf_counter() - t0
        out["raw_requests"], out["raw_logins"] = _counted(sandbox, before)
        out["raw_users"] = pulled

        app = App(url, clock=FixedClock(dt.datetime(2026, 4, 1, tzinfo=dt.UTC)))
        plugin = app.plugins.adapter(product)
        prepare(
            app,
            "bench",
            product,
            sandbox.settings(),
            plugin.adapter_info().config_schema,
            seats=users,
            activated_roles=activated_roles,
        )
        sandbox.drop_caches()
        before = sandbox.counts()
        t0 = time.perf_counter()
        summary = app.sync.full_sync("bench", product)
        out["sync_seconds"] = time.perf_counter() - t0
        out["sync_requests"], out["sync_logins"] = _counted(sandbox, before)
        out["sync_outcome"] = summary.outcome
        out["synced"] = summary.pulled
        out["seated"] = summary.seated

        changed = max(1, users // 100)
        sandbox.change(changed)
        app.clock.advance(hours=1)  # type: ignore[attr-defined]
        sandbox.drop_caches()
        before = sandbox.counts()
        t0 = time.perf_counter()
        result = app.sync.sync("bench", product)
        out["incremental_seconds"] = time.perf_counter() - t0
        out["incremental_requests"], out["incremental_logins"] = _counted(sandbox, before)
        out["incremental_pulled"] = result.summary.pulled
        out["incremental_outcome"] = result.summary.outcome

        app.clock.advance(hours=1)  # type: ignore[attr-defined]
        sandbox.drop_caches()
        t0 = time.perf_counter()
        again = app.sync.full_sync("bench", product)
        out["resync_seconds"] = time.perf_counter() - t0
        out["resync_outcome"] = again.outcome
        app.db.dispose()
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", choices=sorted(CRMS))
    parser.add_argument(
        "--activated-roles",
        default="",
        metavar="ROLE[,ROLE]",
        help="install the connector with these activated roles (default: none)",
    )
    parser.add_argument(
        "--db",
        action="append",
        metavar="URL",
        help="sqlite (default) or a PostgreSQL URL; repeat to compare",
    )
    parser.add_argument("--child", choices=sorted(CRMS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    roles = [r for r in args.activated_roles.split(",") if r]
    dbs = args.db or ["sqlite"]
    if args.child:
        print(json.dumps(child(args.child, args.users, roles, dbs[0])))
        return
    print(
        f"command: python bench/adapter_sync.py --users {args.users} --runs {args.runs}"
        + (f" --only {args.only}" if args.only else "")
        + (f" --activated-roles {','.join(roles)}" if roles else "")
        + "".join(f" --db {db}" for db in args.db or ())
        + "   (medians; the machine is shared with other jobs)"
    )
    for product in [args.only] if args.only else list(CRMS):
        figures: dict[str, dict[str, float]] = {}
        for db in dbs:
            figures[db] = _bench(product, args.users, args.runs, roles, db)
        if len(dbs) > 1 and "sqlite" in figures:
            base = figures["sqlite"]
            for db, f in figures.items():
                if db == "sqlite" or not f or not base:
                    continue
                for key, label in (("sync_seconds", "first sync"), ("resync_seconds", "resync")):
                    ratio = f[key] / base[key]
                    print(
                        f"  {label} on {_where(db)}: x{ratio:.2f} of SQLite "
                        f"(goal <= 1.5: {'met' if ratio <= 1.5 else 'NOT met'})"
                    )


def _where(db: str) -> str:
    return "SQLite" if db == "sqlite" else "PostgreSQL " + db.split("@")[-1]


def _bench(
    product: str, users: int, runs_wanted: int, roles: list[str], db: str
) -> dict[str, float]:
    runs: list[dict[str, Any]] = []
    for _ in range(runs_wanted):
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                product,
                "--users",
                str(users),
                "--activated-roles",
                ",".join(roles),
                "--db",
                db,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            print(f"{product}: run failed:\n{proc.stderr[-2000:]}")
            break
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    if not runs:
        return {}

    def med(key: str, runs: list[dict[str, Any]] = runs) -> float:
        return statistics.median(r[key] for r in runs)

    r0 = runs[0]
    args_users = users
    print(f"\n{product} on {_where(db)}: {users:,} users, median of {len(runs)} runs")
    print(
        f"  raw pull (bare client):  {med('raw_seconds'):6.2f} s  "
        f"{args_users / med('raw_seconds'):9,.0f} users/s  requests {r0['raw_requests']} "
        f"(minimum {r0['minimum']}) + {r0['raw_logins']} login"
    )
    print(
        f"  full sync:               {med('sync_seconds'):6.2f} s  "
        f"{args_users / med('sync_seconds'):9,.0f} users/s  requests {r0['sync_requests']} "
        f"(minimum {r0['minimum']}) + {r0['sync_logins']} login  outcome {r0['sync_outcome']}  "
        f"seated {r0['seated']:,}  "
        f"x{med('sync_seconds') / med('raw_seconds'):.2f} of the raw pull (goal <= 1.2: "
        f"{'met' if med('sync_seconds') <= 1.2 * med('raw_seconds') else 'NOT met'})"
    )
    print(
        f"  incremental after 1%:    {med('incremental_seconds'):6.2f} s  pulled "
        f"{r0['incremental_pulled']:,}  requests {r0['incremental_requests']} "
        f"+ {r0['incremental_logins']} login  (goal <= 2 s: "
        f"{'met' if med('incremental_seconds') <= 2 else 'NOT met'})"
    )
    print(f"  resync (full, unchanged): {med('resync_seconds'):6.2f} s")
    print(
        f"  peak RSS:                {med('peak_rss_mb'):6.0f} MB (goal < 300 MB; the sandbox runs in another process)"
    )
    return {k: med(k) for k in ("sync_seconds", "resync_seconds", "raw_seconds")}


if __name__ == "__main__":
    main()
