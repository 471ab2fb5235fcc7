"""Issue 18's fixtures: an App with the in-memory CRM (a real HTTP sandbox) listed in the catalog
with a partner and add-on plans, a server secret, a test clock, a real local SMTP server and a
real local webhook receiver."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import seatgate.core
from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock, parse_instant
from seatgate.core.domain.catalog import Catalog
from seatgate.core.plugins.manager import build_plugin_manager
from seatgate.core.testing.memory import MemoryAdapter, MemorySandbox

from .servers import Receiver, SmtpServer

ADMIN = "admin@acme.example"
P = "memory"
PARTNER = "memco"
SECRET = "test-server-secret-0123456789-abcdefghijklmnop"
KEY_ENV = "MEMORY_CRM_TEST_KEY"
# Over HTTP a tenant's config names only its account's variables (docs/http.md).
ACME_KEY_ENV = "SEATGATE_ACCOUNT_acme__MEMORY_KEY"


def catalog_with_memory() -> Catalog:
    """The built-in catalog, plus the in-memory app published by ``memco`` with two add-ons."""
    return Catalog.from_json(catalog_data(), "test")


def catalog_data() -> dict[str, Any]:
    """:func:`catalog_with_memory` as the JSON a ``SEATGATE_CATALOG`` file holds."""
    data = json.loads((Path(seatgate.core.__file__).parent / "data" / "catalog.json").read_text())
    data = copy.deepcopy(data)
    data["versions"][0]["products"][P] = {
        "partner": PARTNER,
        "base_plans": {
            "basic": {"charge_model": "per_seat", "monthly_price": "12.00", "currency": "USD"}
        },
        "addon_plans": {
            "insights": {"charge_model": "per_seat", "monthly_price": "3.00", "currency": "USD"},
            "reports": {"charge_model": "per_account", "monthly_price": "90.00", "currency": "USD"},
        },
    }
    return data


@pytest.fixture
def crm(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemorySandbox]:
    with MemorySandbox(users=5) as sandbox:
        monkeypatch.setenv(KEY_ENV, sandbox.settings()["api_key"])
        monkeypatch.setenv(ACME_KEY_ENV, sandbox.settings()["api_key"])
        yield sandbox


def config(crm: MemorySandbox, env: str = KEY_ENV) -> dict[str, Any]:
    return {"instance": crm.instance, "api_key": "${" + env + "}"}


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(parse_instant("2026-02-10T09:00:00Z"))


def make_app(db_url: str, clock: FixedClock, **kwargs: Any) -> App:
    plugins = build_plugin_manager(
        builtins=(), entry_points=False, plugins=[("memory", MemoryAdapter())], strict=True
    )
    kwargs.setdefault("secret_key", SECRET)
    kwargs.setdefault("smtp_url", "")
    return App(db_url, clock=clock, plugins=plugins, catalog=catalog_with_memory(), **kwargs)


@pytest.fixture
def app(db_url: str, clock: FixedClock) -> Iterator[App]:
    application = make_app(db_url, clock)
    yield application
    application.close()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


def account(app: App, name: str = "acme", admin: str = ADMIN) -> str:
    app.accounts.create(name, "US", admin=admin)
    return name


def order_form(app: App, name: str = "acme", **terms: Any) -> None:
    values: dict[str, Any] = dict(
        seats=10,
        plan="basic",
        frequency="monthly",
        start=dt.date(2026, 1, 1),
        months=12,
        unit_price=Decimal("10.00"),
        channel="order_form",
    )
    values.update(terms)
    app.contracts.create(name, P, **values)


def count(app: App, table: sa.Table, *where: Any) -> int:
    with app.db.read() as conn:
        query = sa.select(sa.func.count()).select_from(table)
        for clause in where:
            query = query.where(clause)
        return int(conn.execute(query).scalar_one())


def dump(app: App, *tables: sa.Table) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of ``tables``, to compare before and after a refusal."""
    with app.db.read() as conn:
        return {
            t.name: sorted(map(tuple, conn.execute(sa.select(t)).all()), key=repr) for t in tables
        }
