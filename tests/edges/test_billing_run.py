"""One bad contract never stops another account's invoice (issue 13, item 2): the billing run
drafts each account on its own, skips the one it cannot bill and names it (exit 1)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock, parse_instant
from seatgate.core.storage.tables import contracts

from .harness import cli


def test_a_contract_no_edge_should_have_let_in_is_skipped_and_named(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/seatgate.db"
    # Written past the edge (as an older seatgate let it in): a price of 10^400 a seat.
    app = App(db, clock=FixedClock(parse_instant("2026-02-01")))
    try:
        for account, price in (("acme", "30"), ("broken", "1"), ("zeta", "10")):
            app.accounts.create(account, "US")
            app.contracts.create(account, "salesforce", seats=2, plan="standard",
                                 frequency="monthly", start=dt.date(2026, 1, 1), months=12,
                                 unit_price=Decimal(price))  # fmt: skip
        # The service now refuses 1e400 (written with the currency's minor unit, tester report
        # item 10), so the row is written behind its back, as an older seatgate let it in.
        with app.db.write() as conn:
            conn.execute(
                sa.update(contracts)
                .where(contracts.c.product == "salesforce", contracts.c.unit_price == "1.00")
                .values(unit_price=Decimal("1e400"))
            )
    finally:
        app.close()

    code, out, err = cli(db, "--json", "billing", "run", "--period", "2026-03", as_of="2026-03-01")
    assert code == 1, out + err
    data = json.loads(out)
    assert sorted(i["account"] for i in data["issued"]) == ["acme", "zeta"]
    assert [s["account"] for s in data["skipped"]] == ["broken"]
    assert data["total"] == "80.00"

    code, out, err = cli(db, "billing", "run", "--period", "2026-04", as_of="2026-04-01")
    assert code == 1 and "2 invoices issued" in out and "skipped broken:" in out, out + err
    for account, total in (("acme", "120.00"), ("zeta", "40.00")):  # March and April
        code, out, _ = cli(db, "--json", "billing", "invoices", account, as_of="2026-04-01")
        assert sum(Decimal(i["total"]) for i in json.loads(out)["invoices"]) == Decimal(total)
