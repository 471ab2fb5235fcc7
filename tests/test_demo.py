"""The demo (`seatgate --json demo`, what `make demo` runs): all seven products installed and
synced against their sandboxes, the rules at work, one JSON document, no sandbox left behind."""

from __future__ import annotations

import json
import threading

from click.testing import CliRunner

from seatgate.core.domain.vocabulary import PRODUCTS
from seatgate.core.entrypoints.cli import main_group


def test_the_demo_syncs_the_seven_products_and_shows_the_rules() -> None:
    threads_before = threading.active_count()
    result = CliRunner().invoke(main_group, ["--json", "demo"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert set(document["connectors"]) == set(PRODUCTS)
    for product, counts in document["connectors"].items():
        assert counts["pulled"] == 200, product
        assert counts["requests"] >= 1, product
    assert document["connectors"]["servicenow"]["seated"] == 60  # auto install, up to capacity
    answers = {step["says"].split(":")[0]: step for step in document["steps"]}
    refused = next(s for s in document["steps"] if "in_overage" in s["says"])
    assert refused["exit_code"] == 1
    assert refused["answer"]["refused"] == [
        {"email": "user000201@example.com", "reason": "in_overage"}
    ]
    grace = next(s for s in document["steps"] if "(grace)" in s["says"])
    assert grace["answer"]["reason"] == "grace" and grace["answer"]["phase"] == "transition"
    denied = next(s for s in document["steps"] if "denied the CTI" in s["says"])
    assert denied["answer"]["allowed"] is False and denied["answer"]["phase"] == "restricted"
    bill = document["steps"][-1]["answer"]
    assert any(line["kind"] == "overage" for line in bill["lines"])
    assert answers  # every step is recorded with its command
    assert threading.active_count() <= threads_before  # every sandbox stopped
