"""Webhooks sent by ``seatgate serve`` itself: N seat assignments over HTTP, each making one
``seat.assigned`` event, posted by the server's background sender to a local receiver.

    .venv/bin/python bench/serve_webhooks.py --events 200 --interval 0.5 --runs 3

Each run builds a fresh SQLite database (one account, N users, a contract, one endpoint), starts
a real ``seatgate serve`` process (``--webhook-interval``), makes the N assignments one after the
other over a keep-alive connection, and measures for each event the time from the assignment's
answer to the receiver's receipt (what an integration waits to hear of a change), and the time
from the first assignment to the last receipt. Prints medians of the runs' p50/p95 latencies and
throughput, and the machine's load average (a shared machine moves them).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock, parse_instant

ADMIN = "admin@bench.example"
AS_OF = "2026-03-20T12:00:00Z"
SECRET = "bench-server-secret-0123456789abcdefghij"
SEATGATE = str(Path(sys.executable).with_name("seatgate"))


class Receiver:
    """Notes when each event (by the email it names) arrives; answers 204."""

    def __init__(self) -> None:
        self.received: dict[str, float] = {}
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                at = time.perf_counter()
                email = body.split(b'"emails":["', 1)[1].split(b'"', 1)[0].decode()
                with outer.lock:
                    outer.received.setdefault(email, at)
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def one_run(n: int, interval: float, receiver: Receiver) -> tuple[float, float, float]:
    """(p50, p95 seconds from answer to receipt, deliveries per second end to end)."""
    receiver.received.clear()
    emails = [f"u{i}@bench.example" for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{Path(tmp)}/bench.db"
        app = App(db, clock=FixedClock(parse_instant(AS_OF)), secret_key=SECRET, smtp_url="")
        try:
            app.accounts.create("acme", "US", admin=ADMIN)
            app.contracts.create(
                "acme", "salesforce", seats=n, plan="standard", frequency="monthly",
                start=dt.date(2026, 1, 1), months=12, unit_price=Decimal("10"),
            )  # fmt: skip
            app.accounts.add_users("acme", emails, roles=(), name="", actor=ADMIN)
            app.webhooks.add("acme", receiver.url, ["seat.assigned"], ADMIN)
            token = app.tokens.create("acme", "admin", ADMIN).secret
        finally:
            app.close()
        port = free_port()
        proc = subprocess.Popen(
            [SEATGATE, "--db", db, "--as-of", AS_OF, "serve", "--port", str(port),
             "--webhook-interval", str(interval)],
            env={**os.environ, "SEATGATE_SECRET_KEY": SECRET},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("seatgate serve did not start")
                time.sleep(0.05)
            answered: dict[str, float] = {}
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=base, timeout=30, headers=headers) as http:
                t0 = time.perf_counter()
                for email in emails:
                    got = http.post(
                        "/v1/accounts/acme/products/salesforce/seats/assign",
                        json={"emails": [email]},
                    )
                    answered[email] = time.perf_counter()
                    assert got.status_code == 200, got.text
            deadline = time.monotonic() + 120
            while len(receiver.received) < n:
                if time.monotonic() > deadline:
                    raise SystemExit(f"only {len(receiver.received)} of {n} events arrived")
                time.sleep(0.01)
            last = max(receiver.received.values())
        finally:
            proc.terminate()
            proc.wait(30)
    waits = sorted(receiver.received[e] - answered[e] for e in emails)
    p50 = waits[len(waits) // 2]
    p95 = waits[min(len(waits) - 1, int(len(waits) * 0.95))]
    return p50, p95, n / (last - t0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    receiver = Receiver()
    runs = [one_run(args.events, args.interval, receiver) for _ in range(args.runs)]
    receiver.server.shutdown()
    p50 = statistics.median(r[0] for r in runs)
    p95 = statistics.median(r[1] for r in runs)
    rate = statistics.median(r[2] for r in runs)
    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"load average {os.getloadavg()[0]:.2f} (a shared machine: other work moves these)")
    print(
        f"{args.events} assignments over HTTP, --webhook-interval {args.interval:g}: answer to "
        f"receipt p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms; {rate:.0f} events/s end to "
        "end (medians of the runs)"
    )
    for n, (a, b, c) in enumerate(runs, 1):
        print(f"  run {n}: p50 {a * 1000:.0f} ms, p95 {b * 1000:.0f} ms, {c:.0f} events/s")


if __name__ == "__main__":
    main()
