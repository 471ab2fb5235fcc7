"""Running the CLI in process and reading the whole database: what "one line, exit 2, nothing
written" is checked against in the edge tests (issue 13)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import uuid
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

from seatgate.core.entrypoints.cli import main

ADMIN = "admin@example.com"
TRANSITION = "2026-02-01T12:00:00Z"  # US: enabled 2025-10-25, restrictions from 2026-03-16
SEATGATE_VARS = (
    "SEATGATE_DATABASE_URL",
    "SEATGATE_NOW",
    "SEATGATE_ACTOR",
    "SEATGATE_POLICY",
    "SEATGATE_JSON",
    "SEATGATE_BUSY_TIMEOUT",
    "SEATGATE_DEBUG",
    "SEATGATE_SECRET_KEY",
    "SEATGATE_SMTP_URL",
    "SEATGATE_CONSOLE_URL",
)
# The server secret every run has (install links and webhooks need one; issue 18).
EDGE_SECRET = "edges-server-secret-0123456789-abcdefghijklmn"


@contextlib.contextmanager
def clean_environment() -> Iterator[None]:
    saved = {k: os.environ.pop(k) for k in SEATGATE_VARS if k in os.environ}
    try:
        yield
    finally:
        for k in SEATGATE_VARS:
            os.environ.pop(k, None)
        os.environ.update(saved)


def run(args: Sequence[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """``seatgate ARGS`` in process, through the console script's entry point, with no
    SEATGATE_* variable but those of ``env``."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with clean_environment(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        os.environ.update({"SEATGATE_SECRET_KEY": EDGE_SECRET, **(env or {})})
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def cli(db: str, *args: str, as_of: str = TRANSITION) -> tuple[int, str, str]:
    return run(["--db", db, "--as-of", as_of, "--actor", ADMIN, *args])


def ok(db: str, *args: str) -> Any:
    code, out, err = cli(db, "--json", *args)
    assert code == 0, out + err
    return json.loads(out)


def open_acme(db: str) -> None:
    """acme (US): the admin holds Manage; 2 salesforce seats; ann (seated), bob and cat; a
    renewal_adjustment ticket (1); a pega order form with the partner's case_insights add-on;
    webhook endpoint 1."""
    ok(db, "account", "create", "acme", "--region", "US")
    ok(db, "account", "grant", "acme", ADMIN, "--permission", "manage")
    ok(db, "contract", "create", "acme", "salesforce", "--seats", "2", "--plan", "standard",
       "--frequency", "monthly", "--start", "2025-10-01", "--months", "12", "--unit-price", "30")  # fmt: skip
    ok(db, "users", "add", "acme", "ann@example.com", "bob@example.com", "cat@example.com")
    ok(db, "seats", "assign", "acme", "salesforce", "ann@example.com")
    install_row(db, "acme", "salesforce")
    ok(db, "ticket", "open", "acme", "salesforce", "--kind", "renewal_adjustment")  # ticket 1
    # Issue 18: a pega order form to send an install link for, the partner's add-on on it, and a
    # webhook endpoint (1) no later event here reaches.
    ok(db, "contract", "create", "acme", "pega", "--seats", "2", "--plan", "standard",
       "--frequency", "monthly", "--start", "2025-10-01", "--months", "12", "--unit-price", "20")  # fmt: skip
    ok(db, "addon", "activate", "acme", "pega", "case_insights", "--partner", "caseworks")
    ok(db, "webhook", "add", "acme", "https://hooks.example.com/seatgate", "--events",
       "app.uninstalled")  # fmt: skip


def install_row(db: str, account: str, product: str) -> None:
    """The installation row `install` leaves (without calling a CRM)."""
    from seatgate.core.bootstrap import App
    from seatgate.core.clock import FixedClock, parse_instant
    from seatgate.core.testing.setup import installed_without_a_crm

    app = App(db, clock=FixedClock(parse_instant(TRANSITION)))
    try:
        installed_without_a_crm(app, account, product, ADMIN)
    finally:
        app.close()


def dump(db: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order: the database as a whole."""
    engine = sa.create_engine(db)
    try:
        with engine.connect() as conn:
            out = {}
            for name in sorted(sa.inspect(conn).get_table_names()):
                rows = conn.execute(sa.text(f'SELECT * FROM "{name}"')).all()
                out[name] = sorted((tuple(r) for r in rows), key=repr)
            return out
    finally:
        engine.dispose()


def assert_one_line_refusal(
    code: int, out: str, err: str, as_json: bool, expected_code: int = 2
) -> dict[str, Any] | str:
    """Exit ``expected_code``; one line on stderr (or one JSON document on stdout, stderr
    empty); no traceback. Returns the error (its JSON document, or the line)."""
    assert "Traceback" not in out + err, out + err
    assert code == expected_code, (code, out, err)
    if as_json:
        assert err == "", err
        document = json.loads(out)
        message = document["error"]["message"]
        assert "\n" not in message and message, document
        return dict(document)
    assert out == "", out
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


@contextlib.contextmanager
def postgres_schema(base: str) -> Iterator[str]:
    """A URL whose search_path is a new, empty schema (dropped afterwards)."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
