"""Messages that say what is wrong (tester report item 11, its non-money part): each refusal is
one line naming the value and what is accepted — never "None", never a generic noun in place of
the argument's name, never a URL's secret part — and nothing is written."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seatgate.core.errors import BadInput

from .harness import ADMIN, assert_one_line_refusal, cli, dump, open_acme, run


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    open_acme(url)
    return url


def refused(db: str, *args: str) -> str:
    before = dump(db)
    code, out, err = cli(db, *args)
    line = str(assert_one_line_refusal(code, out, err, as_json=False))
    assert dump(db) == before
    return line


def test_install_without_a_contract_says_there_is_none_and_how_to_make_one(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUBSPOT_TEST_TOKEN", "not-a-real-token")
    config = tmp_path / "c.json"
    config.write_text('{"access_token": "${HUBSPOT_TEST_TOKEN}"}')
    line = refused(db, "install", "acme", "hubspot", "--config", str(config))
    assert "None" not in line
    assert "has no hubspot contract" in line and "create one" in line
    assert "--plan PLAN --users N" in line  # the self-serve remedy


def test_a_product_without_a_contract_is_named_with_the_products_that_have_one(db: str) -> None:
    line = refused(db, "billing", "preview", "acme", "nosuch", "--period", "2026-02")
    assert "bad product 'nosuch'" in line and "pega, salesforce" in line
    assert "of account 'acme' 'nosuch'" not in line


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("token", "revoke", "t" * 500), "bad token id"),
        (("runs", "show", "99999999999999999999999"), "bad run id"),
        (("ticket", "resolve", "acme", "salesforce", "0", "--renewal-quantity", "1"), "ticket id"),
        (("webhook", "remove", "acme", "0"), "bad "),
    ],
)
def test_a_positional_id_is_named_by_its_argument(
    db: str, args: tuple[str, ...], named: str
) -> None:
    line = refused(db, *args)
    assert named in line and "bad number" not in line and "bad text" not in line


def test_a_ticket_resolved_to_one_seat_says_seat_not_seats(db: str) -> None:
    code, out, err = cli(
        db, "--actor", ADMIN, "ticket", "resolve", "acme", "salesforce", "1",
        "--renewal-quantity", "1",
    )  # fmt: skip
    assert code == 0, err
    assert "with 1 contracted seat" in out and "seat(s)" not in out


def test_an_unsupported_database_scheme_is_named_without_the_rest_of_the_url() -> None:
    code, out, err = run(["--db", "mysql://u:secretpw@h/x", "contract", "list", "acme"])
    line = str(assert_one_line_refusal(code, out, err, as_json=False))
    assert "'mysql://'" in line and "postgresql" in line and "sqlite" in line
    assert "secretpw" not in line and "h/x" not in line


def test_account_names_are_unique_whatever_their_case(tmp_path: Path) -> None:
    """Tester report item 12: kept as spelled, refused when only the case differs."""
    db = f"sqlite:///{tmp_path / 'c.db'}"
    code, _, err = cli(db, "account", "create", "c", "--region", "US")
    assert code == 0, err
    line = refused(db, "account", "create", "C", "--region", "US")
    assert "'C'" in line and "'c'" in line and "case" in line
    code, _, err = cli(db, "account", "create", "Mixed-Case", "--region", "US")
    assert code == 0, err


def test_a_missing_value_is_said_to_be_missing_never_shown_as_none(db: str) -> None:
    """An order form's own plan without its price had said ``bad --unit-price None``."""
    line = refused(db, "contract", "create", "acme", "hubspot", "--seats", "5", "--plan",
                   "nosuch", "--frequency", "monthly", "--start", "2025-10-01", "--months", "12")  # fmt: skip
    assert line.startswith("error: missing --unit-price: expected the order form's monthly price")
    assert "None" not in line and "'nosuch'" in line


def test_every_bad_input_without_a_value_says_missing() -> None:
    """The kind: whatever the field, a value that is None is worded as missing, by the service
    and by the CLI's flag naming alike (BadInput.line)."""
    for what in ("unit price", "config page_size", "months", "--as-of"):
        exc = BadInput(what, None, "a number")
        assert str(exc) == f"missing {what}: expected a number"
        assert exc.line("--flag") == "missing --flag: expected a number"
        assert str(BadInput(what, 0, "a number")) == f"bad {what} 0: expected a number"


@pytest.mark.parametrize(
    ("start", "months", "longest"),
    [("2099-12-31", "120", "none starting 2099-12-31"), ("2099-01-01", "24", "at most 12 from"),
     ("2091-02-28", "120", "at most 106 from")],
)  # fmt: skip
def test_a_term_that_ends_after_the_last_date_is_refused_naming_the_longest_that_fits(
    db: str, start: str, months: str, longest: str
) -> None:
    """A contract whose term ran past 2099-12-31 had been taken (and seats bought on it,
    committed to for a term no invoice can reach)."""
    line = refused(db, "contract", "create", "acme", "hubspot", "--seats", "5", "--plan",
                   "standard", "--frequency", "monthly", "--start", start, "--months", months,
                   "--unit-price", "10")  # fmt: skip
    assert f"bad --months {months}: expected a term that ends by 2099-12-31" in line
    assert longest in line


@given(
    start=st.dates(min_value=dt.date(2090, 1, 1), max_value=dt.date(2099, 12, 31)),
    months=st.integers(1, 120),
)
def test_a_term_is_taken_exactly_when_its_last_day_is_a_date_seatgate_takes(
    start: dt.date, months: int
) -> None:
    from seatgate.core.domain import bounds
    from seatgate.core.domain.calendar import add_months
    from seatgate.core.services.contracts import _check_term_end

    last_day = add_months(start, months) - dt.timedelta(days=1)
    if last_day <= bounds.LATEST:
        _check_term_end(start, months)
        return
    with pytest.raises(BadInput) as raised:
        _check_term_end(start, months)
    said = str(raised.value).rsplit("at most ", 1)
    if len(said) == 2:  # the longest term it names fits, and one month more does not
        longest = int(said[1].split()[0])
        _check_term_end(start, longest)
        with pytest.raises(BadInput):
            _check_term_end(start, longest + 1)
