"""The billing commands as a script sees them: JSON shapes, and bad input as one line, exit 2,
nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from seatgate.core.entrypoints.cli import main as cli_main

ADMIN = "admin@acme.example"


class Cli:
    def __init__(self, db: str) -> None:
        self.db = db

    def __call__(self, *args: str, as_of: str = "2026-01-01T09:00:00Z") -> tuple[int, str, str]:
        runner = CliRunner()
        argv = ["--db", self.db, "--as-of", as_of, "--actor", ADMIN, *args]
        result = runner.invoke(_entry, argv, catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    def json(self, *args: str, as_of: str = "2026-01-01T09:00:00Z") -> dict[str, object]:
        code, out, err = self("--json", *args, as_of=as_of)
        assert code == 0, (out, err)
        return json.loads(out)  # type: ignore[no-any-return]

    def rows(self) -> int:
        """Rows in every table but the audit log: "nothing written"."""
        engine = sa.create_engine(self.db)
        try:
            with engine.connect() as conn:
                names = sa.inspect(conn).get_table_names()
                return sum(
                    conn.execute(sa.text(f'SELECT count(*) FROM "{n}"')).scalar_one()
                    for n in names
                    if n not in ("audit_log", "alembic_version")
                )
        finally:
            engine.dispose()


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("argv", nargs=-1, type=click.UNPROCESSED)
def _entry(argv: tuple[str, ...]) -> None:
    """``seatgate`` itself (its error handling included), under CliRunner."""
    cli_main(list(argv))


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    c = Cli(f"sqlite:///{tmp_path}/cli.db")
    for args in (
        ("account", "create", "acme", "--region", "US"),
        ("account", "grant", "acme", ADMIN, "--permission", "manage"),
        ("contract", "create", "acme", "salesforce", "--seats", "3", "--plan", "standard",
         "--frequency", "monthly", "--start", "2026-01-01", "--months", "12"),
    ):  # fmt: skip
        code, out, err = c(*args)
        assert code == 0, (out, err)
    return c


def test_preview_json_shape(cli: Cli) -> None:
    data = cli.json("billing", "preview", "acme", "salesforce", "--period", "2026-01")
    assert (data["account"], data["period"], data["currency"], data["total"]) == (
        "acme",
        "2026-01",
        "USD",
        "75.00",
    )
    assert data["lines"] == [
        {
            "product": "salesforce",
            "kind": "base",
            "description": "standard plan, 3 seats contracted at 25.00 USD/month each",
            "quantity": 3,
            "unit_price": "25.00",
            "amount": "75.00",
            "start": "2026-01-01",
            "end": "2026-02-01",
        }
    ]


def test_run_then_invoices(cli: Cli) -> None:
    assert cli.json("billing", "run", "--period", "2026-01")["count"] == 1
    assert cli.json("billing", "run", "--period", "2026-01")["count"] == 0
    listed = cli.json("billing", "invoices", "acme")["invoices"]
    assert [(i["period"], i["total"]) for i in listed] == [("2026-01", "75.00")]  # type: ignore[index]


def test_summary_is_marked_indicative(cli: Cli) -> None:
    data = cli.json("billing", "summary", "salesforce", "--plan", "premium", "--users", "3",
                    "--frequency", "annual")  # fmt: skip
    assert (data["per_period"], data["indicative"]) == ("1440.00", True)


def test_catalog_list_shows_add_ons_as_partner_only(cli: Cli) -> None:
    plans = cli.json("catalog", "list", "salesforce")["plans"]
    assert {(p["plan"], p["type"]) for p in plans} == {  # type: ignore[index]
        ("standard", "base"),
        ("premium", "base"),
        ("analytics", "add-on"),
    }


def test_seats_buy_summary_then_commit(cli: Cli) -> None:
    quote = cli.json("seats", "buy", "acme", "salesforce", "--quantity", "2")
    assert quote["committed"] is False
    done = cli.json("seats", "buy", "acme", "salesforce", "--quantity", "2", "--yes")
    assert done["committed"] is True and done["quantity_after"] == 5
    code, out, _ = cli("seats", "buy", "acme", "salesforce", "--quantity", "2", "--yes",
                       "--idempotency-key", str(done["idempotency_key"]))  # fmt: skip
    assert code == 0 and "a retry" in out


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("plan", "change", "acme", "salesforce", "--plan", "gold"), "bad salesforce plan 'gold'"),
        (("plan", "change", "acme", "salesforce", "--plan", "analytics"), "only the partner"),
        (("billing", "preview", "acme", "--period", "2026-13"), "bad --period '2026-13'"),
        (("billing", "run", "--period", "May"), "bad --period 'May'"),
        (("ticket", "open", "acme", "hubspot", "--kind", "renewal_adjustment"), "'hubspot'"),
        (("ticket", "open", "acme", "salesforce", "--kind", "refund"), "bad --kind 'refund'"),
        (("ticket", "open", "acme", "salesforce", "--kind", "billing_cancellation"), "uninstall"),
        (("seats", "buy", "acme", "salesforce", "--quantity", "-2", "--yes"), "renewal_adjustment"),
        (("seats", "buy", "acme", "salesforce", "--quantity", "0"), "bad --quantity 0"),
        (("billing", "summary", "salesforce", "--plan", "premium", "--users", "0"), "--users"),
        # Issue 11 item 6: an order form may carry a plan of its own; the marketplace may not.
        (("contract", "create", "acme", "hubspot", "--seats", "1", "--plan", "gold",
          "--frequency", "monthly", "--start", "2026-01-01", "--months", "12", "--unit-price", "9",
          "--channel", "marketplace"),
         "Technical and Product Support > AppConnect > App Install/Uninstall"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    cli: Cli, args: tuple[str, ...], says: str
) -> None:
    before = cli.rows()
    code, _, err = cli(*args)
    assert code == 2
    assert err.count("\n") == 1 and says in err, err
    assert cli.rows() == before
