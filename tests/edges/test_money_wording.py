"""How money reads on the command line (tester report items 3, 9, 10 and 11's money wording):
per-account plans per month, prices with their currency's minor unit, totals per currency, and
refusals as one line that change nothing."""

from __future__ import annotations

from pathlib import Path

from .harness import ADMIN, cli, ok


def db_with_account(tmp_path: Path) -> str:
    db = f"sqlite:///{tmp_path}/seatgate.db"
    ok(db, "account", "create", "b", "--region", "US")
    ok(db, "account", "grant", "b", ADMIN, "--permission", "manage")
    return db


TERMS = ("--frequency", "monthly", "--start", "2026-01-01", "--months", "12")


def test_per_account_plans_read_per_month_and_prices_show_the_minor_unit(tmp_path: Path) -> None:
    db = db_with_account(tmp_path)
    code, out, err = cli(db, "contract", "create", "b", "hubspot", "--seats", "3", "--plan",
                         "starter", *TERMS)  # fmt: skip
    assert code == 0 and "99.00 USD/month billed monthly" in out and "/seat/" not in out, out
    code, out, err = cli(db, "contract", "create", "b", "servicenow", "--seats", "3", "--plan",
                         "enterprise", *TERMS)  # fmt: skip
    assert code == 0, out + err
    code, out, err = cli(db, "seats", "buy", "b", "servicenow", "--quantity", "2")
    assert code == 0 and "at 900.00 USD/month;" in out, out + err
    code, out, err = cli(db, "contract", "create", "b", "salesforce", "--seats", "3", "--plan",
                         "standard", "--unit-price", "5", *TERMS)  # fmt: skip
    assert code == 0 and "5.00 USD/seat/month" in out, out + err


def test_bad_money_is_one_line_and_changes_nothing(tmp_path: Path) -> None:
    db = db_with_account(tmp_path)
    before = ok(db, "contract", "list", "b")
    for extra, said in (
        (("--currency", "XYZ"), "bad --currency 'XYZ': expected an ISO 4217 currency code"),
        (("--currency", "EUR"), "bad --currency 'EUR': expected USD"),
        (("--unit-price", "٣"), "bad --unit-price '٣'"),
        (("--unit-price", "1E+1"), "bad --unit-price '1E+1'"),
        (("--currency", "JPY", "--unit-price", "100.50"), "a whole amount of JPY"),
    ):
        code, _, err = cli(db, "contract", "create", "b", "salesforce", "--seats", "3",
                           "--plan", "standard", *TERMS, *extra)  # fmt: skip
        assert code == 2 and said in err and len(err.strip().splitlines()) == 1, (extra, err)
    assert ok(db, "contract", "list", "b") == before


def test_seat_totals_and_renewal_quantities_are_bounded(tmp_path: Path) -> None:
    db = db_with_account(tmp_path)
    ok(db, "contract", "create", "b", "salesforce", "--seats", "3", "--plan", "standard", *TERMS)
    code, out, err = cli(db, "seats", "buy", "b", "salesforce", "--quantity", "1000000")
    assert code == 2 and "expected 1 to 999,997 more seats" in err, out + err
    ok(db, "ticket", "open", "b", "salesforce", "--kind", "renewal_adjustment")
    code, out, err = cli(db, "ticket", "resolve", "b", "salesforce", "1",
                         "--renewal-quantity", "0")  # fmt: skip
    assert code == 2 and "bad --renewal-quantity 0" in err, out + err


def test_a_run_over_currencies_totals_each_apart(tmp_path: Path) -> None:
    db = db_with_account(tmp_path)
    ok(db, "contract", "create", "b", "hubspot", "--seats", "2", "--plan", "standard", *TERMS)
    ok(db, "contract", "create", "b", "pega", "--seats", "3", "--plan", "standard", *TERMS,
       "--currency", "JPY", "--unit-price", "33")  # fmt: skip
    code, out, err = cli(db, "billing", "preview", "b", "--period", "2026-02")
    assert code == 0 and "total: 99 JPY" in out and "total: 30.00 USD" in out, out + err
    code, out, err = cli(db, "billing", "run", "--period", "2026-02")
    assert code == 0 and "2 invoices issued, total 99 JPY, 30.00 USD" in out, out + err
