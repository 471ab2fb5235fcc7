"""Fixtures of the console's tests: an account in each state the pages show, seeded through the
services over a real database with real CRM sandboxes; the app behind the ASGI test client (fast
tests); and a real ``seatgate serve`` (uvicorn, a child process on 127.0.0.1) driven by Debian's
chromium through Playwright (browser tests).

acme (US, as of 2026-03-20: the restricted phase):
- salesforce: order form, 3 seats hard cap, installed (Salesforce sandbox), synced once (one
  record quarantined), no seat assigned; users u001..u120 known too (more than a page);
- servicenow: 2 seats, 3 assigned (the quantity lowered below them): in overage;
- hubspot: an order-form contract, not installed: an install link's product (HubSpot sandbox);
- pega and the others: no contract (a self-serve purchase).
other: a salesforce contract of its own (a foreign account).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from fastapi.testclient import TestClient

from seatgate.adapters.hubspot.sandbox import HubSpotSandbox
from seatgate.adapters.salesforce.sandbox import SalesforceSandbox
from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock, parse_instant
from seatgate.core.entrypoints.http.app import create_app
from seatgate.core.entrypoints.http.settings import Settings

AS_OF = "2026-03-20T12:00:00Z"
ACME, OTHER = "acme", "other"
ADMIN = "admin@acme.example"
CLERK = "clerk@acme.example"  # an actor without Install or Manage
USERS = [f"u{i:03d}@acme.example" for i in range(1, 121)]
SECRET_KEY = "console-test-server-secret-0123456789abcdef"
SF_ENV = {
    "SEATGATE_ACCOUNT_acme__SF_PASSWORD": "password",
    "SEATGATE_ACCOUNT_acme__SF_TOKEN": "security_token",
}
HS_ENV = "SEATGATE_ACCOUNT_acme__HS_TOKEN"
CHROMIUM = "/usr/bin/chromium"
DOCS_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"


@attrs.define
class World:
    url: str
    core: App
    tokens: dict[str, str]
    sf: SalesforceSandbox
    hs: HubSpotSandbox
    env: dict[str, str]
    link: str = ""  # an install link's URL path, /install/TOKEN

    def secrets(self) -> list[str]:
        """Every secret a page must never show: the tokens, the CRM credentials, the server
        secret, the install link's token."""
        found = [*self.tokens.values(), *self.env.values(), SECRET_KEY]
        if self.link:
            found.append(self.link.rsplit("/", 1)[-1])
        return found


def _contract(core: App, account: str, product: str, seats: int, **extra: Any) -> None:
    core.contracts.create(
        account,
        product,
        seats=seats,
        plan="standard",
        frequency="monthly",
        start=dt.date(2026, 1, 1),
        months=12,
        unit_price=Decimal("25.00"),
        **extra,
    )


def seed(core: App, sf: SalesforceSandbox, hs: HubSpotSandbox) -> dict[str, str]:
    """The accounts of the module's docstring; a token per name."""
    for name, admin in ((ACME, ADMIN), (OTHER, "admin@other.example")):
        core.accounts.create(name, "US", admin=admin)
        _contract(core, name, "salesforce", 3)
    _contract(core, ACME, "servicenow", 3)
    _contract(core, ACME, "hubspot", 5)
    core.accounts.add_users(ACME, USERS, name="Agent", actor=ADMIN)
    core.seats.assign(ACME, "servicenow", USERS[:3], ADMIN)
    core.contracts.set_quantity(ACME, "servicenow", 2, ADMIN)  # now in overage
    settings = {**sf.settings(), **{field: "${" + env + "}" for env, field in SF_ENV.items()}}
    core.installs.install(ACME, "salesforce", settings, ADMIN)
    sf.store.change([2], email="not an email")  # quarantined by the sync
    core.sync.sync(ACME, "salesforce", full=True)
    made = {
        "admin": core.tokens.create(ACME, "admin", ADMIN),
        "billing": core.tokens.create(ACME, "billing", ADMIN),
        "clerk": core.tokens.create(ACME, "admin", CLERK),
        "other": core.tokens.create(OTHER, "admin", "admin@other.example"),
    }
    return {name: issued.secret for name, issued in made.items()}


@contextlib.contextmanager
def make_world(url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with SalesforceSandbox(5) as sf, HubSpotSandbox(3) as hs:
        env = {env: str(sf.settings()[field]) for env, field in SF_ENV.items()}
        env[HS_ENV] = str(hs.settings()["access_token"])
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        core = App(url, clock=FixedClock(parse_instant(AS_OF)), secret_key=SECRET_KEY)
        try:
            tokens = seed(core, sf, hs)
            link = core.install_links.create(ACME, "hubspot", ADMIN, ADMIN)
            yield World(url, core, tokens, sf, hs, env, link="/install/" + link.token)
        finally:
            core.close()


@pytest.fixture
def world(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """The world on SQLite and on PostgreSQL (the browser tests override it: SQLite only)."""
    with make_world(db_url, monkeypatch) as made:
        yield made


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    """The app in process; base_url on a loopback address, as the server's."""
    app = create_app(world.core, Settings(db_url=world.url, as_of=AS_OF))
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        yield test_client


def sign_in(client: TestClient, token: str) -> None:
    page = client.get("/console/login")
    csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    answer = client.post(
        "/console/login", data={"token": token, "csrf": csrf}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text


def csrf_of(html: str) -> str:
    return html.split('name="csrf" value="', 1)[1].split('"', 1)[0]


# -- a real server and a real browser -------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@attrs.define
class Served:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@pytest.fixture
def served(world: World, tmp_path: Path) -> Iterator[Served]:
    """``seatgate serve`` in a child process on a free port of 127.0.0.1, on the world's
    database, as of the world's instant, with the server secret and the CRM credentials in its
    environment (as an operator would give them)."""
    port = _free_port()
    seatgate = Path(sys.executable).with_name("seatgate")
    env = {**os.environ, **world.env, "SEATGATE_SECRET_KEY": SECRET_KEY}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(seatgate), "--db", world.url, "--as-of", AS_OF, "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"seatgate serve did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    try:
        yield Served(url, process, log)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


# Module scope, not session: Playwright's sync API runs an event loop in this thread while it is
# open, and a later module's asyncio.run() would then refuse to start.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium, headless, driven by Playwright (no browser is downloaded)."""
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, served: Served) -> Iterator[Any]:
    context = browser.new_context(base_url=served.url, viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    yield tab
    context.close()
