"""Files a user hands the CLI (issue 13, item 4): UTF-8 with or without a byte-order mark, any
other encoding one clear line; comments and blank lines skipped however they are indented —
for --from-file of both seats commands, and for config files."""

from __future__ import annotations

import codecs
import json
import re
from pathlib import Path

import pytest

from seatgate.core.entrypoints.cli.files import load_config_file, read_lines
from seatgate.core.errors import BadInput

from .harness import assert_one_line_refusal, cli, dump, open_acme

LISTING = "# the sales team\n\n   # (indented comment)\n\t# tabbed\n  bob@example.com  \r\ncat@example.com\n"


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda s: s.encode("utf-8"), id="utf-8"),
        pytest.param(lambda s: codecs.BOM_UTF8 + s.encode("utf-8"), id="utf-8 with BOM"),
    ],
)
def test_utf8_with_or_without_bom_and_indented_comments(tmp_path: Path, encode: object) -> None:
    path = tmp_path / "seats.txt"
    path.write_bytes(encode(LISTING))  # type: ignore[operator]
    assert read_lines(path, "--from-file") == ["bob@example.com", "cat@example.com"]


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (codecs.BOM_UTF16_LE + "bob@example.com\n".encode("utf-16-le"), "this one is UTF-16"),
        (codecs.BOM_UTF16_BE + "bob@example.com\n".encode("utf-16-be"), "this one is UTF-16"),
        (codecs.BOM_UTF32_LE + "bob@example.com\n".encode("utf-32-le"), "this one is UTF-32"),
        ("bob@example.com\n".encode("utf-16-le"), "NUL bytes: UTF-16?"),  # no BOM
        ("andré@example.com\n".encode("latin-1"), "byte 5 is not UTF-8"),
    ],
    ids=["utf-16-le", "utf-16-be", "utf-32", "utf-16 without BOM", "latin-1"],
)
def test_other_encodings_are_one_clear_line(tmp_path: Path, data: bytes, says: str) -> None:
    path = tmp_path / "seats.txt"
    path.write_bytes(data)
    with pytest.raises(BadInput, match=re.escape(says)) as caught:
        read_lines(path, "--from-file")
    assert "save it as UTF-8" in str(caught.value) or "UTF-16?" in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("command", ["assign", "unassign"])
@pytest.mark.parametrize("bom", [b"", codecs.BOM_UTF8], ids=["utf-8", "bom"])
def test_both_seats_commands_read_the_file_the_same_way(
    tmp_path: Path, command: str, bom: bytes
) -> None:
    db = f"sqlite:///{tmp_path}/seatgate.db"
    open_acme(db)
    path = tmp_path / "seats.txt"
    path.write_bytes(bom + b"  # ann first\nANN@example.com\n\n   # then bob\n")
    if command == "unassign":
        code, out, err = cli(db, "--json", "seats", "unassign", "acme", "salesforce",
                             "--from-file", str(path))  # fmt: skip
        assert code == 0 and json.loads(out)["unassigned"] == ["ann@example.com"], out + err
    else:
        code, out, err = cli(db, "--json", "seats", "assign", "acme", "salesforce",
                             "bob@example.com", "--from-file", str(path))  # fmt: skip
        assert code == 0, out + err
        data = json.loads(out)
        assert sorted(data["assigned"]) == ["ann@example.com", "bob@example.com"]
        assert data["refused"] == []


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_a_utf16_listing_is_refused_at_the_edge_nothing_written(
    tmp_path: Path, as_json: bool
) -> None:
    db = f"sqlite:///{tmp_path}/seatgate.db"
    open_acme(db)
    path = tmp_path / "seats.txt"
    path.write_bytes(codecs.BOM_UTF16_LE + "bob@example.com\n".encode("utf-16-le"))
    before = dump(db)
    args = ["seats", "assign", "acme", "salesforce", "--from-file", str(path)]
    code, out, err = cli(db, *(["--json"] if as_json else []), *args)
    error = assert_one_line_refusal(code, out, err, as_json)
    assert "UTF-16" in str(error) and str(path) in str(error)
    assert dump(db) == before


def test_a_config_file_is_read_the_same_way(tmp_path: Path) -> None:
    path = tmp_path / "crm.json"
    path.write_bytes(codecs.BOM_UTF8 + b'{"instance": "x"}')
    assert load_config_file(path) == {"instance": "x"}
    path.write_bytes(codecs.BOM_UTF16_LE + '{"instance": "x"}'.encode("utf-16-le"))
    with pytest.raises(BadInput, match=r"config file .*this one is UTF-16"):
        load_config_file(path)
