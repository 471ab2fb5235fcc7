"""The small things that mislead (issue 13, item 5) and tables cut short (item 12), each as a kind
walked across the commands: the error names what is wrong first; commands agree on whether an
installation exists; an empty value is a bad value; every choice reads any case; counts agree with
their nouns and nothing prints "None"; tables print every value whole off a terminal and wrap on
one."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console

from seatgate.core.entrypoints.cli import main_group, params, table

from .harness import ADMIN, assert_one_line_refusal, cli, dump, install_row, open_acme, run
from .test_every_command import GLOBAL_SLOTS, TEMPLATES, UNUSED, argv, make_files, walk


@pytest.fixture
def acme(tmp_path: Path) -> str:
    db = f"sqlite:///{tmp_path}/seatgate.db"
    open_acme(db)
    return db


def test_an_unknown_product_is_named_before_the_price_it_has_no_catalog_entry_for(
    acme: str,
) -> None:
    code, out, err = cli(acme, "contract", "create", "acme", "zendesk", "--seats", "2",
                         "--plan", "standard", "--frequency", "monthly",
                         "--start", "2026-01-01", "--months", "12")  # fmt: skip
    assert_one_line_refusal(code, out, err, as_json=False)
    assert "bad product 'zendesk'" in err and "None" not in err


@pytest.mark.parametrize(
    "args",
    [
        ["uninstall", "acme", "hubspot"],
        ["adapters", "enable", "acme", "hubspot"],
        ["adapters", "disable", "acme", "hubspot"],
        ["sync", "acme", "hubspot"],
    ],
    ids=lambda a: " ".join(a[:-2]),
)
def test_every_command_on_an_installation_agrees_it_does_not_exist(
    acme: str, args: list[str]
) -> None:
    code, out, err = cli(acme, "contract", "create", "acme", "hubspot", "--seats", "2",
                         "--plan", "standard", "--frequency", "monthly",
                         "--start", "2026-01-01", "--months", "12")  # fmt: skip
    assert code == 0, err
    before = dump(acme)
    code, out, err = cli(acme, *args)
    assert_one_line_refusal(code, out, err, as_json=False)
    assert "unknown hubspot installation of account 'acme'" in err
    assert dump(acme) == before
    install_row(acme, "acme", "hubspot")
    code, out, err = cli(acme, "uninstall", "acme", "hubspot")
    assert code == 0, err  # installed, it uninstalls


def empty_value_cases() -> list[tuple[str, int | str]]:
    cases: list[tuple[str, int | str]] = []
    for name, (parts, uses_db) in TEMPLATES.items():
        cases += [(name, i) for i, p in enumerate(parts) if isinstance(p, tuple)]
        cases += [
            (name, flag)
            for flag, _, needs_db in GLOBAL_SLOTS
            if (uses_db or not needs_db) and (name, flag) not in UNUSED
        ]
    return cases


@pytest.fixture(scope="module")
def acme_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    scratch = tmp_path_factory.mktemp("empty")
    make_files(scratch / "files")
    db = f"sqlite:///{scratch}/seatgate.db"
    open_acme(db)
    return db, scratch


@pytest.mark.parametrize(("name", "slot"), empty_value_cases())
def test_an_empty_value_is_a_bad_value_in_every_slot_of_every_command(
    acme_files: tuple[str, Path], name: str, slot: int | str
) -> None:
    """``--as-of ""`` once meant "now": an empty value given is refused, never taken as absent."""
    db, scratch = acme_files
    before = dump(db)
    code, out, err = run(argv(name, db, scratch, (slot, "")))
    assert_one_line_refusal(code, out, err, as_json="--json" in TEMPLATES[name][0])
    assert dump(db) == before


def test_every_choice_of_every_command_reads_any_case(acme: str) -> None:
    choices = [
        (name, param)
        for name, command in [("seatgate", main_group), *walk(main_group)]
        for param in command.params
        if isinstance(param.type, params.Choice)
    ]
    # (A region is any two letters since regions belong to the policy: `--region uk` below.)
    assert {p.name for _, p in choices} >= {"permission", "frequency", "feature"}
    for _, param in choices:
        assert isinstance(param.type, params.Choice)
        for name in param.type.choices:
            for variant in (name.upper(), name.lower(), name.title()):
                assert param.type.convert(variant, param, None) == name
    # as the issue told it: --region uk was accepted, --permission MANAGE refused
    assert cli(acme, "account", "create", "newco", "--region", "uk")[0] == 0
    code, out, err = cli(acme, "--json", "account", "grant", "acme", "eve@example.com",
                         "--permission", "MANAGE")  # fmt: skip
    assert code == 0 and json.loads(out)["permission"] == "manage", err
    code, out, err = cli(acme, "check", "acme", "salesforce", "ann@example.com", "CTI")
    assert code == 0 and out.startswith("allowed: seated"), err


def human_outputs(db: str, tmp_path: Path) -> str:
    """What people read, from commands that print counts, frequencies and policies."""
    steps = [
        (["account", "create", "solo", "--region", "US"], {0}),
        (["account", "grant", "solo", ADMIN, "--permission", "manage"], {0}),
        (["contract", "create", "solo", "salesforce", "--seats", "1", "--plan", "standard",
          "--frequency", "annual", "--start", "2025-10-01", "--months", "12"], {0}),
        (["contract", "create", "solo", "hubspot", "--seats", "1", "--plan", "standard",
          "--frequency", "semiannual", "--start", "2025-10-01", "--months", "12"], {0}),
        (["users", "add", "solo", "one@example.com"], {0}),
        (["seats", "assign", "solo", "salesforce", "one@example.com"], {0}),
        (["seats", "list", "solo"], {0}),
        (["seats", "unassign", "solo", "salesforce", "one@example.com"], {0}),
        (["seats", "grandfather", "solo", "hubspot"], {0}),
        (["seats", "buy", "solo", "salesforce", "--quantity", "1"], {0}),
        (["billing", "summary", "salesforce", "--plan", "standard", "--users", "1"], {0}),
        (["billing", "run", "--period", "2026-01"], {0}),
        (["check", "solo", "salesforce", "one@example.com", "cti"], {0, 1}),
        # Before the first revision of the timeline (reads as of then see a user known then).
        (["--as-of", "2025-07-01", "users", "add", "solo", "early@example.com"], {0}),
        (["--as-of", "2025-08-01", "check", "solo", "salesforce", "early@example.com", "cti"],
         {0, 1}),
        (["contract", "list", "solo"], {0}),
    ]  # fmt: skip
    said = []
    for args, codes in steps:
        code, out, err = cli(db, *args)
        assert code in codes, (args, out, err)
        said.append(out + err)
    return "\n".join(said)


def test_counts_agree_with_their_nouns_and_nothing_says_none(acme: str, tmp_path: Path) -> None:
    said = human_outputs(acme, tmp_path)
    assert not re.findall(r"(?<![\d.,])1 [a-z]+s\b", said), re.findall(r"\b1 [a-z]+s\b", said)
    assert "(s)" not in said
    assert "None" not in said
    assert not re.search(r"billed (annual|semiannual|quarter|month)\b", said)
    assert "billed annually" in said and "billed semiannually" in said
    assert "policy none (before the first revision)" in said  # before enablement


def test_listings_print_every_value_whole_when_not_on_a_terminal(acme: str) -> None:
    long_email = "a.very.long.integration.user.name@" + "subdomain." * 8 + "example.com"
    assert cli(acme, "users", "add", "acme", long_email)[0] == 0
    assert cli(acme, "seats", "assign", "acme", "salesforce", long_email)[0] == 0
    for args in (["seats", "list", "acme"], ["contract", "list"], ["catalog", "list"],
                 ["billing", "preview", "acme", "--period", "2026-02"], ["runs", "list", "acme"],
                 ["adapters", "list"]):  # fmt: skip
        code, out, err = cli(acme, *args)
        assert code == 0, err
        assert "…" not in out, (args, out)
    code, out, _ = cli(acme, "seats", "list", "acme")
    assert long_email in out
    code, out, _ = cli(acme, "contract", "list")
    assert "2025-10-01 → 2026-10-01" in out and "order_form" in out


def test_on_a_terminal_a_table_wraps_long_values_instead_of_cutting_them() -> None:
    grid = table("account", "email")
    value = "a.very.long.integration.user@example.com"
    grid.add_row("acme", value)
    buffer = io.StringIO()
    Console(file=buffer, force_terminal=True, width=30, color_system=None).print(grid)
    text = buffer.getvalue()
    assert "…" not in text
    assert value not in text  # it did not fit on one line: it wrapped
    cells = [line.split("│")[2].strip() for line in text.splitlines() if line.startswith("│")]
    assert "".join(cells) == value  # and every character of it is there


def test_every_table_of_the_cli_is_made_by_table() -> None:
    """The wrapping rule is decided once: no command builds a rich Table of its own."""
    import seatgate.core.entrypoints.cli as package

    for path in Path(package.__file__).parent.glob("*.py"):
        if path.name != "__init__.py":
            assert "Table(" not in path.read_text(), path
