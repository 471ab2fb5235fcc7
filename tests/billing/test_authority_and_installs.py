"""Issue 11 items 10, 12 and 14: purchasing authority (who may grant it, commitments), reinstalling
after an uninstall, and a marketplace install without a contract (a self-serve purchase). The
installs use the in-memory adapter, listed in a catalog of the test's own."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

import seatgate.core
from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock, parse_instant
from seatgate.core.domain.catalog import Catalog
from seatgate.core.entrypoints.cli import Context, main, main_group
from seatgate.core.errors import BadInput, Conflict, NotAuthorized
from seatgate.core.plugins.manager import build_plugin_manager
from seatgate.core.storage.tables import audit_log, contracts, installations, permissions
from seatgate.core.testing.memory import MemoryAdapter, MemorySandbox

ADMIN = "admin@acme.example"
P = "memory"
KEY_ENV = "MEMORY_CRM_TEST_KEY"


def catalog_with_memory() -> Catalog:
    """The built-in catalog, plus a marketplace listing for the in-memory app."""
    data = json.loads((Path(seatgate.core.__file__).parent / "data" / "catalog.json").read_text())
    data = copy.deepcopy(data)
    data["versions"][0]["products"][P] = {
        "base_plans": {
            "basic": {"charge_model": "per_seat", "monthly_price": "12.00", "currency": "USD"}
        },
        "addon_plans": {},
    }
    return Catalog.from_json(data, "test")


@pytest.fixture
def crm(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemorySandbox]:
    with MemorySandbox(users=5) as sandbox:
        monkeypatch.setenv(KEY_ENV, sandbox.settings()["api_key"])
        yield sandbox


@pytest.fixture
def app(db_url: str) -> Iterator[App]:
    plugins = build_plugin_manager(
        builtins=(), entry_points=False, plugins=[("memory", MemoryAdapter())], strict=True
    )
    application = App(
        db_url,
        clock=FixedClock(parse_instant("2026-02-10T09:00:00Z")),
        plugins=plugins,
        catalog=catalog_with_memory(),
    )
    yield application
    application.db.dispose()


def config(crm: MemorySandbox) -> dict[str, Any]:
    return {"instance": crm.instance, "api_key": "${" + KEY_ENV + "}"}


def count(app: App, table: sa.Table, *where: Any) -> int:
    with app.db.read() as conn:
        query = sa.select(sa.func.count()).select_from(table)
        for clause in where:
            query = query.where(clause)
        return int(conn.execute(query).scalar_one())


def at(app: App, instant: str) -> None:
    clock = app.clock
    assert isinstance(clock, FixedClock)
    clock.set(parse_instant(instant))


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("argv", nargs=-1, type=click.UNPROCESSED)
def seatgate_main(argv: tuple[str, ...]) -> None:
    """``seatgate`` itself (its error handling included), under CliRunner."""
    main(list(argv))


# -- 10. purchasing authority --------------------------------------------------------------------------


def test_10_nobody_grants_themselves_purchasing_authority(app: App) -> None:
    app.accounts.create("a", "US", admin="Boss@A.com")
    with pytest.raises(NotAuthorized):
        app.accounts.grant("a", "nobody@a.com", "manage", "nobody@a.com")
    assert count(app, audit_log, audit_log.c.action == "account.grant",
                 audit_log.c.outcome == "not_authorized") == 1  # fmt: skip
    assert count(app, permissions, permissions.c.email == "nobody@a.com") == 0
    app.accounts.grant("a", "buyer@a.com", "install", "boss@a.com")
    with pytest.raises(NotAuthorized):  # install is not enough to grant
        app.accounts.grant("a", "friend@a.com", "install", "buyer@a.com")
    with pytest.raises(NotAuthorized):
        app.accounts.revoke("a", "boss@a.com", "manage", "buyer@a.com")
    with pytest.raises(Conflict, match="last holder of manage"):
        app.accounts.revoke("a", "boss@a.com", "manage", "boss@a.com")
    assert app.accounts.revoke("a", "buyer@a.com", "install", "boss@a.com").changed


def test_10_an_account_without_holders_names_its_first_by_the_first_grant(app: App) -> None:
    app.accounts.create("b", "US")
    assert app.accounts.grant("b", "first@b.com", "manage", None).changed
    with pytest.raises(NotAuthorized):
        app.accounts.grant("b", "second@b.com", "manage", None)


def test_10_a_self_serve_contract_needs_authority_and_records_a_commitment(app: App) -> None:
    app.accounts.create("c", "US", admin=ADMIN)
    terms: dict[str, Any] = dict(
        seats=3, plan="standard", frequency="monthly", start=dt.date(2026, 2, 10), months=1,
        channel="self_serve",
    )  # fmt: skip
    with pytest.raises(NotAuthorized):
        app.contracts.create("c", "salesforce", actor="intern@c.com", **terms)
    app.contracts.create("c", "salesforce", actor=ADMIN, **terms)
    (row,) = app.billing.commitments("c")
    assert (row["actor"], row["action"], row["price_shown"]) == (
        ADMIN,
        "self_serve_purchase",
        Decimal("75.00"),
    )


def test_10_the_cli_names_the_first_holder_and_lists_commitments(sqlite_url: str) -> None:
    def run(*args: str, actor: str = ADMIN) -> tuple[int, str]:
        done = CliRunner().invoke(
            seatgate_main,
            ["--db", sqlite_url, "--as-of", "2026-02-10T09:00:00Z", "--actor", actor, "--json",
             *args],
        )  # fmt: skip
        return done.exit_code, done.output

    code, out = run("account", "create", "a", "--region", "US", "--admin", ADMIN)
    assert code == 0 and json.loads(out)["admin"] == ADMIN
    code, out = run("account", "grant", "a", "nobody@a.com", "--permission", "manage",
                    actor="nobody@a.com")  # fmt: skip
    assert code == 2 and json.loads(out)["error"]["code"] == "not_authorized"
    code, _ = run("account", "grant", "a", "buyer@a.com", "--permission", "install")
    assert code == 0
    code, out = run("account", "revoke", "a", "buyer@a.com", "--permission", "install")
    assert code == 0 and json.loads(out)["changed"] is True
    run("contract", "create", "a", "salesforce", "--seats", "2", "--plan", "standard",
        "--frequency", "monthly", "--start", "2026-02-10", "--months", "1",
        "--channel", "self_serve")  # fmt: skip
    code, out = run("commitments", "list", "a")
    listed = json.loads(out)["commitments"]
    assert code == 0 and [(c["actor"], c["action"], c["price_shown"]) for c in listed] == [
        (ADMIN, "self_serve_purchase", "50.00")
    ]


# -- 12. reinstalling after an uninstall ------------------------------------------------------------


def installed_with_contract(app: App, crm: MemorySandbox) -> None:
    app.accounts.create("acme", "US", admin=ADMIN)
    app.contracts.create(
        "acme", P, seats=2, plan="basic", frequency="monthly", start=dt.date(2026, 1, 1),
        months=3, unit_price=Decimal("12.00"),
    )  # fmt: skip
    app.installs.install("acme", P, config(crm), ADMIN)


def test_12_reinstalling_before_the_effective_date_withdraws_the_uninstall(
    app: App, crm: MemorySandbox
) -> None:
    installed_with_contract(app, crm)
    app.purchases.uninstall("acme", P, ADMIN)  # effective 2026-04-01
    app.purchases.open_ticket("acme", P, "billing_cancellation", ADMIN)
    at(app, "2026-03-01T09:00:00Z")
    again = app.installs.install("acme", P, config(crm), ADMIN)
    assert again.uninstall_withdrawn == dt.date(2026, 4, 1)
    at(app, "2026-04-01T09:00:00Z")
    app.billing.run("2026-04")
    assert app.billing.preview("acme", None, "2026-04")["total"] == "24.00"  # billing goes on
    assert app.installs.get("acme", P).uninstall_effective is None
    assert app.purchases.uninstall("acme", P, ADMIN)["effective"] == "2026-07-01"  # again


def test_12_reinstalling_after_the_effective_date_is_a_new_purchase(
    app: App, crm: MemorySandbox
) -> None:
    installed_with_contract(app, crm)
    app.purchases.uninstall("acme", P, ADMIN)
    app.purchases.open_ticket("acme", P, "billing_cancellation", ADMIN)
    at(app, "2026-04-01T09:00:00Z")
    app.billing.run("2026-04")
    assert app.billing.preview("acme", None, "2026-04")["lines"] == []
    with pytest.raises(Conflict, match="already uninstalled"):
        app.purchases.uninstall("acme", P, ADMIN)
    at(app, "2026-04-16T09:00:00Z")
    app.installs.install("acme", P, config(crm), ADMIN)
    at(app, "2026-05-01T09:00:00Z")
    app.billing.run("2026-05")
    lines = app.billing.preview("acme", None, "2026-05")["lines"]
    assert [(ln["amount"], ln["start"], ln["end"]) for ln in lines] == [
        ("12.00", "2026-04-16", "2026-05-01"),  # 24.00 x 15/30, from the new purchase
        ("24.00", "2026-05-01", "2026-06-01"),
    ]
    assert app.purchases.uninstall("acme", P, ADMIN)["effective"] == "2026-07-01"


# -- 14. a marketplace install without a contract --------------------------------------------------


def test_14_an_install_without_a_contract_shows_the_summary_then_buys(
    app: App, crm: MemorySandbox
) -> None:
    app.accounts.create("acme", "US", admin=ADMIN)
    with pytest.raises(BadInput) as unnamed:
        app.installs.install("acme", P, config(crm), ADMIN)
    assert unnamed.value.remedy == "self_serve_purchase"
    shown = app.installs.install("acme", P, config(crm), ADMIN, plan="basic", users=3)
    assert shown.committed is False and shown.purchase is not None
    assert (shown.purchase["per_period"], shown.purchase["term"]) == ("36.00", "month to month")
    assert count(app, contracts) == count(app, installations) == 0  # nothing written
    with pytest.raises(NotAuthorized):
        app.installs.install("acme", P, config(crm), "intern@acme.example", plan="basic",
                             users=3, confirm=True)  # fmt: skip
    done = app.installs.install("acme", P, config(crm), ADMIN, plan="basic", users=3, confirm=True)
    assert done.committed
    made = app.contracts.get("acme", P)
    assert (made.channel, made.quantity, made.unit_price, made.plan, made.mode) == (
        "self_serve", 3, Decimal("12.00"), "basic", "auto_expand",
    )  # fmt: skip
    (row,) = [c for c in app.billing.commitments("acme") if c["action"] == "install"]
    assert (row["price_shown"], row["detail"]["users"]) == (Decimal("36.00"), 3)
    at(app, "2026-03-01T09:00:00Z")
    app.billing.run("2026-02")
    app.billing.run("2026-03")
    assert app.billing.preview("acme", None, "2026-02")["total"] == "36.00"


def test_14_the_cli_install_shows_the_summary_without_yes(
    app: App, crm: MemorySandbox, tmp_path: Path
) -> None:
    app.accounts.create("acme", "US", admin=ADMIN)
    file = tmp_path / "memory.json"
    file.write_text(json.dumps(config(crm)))

    def run(*extra: str) -> dict[str, Any]:
        ctx = Context(None, None, ADMIN, True, None)
        ctx._app = app  # the in-memory adapter is not a built-in: hand the command our App
        done = CliRunner().invoke(
            main_group.commands["install"],
            ["acme", P, "--config", str(file), "--plan", "basic", "--users", "2", *extra],
            obj=ctx,
            catch_exceptions=False,
        )
        assert done.exit_code == 0, done.output
        return json.loads(done.output)  # type: ignore[no-any-return]

    shown = run()
    assert shown["committed"] is False and shown["purchase"]["per_period"] == "24.00"
    assert count(app, contracts) == 0
    assert run("--yes")["committed"] is True
    assert count(app, contracts) == 1
