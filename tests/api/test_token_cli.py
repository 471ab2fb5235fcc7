"""``seatgate token create|list|revoke`` and ``seatgate serve --help``: the token is printed
once, lists never show it, bad input is one line and exit 2 with nothing written."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

from seatgate.core.entrypoints.cli import main
from seatgate.core.storage.db import Database
from seatgate.core.storage.tables import api_tokens, audit_log


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def test_create_list_revoke(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    db = ["--db", sqlite_url, "--as-of", "2026-03-20T12:00:00Z"]
    assert run(capsys, *db, "account", "create", "acme", "--region", "US")[0] == 0
    code, out, _ = run(
        capsys, *db, "--actor", "ops@acme.example", "--json", "token", "create", "acme",
        "--role", "admin", "--actor", "Admin@Acme.Example",
    )  # fmt: skip
    assert code == 0
    made = json.loads(out)
    assert made["token"].startswith("sgt_") and made["role"] == "admin"
    assert made["actor"] == "admin@acme.example" and made["created_by"] == "ops@acme.example"
    code, out, _ = run(capsys, *db, "token", "create", "acme", "--role", "check")
    assert code == 0 and "shown this once" in out
    human_secret = next(line for line in out.splitlines() if line.startswith("sgt_"))
    code, out, _ = run(capsys, *db, "--json", "token", "list", "acme")
    listed: list[dict[str, Any]] = json.loads(out)["tokens"]
    assert sorted(t["role"] for t in listed) == ["admin", "check"]
    assert made["token"] not in out and human_secret not in out and "digest" not in out
    code, out, _ = run(capsys, *db, "--json", "token", "revoke", made["id"])
    assert code == 0 and json.loads(out)["changed"] is True and json.loads(out)["revoked_at"]
    code, out, _ = run(capsys, *db, "--json", "token", "revoke", made["id"])
    assert json.loads(out)["changed"] is False
    database = Database(sqlite_url)
    with database.engine.connect() as conn:
        actions = conn.execute(sa.select(audit_log.c.action).order_by(audit_log.c.id)).scalars()
        assert [a for a in actions if a.startswith("token.")] == [
            "token.create", "token.create", "token.revoke", "token.revoke",
        ]  # fmt: skip
    database.dispose()


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["token", "create", "acme", "--role", "root"], "role"),
        (["token", "create", "nosuch", "--role", "check"], "account"),
        (["token", "create", "acme", "--role", "admin", "--actor", "not-an-email"], "actor"),
        (["token", "revoke", "tok_000000000000"], "token"),
        # Partner tokens name a partner the catalog lists, and only they name one.
        (["token", "create", "acme", "--role", "partner"], "partner"),
        (["token", "create", "acme", "--role", "partner", "--partner", "nobody"], "partner"),
        (["token", "create", "acme", "--role", "admin", "--partner", "cloudlane"], "partner"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    sqlite_url: str, capsys: pytest.CaptureFixture[str], args: list[str], field: str
) -> None:
    db = ["--db", sqlite_url]
    run(capsys, *db, "account", "create", "acme", "--region", "US")
    code, out, err = run(capsys, *db, *args)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    code, out, _ = run(capsys, *db, "--json", *args)
    assert json.loads(out)["error"]["field"] in (field, f"--{field}")
    database = Database(sqlite_url)
    with database.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(api_tokens)).scalar() == 0
    database.dispose()


def test_serve_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "serve", "--help")
    assert code == 0 and "--workers" in out and "--freshness" in out
    assert "--webhook-interval" in out


def test_a_partner_token_names_its_partner(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--db", sqlite_url, "--as-of", "2026-03-20T12:00:00Z"]
    run(capsys, *db, "account", "create", "acme", "--region", "US")
    code, out, err = run(
        capsys, *db, "token", "create", "acme", "--role", "partner", "--partner", "CaseWorks",
        "--actor", "ops@caseworks.example",
    )  # fmt: skip
    assert code == 0, err
    assert "(partner for acme, actor ops@caseworks.example, partner caseworks)" in out
    code, out, _ = run(capsys, *db, "--json", "token", "list", "acme")
    [listed] = json.loads(out)["tokens"]
    assert (listed["role"], listed["partner"]) == ("partner", "caseworks")
    code, out, err = run(
        capsys, *db, "token", "create", "acme", "--role", "partner", "--partner", "nobody"
    )
    assert code == 2 and "caseworks" in err and "cloudlane" in err  # what is accepted
