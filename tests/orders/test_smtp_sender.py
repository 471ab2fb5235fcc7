"""SEATGATE_SMTP_URL's ``from=`` must be an address (tester report item 14): refused at startup
with one line naming it, before any command runs or writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from edges.harness import assert_one_line_refusal, run

from seatgate.core.errors import BadInput
from seatgate.core.plugins.mail import SmtpMailer, sender_of


@pytest.mark.parametrize(
    "sender", ["bad", "a@b", "<a@x.com>", "a@x.com.", "a,b@x.com", "a@@x.com", ""]
)
def test_a_bad_sender_is_refused(sender: str) -> None:
    url = f"smtp://127.0.0.1:25?from={sender}"
    if not sender:  # an empty from= is not given: the default
        assert sender_of(url) == "seatgate@localhost"
        return
    with pytest.raises(BadInput) as refused:
        SmtpMailer(url)
    assert "from=" in str(refused.value) and "name@example.com" in str(refused.value)


def test_a_good_sender_is_kept() -> None:
    assert SmtpMailer("smtp://127.0.0.1:25?from=Orders@Seatgate.example").sender == (
        "Orders@Seatgate.example"
    )
    assert SmtpMailer("smtp://127.0.0.1:25").sender == "seatgate@localhost"


def test_the_cli_refuses_to_start_with_a_bad_sender(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    code, out, err = run(
        ["--db", db, "--as-of", "2026-01-01", "account", "create", "a", "--region", "US"],
        {"SEATGATE_SMTP_URL": "smtp://127.0.0.1:25?from=bad"},
    )
    line = assert_one_line_refusal(code, out, err, as_json=False)
    assert "from=" in str(line) and "'bad'" in str(line)
    # Nothing was written: the account can be created once the URL is right.
    again = run(
        ["--db", db, "--as-of", "2026-01-01", "account", "create", "a", "--region", "US"],
        {"SEATGATE_SMTP_URL": "smtp://127.0.0.1:25?from=orders@seatgate.example"},
    )
    assert again[0] == 0, again
