"""The webhook sender: N deliveries posted, signed, to a local receiver (goal: 2,000 in under 10 s
on SQLite, i.e. 200 a second or more, from one sender).

    .venv/bin/python bench/webhook_deliver.py --events 2000 --runs 5

Each run builds a fresh database with one account, one endpoint subscribed to seat.assigned, and
N events written through the listener (untimed), then times ``WebhookService.deliver()`` — lease,
sign, POST over HTTP/1.1 keep-alive to a threaded local server answering 204, record the attempt.
Prints the median and every run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from seatgate.core.bootstrap import App
from seatgate.core.clock import UTC, FixedClock
from seatgate.core.domain.events import SeatsAssigned

ADMIN = "admin@bench.example"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def one_run(n: int, url: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        clock = FixedClock(dt.datetime(2026, 2, 10, 9, tzinfo=UTC))
        app = App(f"sqlite:///{Path(tmp)}/bench.db", clock=clock, secret_key="b" * 40)
        try:
            app.accounts.create("acme", "US", admin=ADMIN)
            app.webhooks.add("acme", url, ["seat.assigned"], ADMIN)
            for i in range(n):
                app.webhooks.enqueue(
                    SeatsAssigned(
                        account="acme", product="salesforce", at=clock.now(),
                        emails=(f"u{i}@acme.example",), actor=ADMIN, reason="admin",
                    )
                )  # fmt: skip
            t0 = time.perf_counter()
            run = app.webhooks.deliver()
            seconds = time.perf_counter() - t0
            assert run.delivered == n, run
            return seconds
        finally:
            app.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    times = [one_run(args.events, url) for _ in range(args.runs)]
    server.shutdown()
    median = statistics.median(times)
    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"goal: {args.events} deliveries in under 10 s (200/s or more)")
    print(
        f"median {median:.2f} s ({args.events / median:.0f} deliveries/s); runs: "
        + ", ".join(f"{t:.2f}" for t in times)
    )


if __name__ == "__main__":
    main()
