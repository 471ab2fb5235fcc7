"""What an admin can see without SQL (issue 12, item 10): ``users list``, ``agents list``,
``quarantine list`` and ``runs show``, each with ``--json`` and paging; a failed run's JSON
carries its error."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock
from seatgate.core.plugins import ExternalUser
from seatgate.core.testing.memory import MemorySandbox
from seatgate.core.testing.setup import account_with_contract

from .conftest import ACCOUNT
from .test_cli import invoke, run_main

P = "memory"


def doc(app: App, *args: str) -> Any:
    """The ``--json`` document of ``seatgate ARGS`` (exit 0 asserted)."""
    path = tuple(a for a in args[:2])
    done = invoke(app, path, list(args[2:]))
    assert done.exit_code == 0, done.output  # type: ignore[attr-defined]
    return json.loads(done.output)  # type: ignore[attr-defined]


def human(app: App, *args: str) -> str:
    done = invoke(app, tuple(args[:2]), list(args[2:]), as_json=False)
    assert done.exit_code == 0, done.output  # type: ignore[attr-defined]
    return str(done.output)  # type: ignore[attr-defined]


def last_run(app: App) -> int:
    return int(doc(app, "runs", "list", ACCOUNT, "--limit", "1")[0]["id"])


def walk(app: App, *args: str, name: str, limit: int) -> list[dict[str, Any]]:
    """Every item of a listing, page by page, following next_cursor."""
    items: list[dict[str, Any]] = []
    cursor: list[str] = []
    while True:
        page = doc(app, *args, "--limit", str(limit), *cursor)
        assert len(page[name]) <= limit
        items += page[name]
        if page["next_cursor"] is None:
            return items
        cursor = ["--cursor", page["next_cursor"]]


def test_users_and_agents_listed_and_paged(
    installed: Callable[..., App], crm: MemorySandbox
) -> None:
    app = installed(activated_roles=["Agent"])
    assert app.sync.sync(ACCOUNT, P).outcome == "succeeded"
    crm.store.change([3], active=False)
    assert app.sync.sync(ACCOUNT, P, full=True).outcome == "succeeded"

    users = walk(app, "users", "list", ACCOUNT, name="users", limit=7)
    emails = [u["email"] for u in users]
    assert len(emails) == 40 and emails == sorted(emails) and len(set(emails)) == 40
    inactive = doc(app, "users", "list", ACCOUNT, "--status", "inactive")["users"]
    assert [u["email"] for u in inactive] == ["user000003@example.com"]
    active = walk(app, "users", "list", ACCOUNT, "--status", "ACTIVE", name="users", limit=100)
    assert len(active) == 39 and all(u["active"] for u in active)
    seated = [u for u in users if u["seats"] == [P]]
    assert len(seated) == len([u for u in users if "Agent" in u["roles"] and u["active"]])
    assert doc(app, "users", "list", ACCOUNT, "--product", P)["users"][0]["email"] == emails[0]

    agents = walk(app, "agents", "list", ACCOUNT, P, name="agents", limit=5)
    assert agents and [a["email"] for a in agents] == sorted(a["email"] for a in agents)
    assert {"email", "name", "external_id", "active", "updated_at", "run_id"} <= set(agents[0])
    assert all(a["external_id"].startswith("mem-") for a in agents)
    table = human(app, "agents", "list", ACCOUNT, P, "--limit", "2")
    assert agents[0]["email"] in table and "more: add --cursor" in table


def test_quarantine_list_shows_what_is_quarantined_now(
    installed: Callable[..., App], crm: MemorySandbox, clock: FixedClock
) -> None:
    app = installed()
    app.sync.sync(ACCOUNT, P)
    stamp = crm.store.now
    crm.extra = [
        ExternalUser("x-1", "not-an-email", modified_at=stamp),
        ExternalUser("x-3", "USER000002@example.com", modified_at=stamp),
    ]
    first = app.sync.sync(ACCOUNT, P, full=True)
    assert first.summary.quarantined == 2
    started = clock.now()
    clock.advance(seconds=3600)
    second = app.sync.sync(ACCOUNT, P, full=True)
    assert second.summary.quarantined == 2
    second_id = last_run(app)

    listed = doc(app, "quarantine", "list", ACCOUNT, P)
    rows = {r["external_id"]: r for r in listed["quarantined"]}
    assert set(rows) == {"x-1", "x-3"}  # once each, though two runs saw them
    assert rows["x-1"]["reason"] == "bad_email" and rows["x-3"]["reason"] == "duplicate_email"
    assert rows["x-1"]["email"] == "not-an-email"
    assert rows["x-1"]["since"] == started.isoformat().replace("+00:00", "Z")
    assert rows["x-1"]["run_id"] == second_id

    # Fixed in the CRM: the next full pull no longer quarantines it, and the list says so.
    crm.extra = [ExternalUser("x-1", "not-an-email", modified_at=stamp)]
    clock.advance(seconds=3600)
    app.sync.sync(ACCOUNT, P, full=True)
    now = doc(app, "quarantine", "list", ACCOUNT, P)["quarantined"]
    assert [r["external_id"] for r in now] == ["x-1"]
    assert len(walk(app, "quarantine", "list", ACCOUNT, P, name="quarantined", limit=1)) == 1
    assert "bad_email" in human(app, "quarantine", "list", ACCOUNT, P)


def test_runs_show_counts_and_a_failed_runs_error(
    installed: Callable[..., App], crm: MemorySandbox
) -> None:
    app = installed()
    assert app.sync.sync(ACCOUNT, P).outcome == "succeeded"
    ok = last_run(app)
    shown = doc(app, "runs", "show", str(ok))
    assert shown["outcome"] == "succeeded" and shown["pulled"] == 40
    assert shown["account"] == ACCOUNT and shown["product"] == P and "error" not in shown
    for key in ("requests", "retries", "seconds", "started_at", "created", "quarantined"):
        assert key in shown
    assert doc(app, "runs", "show", str(ok), "--account", ACCOUNT)["id"] == ok

    crm.inject("quota")  # the daily quota is spent: the run fails
    failed = app.sync.sync(ACCOUNT, P)
    assert failed.outcome == "failed"
    bad = doc(app, "runs", "show", str(last_run(app)))
    assert bad["outcome"] == "failed"
    assert bad["error"]["code"] and bad["error"]["message"] == failed.summary.message
    assert "failed" in human(app, "runs", "show", str(last_run(app)))


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (("runs", "show", "999999"), "999999"),
        (("runs", "show", "0"), "0"),
        (("runs", "show", "1", "--account", "nobody"), "nobody"),
        (("users", "list", ACCOUNT, "--status", "gone"), "gone"),
        (("users", "list", ACCOUNT, "--limit", "0"), "0"),
        (("users", "list", ACCOUNT, "--cursor", "not-a-cursor"), "not-a-cursor"),
        # JSON "\ud800" (a lone surrogate) and a 23-digit integer: well formed, but no database
        # takes them.
        (("users", "list", ACCOUNT, "--cursor", "Ilx1ZDgwMCI"), "Ilx1ZDgwMCI"),
        (
            (
                "quarantine",
                "list",
                ACCOUNT,
                "salesforce",
                "--cursor",
                "OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk",
            ),
            "OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk",
        ),
        (("users", "list", ACCOUNT, "--product", "nosuch"), "nosuch"),
        (("agents", "list", ACCOUNT, "nosuch"), "nosuch"),
        (("quarantine", "list", "nobody", "salesforce"), "nobody"),
    ],
)
def test_bad_listing_input_is_one_line_naming_the_value(
    sqlite_url: str, args: tuple[str, ...], names: str, capsys: pytest.CaptureFixture[str]
) -> None:
    app = App(sqlite_url)
    account_with_contract(app, ACCOUNT, "salesforce", admin="admin@acme.example")
    app.db.dispose()
    code, out, err = run_main(["--db", sqlite_url, *args], capsys)
    assert code in (1, 2) and not out
    assert names in err and "Traceback" not in err and err.count("\n") == 1, err
    code, out, _ = run_main(["--db", sqlite_url, "--json", *args], capsys)
    assert code in (1, 2) and json.loads(out)["error"]["message"]
