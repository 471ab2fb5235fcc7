"""Core benchmark (issue 2): entitlement decisions per second, and assigning 10,000 seats.

    .venv/bin/python bench/core_bench.py [--runs 5] [--users 10000] [--profile]

(a) Entitlement decisions per second, in process, for an account of ``--users`` integration users
    (half of them seated), warm snapshot cache, at an instant in the restricted phase (2026-03-20):
    allowed decisions (seated users), and separately denied ones (unseated users): write-through
    (the default: each commits its own audit row, so they run at the speed of a database commit)
    and batched (``Entitlements(..., audit_batch=--audit-batch)``: rows written N per transaction,
    the remainder by ``flush()``, inside the timing). Goal: >= 100,000 allowed/s.
(b) Assigning ``--users`` seats in one command on SQLite: the real console script
    ``seatgate ... seats assign ACCOUNT PRODUCT EMAIL...`` with every email on the command line,
    timed wall clock (process start included), and the same ``App.assign`` call in process.
    Goal: < 5 s.
(c) A contract of 1,000,000 seats (the documented maximum less ``--quote-seats``), in process,
    SQLite: the seats-buy purchase summary of ``--quote-seats`` more seats (nothing bought), the
    billing preview of its second month (monthly, from 2026-01-01), and buying those seats. Billing holds seats as bands
    (``core/domain/slots.py``), so these cost the same whatever the seat count (tester report
    item 1). Goal: well under 1 s each.

Every figure is the median of ``--runs`` runs; the setup (accounts, users) is not timed. Nothing
here asserts a speed: it prints figures for a person to read.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import json
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock, isoformat
from seatgate.core.domain.money import parse_amount
from seatgate.core.services.entitlement import Entitlements

ACCOUNT = "bench"
PRODUCT = "salesforce"
ADMIN = "admin@example.com"
SETUP_AT = dt.datetime(2026, 2, 1, 12, tzinfo=dt.UTC)
CHECK_AT = dt.datetime(2026, 3, 20, 12, tzinfo=dt.UTC)  # restricted: seats decide


def emails(n: int) -> list[str]:
    return [f"agent{i:05d}@example.com" for i in range(n)]


def build(
    url: str,
    users: int,
    seats: int,
    frequency: str = "annual",
    start: dt.date = dt.date(2025, 10, 1),
) -> App:
    """An account with a hard-cap contract of ``seats`` and ``users`` integration users."""
    app = App(url, clock=FixedClock(SETUP_AT))
    app.accounts.create(ACCOUNT, "US")
    app.accounts.grant(ACCOUNT, ADMIN, "manage", None)
    app.contracts.create(
        ACCOUNT,
        PRODUCT,
        seats=seats,
        plan="standard",
        frequency=frequency,
        start=start,
        months=12,
        unit_price=parse_amount("25"),
    )
    app.accounts.add_users(ACCOUNT, emails(users))
    return app


def profile(label: str, fn: Callable[[], object], top: int = 15) -> None:
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(top)
    print(f"\n--- profile: {label} (cumulative) ---")
    print(out.getvalue())


# -- (a) entitlement decisions -----------------------------------------------------------------------


def bench_checks(workdir: Path, args: argparse.Namespace) -> None:
    users = emails(args.users)
    seated, unseated = users[: args.users // 2], users[args.users // 2 :]
    app = build(f"sqlite:///{workdir}/checks.db", args.users, len(seated))
    result = app.assign(ACCOUNT, PRODUCT, seated, ADMIN)
    assert result.assigned_count == len(seated), result.refused[:3]

    def allowed_run(n: int) -> float:
        check = app.check
        start = time.perf_counter()
        for i in range(n):
            check(ACCOUNT, PRODUCT, seated[i % len(seated)], "cti", CHECK_AT)
        return n / (time.perf_counter() - start)

    def denied_run(n: int) -> float:
        check = app.check
        start = time.perf_counter()
        for i in range(n):
            check(ACCOUNT, PRODUCT, unseated[i % len(unseated)], "cti", CHECK_AT)
        return n / (time.perf_counter() - start)

    batched = Entitlements(app.ports, audit_batch=args.audit_batch)

    def batched_run(n: int) -> float:
        check = batched.check
        start = time.perf_counter()
        for i in range(n):
            check(ACCOUNT, PRODUCT, unseated[i % len(unseated)], "cti", CHECK_AT)
        batched.flush()  # every row written before the clock stops
        return n / (time.perf_counter() - start)

    first = app.check(ACCOUNT, PRODUCT, seated[0], "cti", CHECK_AT)  # warms the cache
    assert (first.allowed, first.reason) == (True, "seated"), first
    denied = app.check(ACCOUNT, PRODUCT, unseated[0], "cti", CHECK_AT)
    assert (denied.allowed, denied.reason) == (False, "no_seat"), denied

    allowed_rates = [allowed_run(args.decisions) for _ in range(args.runs)]
    denied_rates = [denied_run(args.denied) for _ in range(args.runs)]
    batched.check(ACCOUNT, PRODUCT, unseated[0], "cti", CHECK_AT)  # warms its cache
    batched.flush()
    batched_rates = [batched_run(args.denied_batched) for _ in range(args.runs)]
    print(
        f"(a) entitlement check, account of {args.users:,} users ({len(seated):,} seated), "
        f"warm cache, in process, SQLite, as of {isoformat(CHECK_AT)}"
    )
    print(
        f"    allowed (seated): median {statistics.median(allowed_rates):,.0f} decisions/s "
        f"over {args.runs} runs of {args.decisions:,} "
        f"(min {min(allowed_rates):,.0f}, max {max(allowed_rates):,.0f}); goal >= 100,000/s"
    )
    print(
        f"    denied (no seat, one audit row each): median "
        f"{statistics.median(denied_rates):,.0f} decisions/s over {args.runs} runs of "
        f"{args.denied:,} (min {min(denied_rates):,.0f}, max {max(denied_rates):,.0f})"
    )
    print(
        f"    denied, batched audit (audit_batch={args.audit_batch}, flush included): median "
        f"{statistics.median(batched_rates):,.0f} decisions/s over {args.runs} runs of "
        f"{args.denied_batched:,} (min {min(batched_rates):,.0f}, max {max(batched_rates):,.0f})"
    )
    if args.profile:
        profile("allowed checks", lambda: allowed_run(args.decisions))
        profile("denied checks", lambda: denied_run(args.denied))
        profile("denied checks, batched audit", lambda: batched_run(args.denied_batched))
    batched.close()
    app.db.dispose()


# -- (b) assigning 10,000 seats ------------------------------------------------------------------------


def seatgate_script() -> str:
    script = Path(sys.executable).with_name("seatgate")
    return str(script) if script.exists() else shutil.which("seatgate") or "seatgate"


def bench_assign(workdir: Path, args: argparse.Namespace) -> None:
    users = emails(args.users)
    cli_times: list[float] = []
    app_times: list[float] = []
    command: list[str] = []
    for run in range(args.runs):
        db = workdir / f"assign-cli-{run}.db"
        build(f"sqlite:///{db}", args.users, args.users).db.dispose()
        command = [
            seatgate_script(),
            "--db",
            f"sqlite:///{db}",
            "--as-of",
            isoformat(SETUP_AT),
            "--actor",
            ADMIN,
            "--json",
            "seats",
            "assign",
            ACCOUNT,
            PRODUCT,
            *users,
        ]
        start = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True, check=False)
        cli_times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            sys.exit(f"seatgate seats assign failed ({proc.returncode}): {proc.stdout[:500]}")
        answer = json.loads(proc.stdout)
        assert answer["assigned_count"] == args.users and not answer["refused"], answer["refused"]

        app = build(f"sqlite:///{workdir}/assign-app-{run}.db", args.users, args.users)
        start = time.perf_counter()
        result = app.assign(ACCOUNT, PRODUCT, users, ADMIN)
        app_times.append(time.perf_counter() - start)
        assert result.assigned_count == args.users
        app.db.dispose()

    argv_bytes = sum(len(a) + 1 for a in command)
    shown = " ".join(command[:12]) + f" {users[0]} ... {users[-1]}"
    print(f"\n(b) assigning {args.users:,} seats in one command, SQLite (fresh database each run)")
    print(f"    command: {shown}   ({len(users):,} emails, argv {argv_bytes:,} bytes)")
    print(
        f"    CLI, wall clock incl. process start: median {statistics.median(cli_times):.2f} s "
        f"over {args.runs} runs (min {min(cli_times):.2f}, max {max(cli_times):.2f}); goal < 5 s"
    )
    print(
        f"    App.assign in process: median {statistics.median(app_times):.2f} s "
        f"(min {min(app_times):.2f}, max {max(app_times):.2f})"
    )
    if args.profile:
        app = build(f"sqlite:///{workdir}/assign-profile.db", args.users, args.users)
        profile("App.assign", lambda: app.assign(ACCOUNT, PRODUCT, users, ADMIN))
        app.db.dispose()


# -- (c) a 1,000,000-seat contract ---------------------------------------------------------------------


def bench_big_contract(workdir: Path, args: argparse.Namespace) -> None:
    from seatgate.core.domain.bounds import MAX_SEATS

    seats = MAX_SEATS - args.quote_seats
    quote_at = dt.datetime(2026, 2, 10, 12, tzinfo=dt.UTC)
    summary_times: list[float] = []
    preview_times: list[float] = []
    buy_times: list[float] = []
    for run in range(args.runs):
        app = build(f"sqlite:///{workdir}/big-{run}.db", 0, seats, "monthly", dt.date(2026, 1, 1))
        assert isinstance(app.clock, FixedClock)
        app.clock.set(quote_at)
        start = time.perf_counter()
        quote = app.purchases.buy_seats(ACCOUNT, PRODUCT, args.quote_seats, ADMIN, confirm=False)
        summary_times.append(time.perf_counter() - start)
        assert quote["quantity_after"] == MAX_SEATS, quote
        start = time.perf_counter()
        app.billing.preview(ACCOUNT, None, "2026-02")
        preview_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        bought = app.purchases.buy_seats(ACCOUNT, PRODUCT, args.quote_seats, ADMIN, confirm=True)
        buy_times.append(time.perf_counter() - start)
        assert bought["committed"], bought
        app.db.dispose()

    def line(label: str, times: list[float]) -> str:
        return (
            f"    {label}: median {statistics.median(times) * 1000:.1f} ms over {args.runs} runs "
            f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f})"
        )

    print(
        f"\n(c) a contract of {seats:,} seats (monthly, from 2026-01-01, 12 months), in process, SQLite"
    )
    print(line(f"purchase summary of {args.quote_seats} more seats", summary_times))
    print(line("billing preview of 2026-02", preview_times))
    print(line(f"buying {args.quote_seats} seats (--yes)", buy_times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (median reported)")
    parser.add_argument("--users", type=int, default=10_000, help="integration users")
    parser.add_argument("--decisions", type=int, default=200_000, help="allowed checks per run")
    parser.add_argument("--denied", type=int, default=2_000, help="denied checks per run")
    parser.add_argument(
        "--denied-batched", type=int, default=50_000, help="denied checks per batched-audit run"
    )
    parser.add_argument("--audit-batch", type=int, default=500, help="audit_batch of that run")
    parser.add_argument("--only", choices=("checks", "assign", "big"), help="run one part only")
    parser.add_argument(
        "--quote-seats", type=int, default=10, help="seats quoted and bought in (c)"
    )
    parser.add_argument("--profile", action="store_true", help="print cProfile tables as well")
    args = parser.parse_args()
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"python {sys.version.split()[0]}, {sys.platform}\n")
    with tempfile.TemporaryDirectory(prefix="seatgate-bench-") as tmp:
        workdir = Path(tmp)
        if args.only in (None, "checks"):
            bench_checks(workdir, args)
        if args.only in (None, "assign"):
            bench_assign(workdir, args)
        if args.only in (None, "big"):
            bench_big_contract(workdir, args)


if __name__ == "__main__":
    main()
