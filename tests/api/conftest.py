"""Fixtures of the HTTP API's tests: two accounts, tokens of every role, the in-memory CRM
installed, the app behind the ASGI test client, and a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import attrs
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from seatgate.core.bootstrap import App
from seatgate.core.entrypoints.http.app import create_app
from seatgate.core.entrypoints.http.server import build_core
from seatgate.core.entrypoints.http.settings import Settings
from seatgate.core.plugins.manager import build_plugin_manager
from seatgate.core.storage.notifications import ChangeFeed
from seatgate.core.testing.memory import MemoryAdapter, MemorySandbox

AS_OF = "2026-03-20T12:00:00Z"  # restricted phase in the US: seats decide
ACME, OTHER = "acme", "other"
ADMIN = "admin@acme.example"
PRODUCT = "memory"
KEY_ENV = "MEMORY_CRM_TEST_KEY"
USERS = [f"u{i}@acme.example" for i in range(1, 6)]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@attrs.define
class World:
    core: App
    settings: Settings
    tokens: dict[str, str]
    crm: MemorySandbox
    app: FastAPI | None = None

    def h(self, role: str) -> dict[str, str]:
        return bearer(self.tokens[role])


def make_core(url: str, **settings: Any) -> tuple[App, Settings]:
    # No background webhook sender unless a test asks for one (tests/orders/test_http.py does):
    # it would post what a test seeds on its own schedule.
    settings.setdefault("webhook_interval", 0)
    config = Settings(db_url=url, as_of=AS_OF, **settings)
    # The built-in adapters (loaded when needed) and the in-memory one: checks and billing on
    # salesforce, installs and syncs against the in-process memory CRM.
    plugins = build_plugin_manager(
        entry_points=False, plugins=[("memory", MemoryAdapter())], strict=True, lazy=True
    )
    return build_core(config, plugins), config


def seed(core: App, crm: MemorySandbox, *, seats: int = 3) -> dict[str, str]:
    """acme: contracts of ``seats`` for memory and salesforce, users u1..u5, memory installed;
    other: the same contracts, no users. Returns a token per role name."""
    for name, admin in ((ACME, ADMIN), (OTHER, "admin@other.example")):
        core.accounts.create(name, "US")
        core.accounts.grant(name, admin, "manage", None)
        for product in (PRODUCT, "salesforce"):
            core.contracts.create(
                name,
                product,
                seats=seats,
                plan="standard",
                frequency="monthly",
                start=dt.date(2026, 1, 1),
                months=12,
                unit_price=Decimal("10"),
            )
    core.accounts.add_users(ACME, USERS, roles=(), name="", actor=ADMIN)
    config = {"instance": crm.instance, "api_key": "${" + KEY_ENV + "}"}
    core.installs.install(ACME, PRODUCT, config, ADMIN)
    made = {
        "admin": core.tokens.create(ACME, "admin", ADMIN),
        "check": core.tokens.create(ACME, "check"),
        "billing": core.tokens.create(ACME, "billing", ADMIN),
        "powerless": core.tokens.create(ACME, "admin", "clerk@acme.example"),
        "other": core.tokens.create(OTHER, "admin", "admin@other.example"),
        # The partner who publishes salesforce in the built-in catalog, acting in acme.
        "partner": core.tokens.create(
            ACME, "partner", "ops@cloudlane.example", partner="cloudlane"
        ),
    }
    return {role: issued.secret for role, issued in made.items()}


@pytest.fixture
def crm(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemorySandbox]:
    with MemorySandbox(users=8) as sandbox:
        monkeypatch.setenv(KEY_ENV, sandbox.settings()["api_key"])
        yield sandbox


@pytest.fixture
def world(db_url: str, crm: MemorySandbox) -> Iterator[World]:
    core, settings = make_core(db_url)
    tokens = seed(core, crm)
    yield World(core, settings, tokens, crm)
    core.close()


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    world.app = create_app(world.core, world.settings)
    with TestClient(world.app) as test_client:
        yield test_client


class LiveServer:
    """A real uvicorn server on 127.0.0.1 (a free port), in a thread of the test process."""

    def __init__(self, app: FastAPI) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(20)


@pytest.fixture
def live(world: World) -> Iterator[LiveServer]:
    world.app = create_app(world.core, world.settings)
    with LiveServer(world.app) as server:
        yield server


def listen(core: App) -> tuple[list[str], ChangeFeed]:
    """A real change feed on ``core``'s database, connected, and what it is told from then on as
    payloads (``e:<account>``, ``l:<account>``, ``t``); stop the feed when done."""
    told: list[str] = []
    feed = ChangeFeed(
        core.db,
        on_entitlements=lambda account: told.append(f"e:{account}"),
        on_tokens=lambda: told.append("t"),
        on_lagged=lambda account: told.append(f"l:{account}"),
        poll=0.05,
    ).start()
    assert feed.connected.wait(10)
    # Connecting reports "anything may have changed" (e:None, t) before ``connected`` is set.
    told.clear()
    return told, feed


def settle(told: list[str]) -> list[str]:
    """What a feed was told once notifications stop arriving (it reports asynchronously)."""
    deadline = time.monotonic() + 10
    seen = -1
    while time.monotonic() < deadline:
        time.sleep(0.2)  # notifications arriving from the server, not a clock the test moves
        if len(told) == seen:
            break
        seen = len(told)
    return told[:]
