"""A billing run over 1,000 accounts x 7 products x 20 users on SQLite (goal: under 10 s).

    .venv/bin/python bench/billing_run.py --accounts 1000 --runs 5

The database is built once with bulk inserts (accounts, users, contracts, seats and their seat
ledger rows: hard_cap contracts grandfathered 2 users above capacity, one product per account on
auto_expand with users above its quantity), May 2026 is billed untimed, then the June 2026 run —
base lines, overage, additional seats and the true-up of May — is timed on a fresh copy each time.
Prints the median and every run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from seatgate.core.bootstrap import App
from seatgate.core.clock import UTC, FixedClock
from seatgate.core.domain.vocabulary import PRODUCTS
from seatgate.core.storage.tables import accounts, contracts, integration_users, seat_ledger, seats

USERS = 20


def build(url: str, n_accounts: int) -> None:
    app = App(url)
    at = dt.datetime(2025, 12, 15, 9, tzinfo=UTC)
    with app.db.write() as conn:
        conn.execute(
            accounts.insert(),
            [{"id": i, "name": f"acct{i:05d}", "region": "US", "created_at": at}
             for i in range(1, n_accounts + 1)],
        )  # fmt: skip
        conn.execute(
            integration_users.insert(),
            [{"id": (i - 1) * USERS + u + 1, "account_id": i, "email": f"u{u}@a{i}.example",
              "name": "", "active": True, "roles": [], "created_at": at, "updated_at": at}
             for i in range(1, n_accounts + 1) for u in range(USERS)],
        )  # fmt: skip
        rows, seat_rows, ledger_rows = [], [], []
        for i in range(1, n_accounts + 1):
            for k, product in enumerate(PRODUCTS):
                auto = k == i % len(PRODUCTS)
                rows.append({
                    "account_id": i, "product": product, "plan": "standard",
                    "quantity": 15 if auto else USERS - 2, "unit_price": Decimal("25.00"),
                    "currency": "USD", "frequency": "monthly", "term_start": dt.date(2026, 1, 1),
                    "term_months": 12, "channel": "order_form",
                    "mode": "auto_expand" if auto else "hard_cap", "entitlement_version": 0,
                    "created_at": at, "grandfathered_at": None if auto else at,
                })  # fmt: skip
                for u in range(USERS):
                    uid = (i - 1) * USERS + u + 1
                    when = at if not auto or u < 15 else dt.datetime(2026, 5, 10, tzinfo=UTC)
                    seat_rows.append({"account_id": i, "product": product, "user_id": uid,
                                      "assigned_at": when, "grandfathered": not auto})  # fmt: skip
                    ledger_rows.append({
                        "account_id": i, "product": product, "user_id": uid,
                        "email": f"u{u}@a{i}.example", "action": "assign" if auto else "grandfather",
                        "actor": "bench", "at": when, "reason": "", "assigned_after": u + 1,
                    })  # fmt: skip
        conn.execute(contracts.insert(), rows)
        conn.execute(seats.insert(), seat_rows)
        conn.execute(seat_ledger.insert(), ledger_rows)
    app.clock = FixedClock(dt.datetime(2026, 5, 1, 6, tzinfo=UTC))
    app.billing.run("2026-05")
    app.db.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="seatgate-bench-"))
    try:
        base = work / "base.db"
        t0 = time.perf_counter()
        build(f"sqlite:///{base}", args.accounts)
        print(f"built {args.accounts} accounts x {len(PRODUCTS)} products x {USERS} users "
              f"in {time.perf_counter() - t0:.1f} s")  # fmt: skip
        times, issued, lines = [], 0, 0
        for n in range(args.runs):
            db = work / f"run{n}.db"
            for suffix in ("", "-wal", "-shm"):
                if Path(f"{base}{suffix}").exists():
                    shutil.copy(f"{base}{suffix}", f"{db}{suffix}")
            app = App(f"sqlite:///{db}", clock=FixedClock(dt.datetime(2026, 6, 1, 6, tzinfo=UTC)))
            start = time.perf_counter()
            result = app.billing.run("2026-06")
            times.append(time.perf_counter() - start)
            issued = result["count"]
            with app.db.read() as conn:
                lines = conn.execute(
                    sa.text("SELECT count(*) FROM billing_invoice_lines")
                ).scalar_one()
            app.db.dispose()
        print(f"billing run 2026-06: {issued} invoices, {lines} lines in the database")
        print("runs: " + ", ".join(f"{t:.2f} s" for t in times))
        print(f"median: {statistics.median(times):.2f} s (goal < 10 s)")
        print(f"command: {Path(sys.executable).name} bench/billing_run.py "
              f"--accounts {args.accounts} --runs {args.runs}")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
