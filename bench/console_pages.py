"""Console pages with a large account (issue 16 item 6: "a page stays fast with 100,000 users").

    .venv/bin/python bench/console_pages.py [--users 100000] [--runs 3] [--requests 5] [--db URL]

An account with ``--users`` integration users, half of them seated on a hard-cap salesforce
contract (setup not timed). A real ``seatgate serve`` (one uvicorn worker, 127.0.0.1) is signed in
to once; then each page is fetched ``--requests`` times in a row over HTTP (keep-alive, one
client), and that is repeated ``--runs`` times. Printed per page: the median over runs of the
median request time, and the median over runs of the slowest request, in milliseconds.

Pages: My Apps; Manage Seats page 1, a page deep in the list (by its cursor), a search; the buy
summary; Billing (the month's preview); Syncs. Each Manage Seats page reads one keyset page of 50
users (never the account's users), so its time should not grow with ``--users``.

Nothing here asserts a speed: it prints figures for a person to read. The machine may be shared
with other work: say so when quoting the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import httpx

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock, parse_instant

AS_OF = "2026-03-20T12:00:00Z"
ACCOUNT = "bench"
ADMIN = "admin@example.com"
CHUNK = 10_000


def setup(url: str, users: int) -> str:
    """The account; returns an admin token."""
    app = App(url, clock=FixedClock(parse_instant(AS_OF)))
    app.accounts.create(ACCOUNT, "US", admin=ADMIN)
    app.contracts.create(
        ACCOUNT,
        "salesforce",
        seats=users // 2,
        plan="standard",
        frequency="monthly",
        start=dt.date(2026, 1, 1),
        months=12,
        unit_price=Decimal("25.00"),
    )
    emails = [f"agent{i:06d}@example.com" for i in range(users)]
    for start in range(0, users, CHUNK):
        app.accounts.add_users(ACCOUNT, emails[start : start + CHUNK], actor=ADMIN)
    for start in range(0, users // 2, CHUNK):
        app.seats.assign(
            ACCOUNT, "salesforce", emails[start : min(start + CHUNK, users // 2)], ADMIN
        )
    token = app.tokens.create(ACCOUNT, "admin", ADMIN).secret
    app.close()
    return token


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    seatgate = Path(sys.executable).with_name("seatgate")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(seatgate), "--db", url, "--as-of", AS_OF, "serve", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"seatgate serve did not start: {log.read_text()[-2000:]}")


def signed_in(base: str, token: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=60, follow_redirects=True)
    page = client.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    done = client.post("/console/login", data={"token": token, "csrf": csrf.group(1)})
    assert done.status_code == 200 and "My Apps" in done.text, done.status_code
    return client


def time_page(client: httpx.Client, path: str, requests: int) -> tuple[float, float]:
    """(median, slowest) seconds of ``requests`` fetches of ``path``."""
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        answer = client.get(path)
        times.append(time.perf_counter() - start)
        if answer.status_code != 200:
            raise SystemExit(f"{path}: HTTP {answer.status_code}")
    return statistics.median(times), max(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--db", default=None, help="a database URL (default: a new SQLite file)")
    args = parser.parse_args(argv)
    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}")
    with tempfile.TemporaryDirectory(prefix="seatgate-console-bench-") as tmp:
        url = args.db or f"sqlite:///{tmp}/bench.db"
        started = time.perf_counter()
        token = setup(url, args.users)
        print(
            f"setup: {args.users:,} users, {args.users // 2:,} seated, "
            f"{time.perf_counter() - started:.1f} s (not timed below); "
            f"{'PostgreSQL' if url.startswith('postgresql') else 'SQLite'}, {os.cpu_count()} CPUs"
        )
        port = free_port()
        process = serve(url, port, Path(tmp) / "serve.log")
        try:
            client = signed_in(f"http://127.0.0.1:{port}", token)
            seats = f"/console/accounts/{ACCOUNT}/products/salesforce/seats"
            deep = client.get(seats, params={"q": f"agent{args.users - 120:06d}"[:10]}).text
            found = re.search(r'href="([^"]*cursor=[^"]+)">Next page', deep)
            pages = {
                "My Apps": f"/console/accounts/{ACCOUNT}/apps",
                "Manage Seats, page 1": seats,
                "Manage Seats, deep page": found.group(1).replace("&amp;", "&") if found else seats,
                "Manage Seats, search": f"{seats}?q=agent05",
                "Buy summary (5 seats)": f"{seats}/buy?quantity=5",
                "Billing (preview)": f"/console/accounts/{ACCOUNT}/billing",
                "Syncs": f"/console/accounts/{ACCOUNT}/syncs",
            }
            figures: dict[str, list[tuple[float, float]]] = {name: [] for name in pages}
            for _ in range(args.runs):
                for name, path in pages.items():
                    figures[name].append(time_page(client, path, args.requests))
            print(
                f"medians of {args.runs} runs x {args.requests} requests, one client, "
                "keep-alive, 127.0.0.1 (ms):"
            )
            for name, runs in figures.items():
                median = statistics.median(r[0] for r in runs) * 1000
                slowest = statistics.median(r[1] for r in runs) * 1000
                print(f"  {name:<26} median {median:7.1f}   slowest {slowest:7.1f}")
            client.close()
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
