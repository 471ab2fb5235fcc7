"""Messages that say what is wrong (tester report item 11, its non-money part): each refusal is
one line naming the value and what is accepted — never "None", never a generic noun in place of
the argument's name, never a URL's secret part — and nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest

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
