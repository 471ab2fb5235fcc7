"""Fixtures for the sync engine's tests: an App whose only adapter is the in-memory one, a CRM
(``MemorySandbox``) and an account with a contract, an admin and the adapter installed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock
from seatgate.core.plugins import RequestContext, RetryPolicy, UserPage, hookimpl
from seatgate.core.plugins.manager import Plugins, build_plugin_manager
from seatgate.core.testing.memory import MemoryAdapter, MemorySandbox
from seatgate.core.testing.setup import account_with_contract

ACCOUNT = "acme"
ADMIN = "admin@acme.example"
KEY_ENV = "MEMORY_CRM_TEST_KEY"


class Sleeps(list[float]):
    """RetryPolicy.sleep that records instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def retry(sleeps: Sleeps) -> RetryPolicy:
    return RetryPolicy(attempts=3, sleep=sleeps)


def memory_plugins(*extra: tuple[str, object], adapter: object | None = None) -> Plugins:
    return build_plugin_manager(
        builtins=(),
        entry_points=False,
        plugins=[("memory", adapter or MemoryAdapter()), *extra],
        strict=True,
    )


@pytest.fixture
def crm() -> Iterator[MemorySandbox]:
    with MemorySandbox(users=40) as sandbox:
        yield sandbox


def make_app(url: str, clock: FixedClock, plugins: Plugins) -> App:
    return App(url, clock=clock, plugins=plugins)


@pytest.fixture
def mem_app(db_url: str, clock: FixedClock) -> Iterator[App]:
    application = make_app(db_url, clock, memory_plugins())
    yield application
    application.db.dispose()


def setup_account(
    app: App,
    *,
    seats: int = 1000,
    mode: str = "hard_cap",
    region: str = "US",
    with_contract: bool = True,
    product: str = "memory",
) -> None:
    account_with_contract(
        app,
        ACCOUNT,
        product,
        admin=ADMIN,
        seats=seats,
        mode=mode,
        region=region,
        with_contract=with_contract,
    )


def memory_config(crm: MemorySandbox, **core: Any) -> dict[str, Any]:
    return {"instance": crm.instance, "api_key": "${" + KEY_ENV + "}", **core}


@pytest.fixture
def installed(
    mem_app: App, crm: MemorySandbox, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., App]:
    """Call with contract / core-config keywords; returns the App with `memory` installed."""
    monkeypatch.setenv(KEY_ENV, crm.settings()["api_key"])

    def make(*, seats: int = 1000, mode: str = "hard_cap", **core: Any) -> App:
        setup_account(mem_app, seats=seats, mode=mode)
        mem_app.installs.install(ACCOUNT, "memory", memory_config(crm, **core), ADMIN)
        return mem_app

    return make


class StepAdapter(MemoryAdapter):
    """The memory adapter, calling ``on_page(n)`` before it hands over page ``n``."""

    def __init__(self) -> None:
        self.on_page: Callable[[int], None] | None = None

    @hookimpl
    def seatgate_pull_users(
        self,
        product: str,
        settings: Mapping[str, Any],
        since: dt.datetime | None,
        ctx: RequestContext,
    ) -> Iterator[UserPage]:
        pages = MemoryAdapter.seatgate_pull_users(self, product, settings, since, ctx)
        for n, page in enumerate(pages):
            if self.on_page is not None:
                self.on_page(n)
            yield page


@pytest.fixture
def adapter() -> StepAdapter:
    return StepAdapter()
