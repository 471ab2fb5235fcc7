"""Two ``seatgate serve`` processes on one PostgreSQL database: a check on one right after an
unassign on the other denies (the fence and version freshness; notifications alone do not
promise it, and under load were seen to lose the race), and a token revoked by the CLI stops
working on both at once."""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock, parse_instant

from .conftest import AS_OF, bearer

SEATGATE = str(Path(sys.executable).with_name("seatgate"))
EMAILS = [f"agent{i}@acme.example" for i in range(3)]
CHECK = "/v1/accounts/acme/products/salesforce/users/{email}/entitlements/cti"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    def __init__(self, url: str, freshness: str, workers: int = 1) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                SEATGATE,
                "--db",
                url,
                "--as-of",
                AS_OF,
                "serve",
                "--port",
                str(self.port),
                "--freshness",
                freshness,
                "--workers",
                str(workers),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.stderr.read() if self.proc.stderr else ""
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError("seatgate serve did not become ready")

    def stop(self) -> str:
        self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err.decode()


def test_several_workers_add_up_their_metrics(sqlite_url: str) -> None:
    """``serve --workers 2`` (SQLite: version freshness): the metrics of both workers in one
    scrape, whichever worker answers it."""
    core = App(sqlite_url, clock=FixedClock(parse_instant(AS_OF)))
    core.accounts.create("acme", "US")
    core.contracts.create(
        "acme", "salesforce", seats=5, plan="standard", frequency="monthly",
        start=dt.date(2026, 1, 1), months=12, unit_price=Decimal("10"),
    )  # fmt: skip
    core.accounts.add_users("acme", EMAILS, roles=(), name="", actor=None)
    token = core.tokens.create("acme", "check").secret
    core.close()
    server = Server(sqlite_url, "auto", workers=2)
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.base, timeout=10) as http:
            for _ in range(30):  # new connections: the kernel spreads them over both workers
                got = httpx.get(server.base + CHECK.format(email=EMAILS[0]), headers=bearer(token))
                assert got.json()["reason"] == "no_seat"
            text = http.get("/metrics").text
    finally:
        log = server.stop()
    assert 'seatgate_check_decisions_total{reason="no_seat"} 30.0' in text
    lines = [json.loads(line) for line in log.splitlines() if '"request_id"' in line]
    assert sum(1 for line in lines if line["route"].endswith("{feature}")) == 30
    assert token not in log


@pytest.fixture(params=["fence", "version"])
def two_servers(
    request: pytest.FixtureRequest, postgres_url: str
) -> Iterator[tuple[Server, Server, App, dict[str, str]]]:
    core = App(postgres_url, clock=FixedClock(parse_instant(AS_OF)))
    core.accounts.create("acme", "US")
    core.accounts.grant("acme", "admin@acme.example", "manage", None)
    core.contracts.create(
        "acme", "salesforce", seats=5, plan="standard", frequency="monthly",
        start=dt.date(2026, 1, 1), months=12, unit_price=Decimal("10"),
    )  # fmt: skip
    core.accounts.add_users("acme", EMAILS, roles=(), name="", actor="admin@acme.example")
    tokens = {
        "admin": core.tokens.create("acme", "admin", "admin@acme.example").secret,
        "check": core.tokens.create("acme", "check").secret,
    }
    servers = [Server(postgres_url, request.param) for _ in range(2)]
    logs: list[str] = []
    try:
        for server in servers:
            server.wait_ready()
        yield servers[0], servers[1], core, tokens
    finally:
        logs = [server.stop() for server in servers]
        core.close()
    for secret in tokens.values():  # no log line of either server holds a token
        assert all(secret not in log for log in logs)


@pytest.mark.postgres
def test_a_check_right_after_an_unassign_on_the_other_server_denies(
    two_servers: tuple[Server, Server, App, dict[str, str]],
) -> None:
    a, b, _, tokens = two_servers
    admin, check = bearer(tokens["admin"]), bearer(tokens["check"])
    url = CHECK.format(email=EMAILS[0])
    seats = "/v1/accounts/acme/products/salesforce/seats"
    with (
        httpx.Client(base_url=a.base, timeout=10) as on_a,
        httpx.Client(base_url=b.base, timeout=10) as on_b,
    ):
        for _ in range(25):
            got = on_a.post(f"{seats}/assign", json={"emails": [EMAILS[0]]}, headers=admin)
            assert got.status_code == 200
            assert on_b.get(url, headers=check).json()["reason"] == "seated"
            assert on_b.get(url, headers=check).json()["reason"] == "seated"  # cached now
            got = on_a.post(f"{seats}/unassign", json={"emails": [EMAILS[0]]}, headers=admin)
            assert got.json()["unassigned"] == [EMAILS[0]]
            assert on_b.get(url, headers=check).json()["reason"] == "no_seat"


@pytest.mark.postgres
def test_a_token_revoked_by_the_cli_stops_working_on_every_server(
    two_servers: tuple[Server, Server, App, dict[str, str]], postgres_url: str
) -> None:
    a, b, core, tokens = two_servers
    url = CHECK.format(email=EMAILS[1])
    for server in (a, b):
        assert httpx.get(server.base + url, headers=bearer(tokens["check"])).status_code == 200
    token_id = next(t.id for t in core.tokens.list("acme") if t.role == "check")
    done = subprocess.run(
        [SEATGATE, "--db", postgres_url, "--json", "token", "revoke", token_id],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for server in (a, b):
        got = httpx.get(server.base + url, headers=bearer(tokens["check"]))
        assert got.status_code == 401
