"""The CLI of issue 18: each command one service call, its output for people and for --json,
refusals as one line with the remedy, secrets shown once."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from edges.harness import ADMIN, cli, open_acme, run

from seatgate.core.domain.webhooks import EVENT_NAMES

TRANSITION = "2026-02-01T12:00:00Z"


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/seatgate.db"
    open_acme(url)
    return url


def config(tmp_path: Path) -> str:
    path = tmp_path / "pega.json"
    path.write_text(json.dumps({"instance": "https://x.example", "password": "${SN_PW}"}))
    return str(path)


def test_install_link_create_prints_the_mail_without_smtp_and_list_never_shows_the_token(
    db: str, tmp_path: Path
) -> None:
    code, out, err = cli(db, "install-link", "create", "acme", "pega", "--email", "IT@x.io")
    assert code == 0, err
    token = re.search(r"/install/(sgl_\S+)", out)
    assert token is not None and "To: it@x.io" in out and "not mailed" in out
    assert "works once until 2026-02-15 12:00 UTC" in out
    code, out, _ = cli(db, "--json", "install-link", "list", "acme")
    [link] = json.loads(out)["links"]
    assert code == 0 and link["state"] == "active" and token[1] not in out
    code, out, _ = cli(db, "install-link", "revoke", "acme", link["id"])
    assert code == 0 and "revoked" in out
    code, out, err = cli(db, "install-link", "redeem", token[1], "--config", config(tmp_path))
    assert code == 2 and "was revoked on 2026-02-01" in err and "install-link create" in err


def test_a_link_for_an_installed_product_and_a_tampered_token_are_one_line_each(
    db: str, tmp_path: Path
) -> None:
    code, _, err = cli(db, "install-link", "create", "acme", "salesforce", "--email", "it@x.io")
    assert code == 2 and err.count("\n") == 1 and "installed on 'acme' already" in err
    code, _, err = cli(db, "install-link", "redeem", "sgl_" + "0" * 32 + "." + "A" * 43,
                       "--config", config(tmp_path))  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and "altered" in err


def test_an_admin_activating_an_add_on_is_told_the_partner_does_it(db: str) -> None:
    code, _, err = cli(db, "addon", "activate", "acme", "salesforce", "analytics")
    assert code == 2 and err.count("\n") == 1
    assert "not selectable by an account's admins" in err
    assert "--partner cloudlane" in err  # the remedy names the product's partner
    code, _, err = cli(db, "addon", "activate", "acme", "salesforce", "analytics",
                       "--partner", "nowbridge")  # fmt: skip
    assert code == 2 and "does not publish salesforce" in err
    code, out, err = cli(db, "addon", "activate", "acme", "salesforce", "analytics",
                         "--partner", "cloudlane", "--unit-price", "120")  # fmt: skip
    assert code == 0, err
    assert "per account at 120.00 USD/month; 120.00 USD per billing period" in out
    code, out, _ = cli(db, "--json", "addon", "list", "acme")
    assert {a["addon"] for a in json.loads(out)["addons"]} == {"analytics", "case_insights"}
    code, out, _ = cli(db, "addon", "deactivate", "acme", "pega", "case_insights",
                       "--partner", "caseworks")  # fmt: skip
    assert code == 0 and "ends on 2026-10-01" in out  # the end of the term in force


def test_webhook_add_shows_the_secret_once_and_deliver_runs_once(db: str) -> None:
    code, out, err = cli(db, "webhook", "add", "acme", "https://hooks.example.com/a",
                         "--events", "seat.assigned", "--events", "invoice.issued")  # fmt: skip
    assert code == 0, err
    secret = re.search(r"whsec_\S+", out)
    assert secret is not None
    code, out, _ = cli(db, "--json", "webhook", "list", "acme")
    assert code == 0 and secret[0] not in out
    assert [e["events"] for e in json.loads(out)["endpoints"]][-1] == [
        "seat.assigned", "invoice.issued",
    ]  # fmt: skip
    code, out, _ = cli(db, "webhook", "deliver", "acme")
    assert code == 0 and "0 attempts" in out
    code, _, err = cli(db, "webhook", "add", "acme", "https://h.example.com", "--events", "x")
    assert code == 2 and "bad --events 'x'" in err and EVENT_NAMES[0] in err
    code, out, _ = cli(db, "webhook", "disable", "acme", "1")
    assert code == 0 and "disabled" in out
    code, _, err = run(["--db", db, "--as-of", TRANSITION, "--actor", "bob@example.com",
                        "webhook", "remove", "acme", "1"])  # fmt: skip
    assert code == 2 and "does not hold the manage permission" in err
    assert ADMIN  # the harness's admin holds manage; bob holds nothing


def test_one_delivery_is_shown_with_its_attempts_for_people(db: str) -> None:
    # A receiver that refuses connections (port 9, discard: nothing listens there in tests).
    code, _, err = cli(db, "webhook", "add", "acme", "http://127.0.0.1:9/hooks",
                       "--events", "seat.assigned")  # fmt: skip
    assert code == 0, err
    code, _, err = cli(db, "seats", "assign", "acme", "salesforce", "bob@example.com")
    assert code == 0, err
    code, out, _ = cli(db, "webhook", "deliver", "acme")
    assert code == 0 and "1 to retry" in out
    code, out, _ = cli(db, "--json", "webhook", "deliveries", "acme", "--status", "pending")
    [pending] = json.loads(out)["deliveries"]
    code, out, err = cli(db, "webhook", "deliveries", "acme", "--delivery", str(pending["id"]))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"delivery {pending['id']}: seat.assigned (event id ")
    assert lines[1] == "status pending after 1 attempt"
    assert lines[2].startswith("next attempt 2026-02-01 12:0")
    assert "Connection refused" in out and "{'" not in out  # a table, not a Python dict


def test_an_endpoint_of_every_event_is_listed_as_such(db: str) -> None:
    code, out, err = cli(db, "webhook", "add", "acme", "https://hooks.example.com/all",
                         "--events", "*")  # fmt: skip
    assert code == 0 and "(* (every event))" in out, err
    code, out, _ = cli(db, "webhook", "list", "acme")
    assert code == 0 and "* (every event)" in out and "invoice.issued" not in out
    code, out, _ = cli(db, "--json", "webhook", "list", "acme")
    assert json.loads(out)["endpoints"][-1]["events"] == list(EVENT_NAMES)  # scripts: the names
