"""Add-on plans activated by the partner (issue 18 item 2; seed 002: "App Add-on Plans for each App
are not selectable on the Talkdesk My Apps management console and will be activated in your
Account by the Partner, based on contracted terms")."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from click.testing import CliRunner

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock, parse_instant
from seatgate.core.errors import BadInput, Conflict, NotAuthorized
from seatgate.core.storage.tables import addons, audit_log, commitments

from .conftest import ADMIN, PARTNER, P, account, count, dump, order_form


def test_the_partner_activates_an_add_on_and_the_next_invoice_bills_it(
    app: App, clock: FixedClock
) -> None:
    account(app)
    order_form(app)  # 10 seats at 10.00, monthly, from 2026-01-01
    app.billing.run("2026-02")  # February invoiced before the activation
    info = app.addons.activate(
        "acme", P, "insights", partner=PARTNER, actor="ops@memco.example", seats=4
    )
    # 4 seats x 3.00 from 2026-02-10: 19/28 of February, co-termed.
    assert (info.quantity, info.unit_price, str(info.effective)) == (4, 3, "2026-02-10")
    assert (info.per_period, info.rest_of_term) == (Decimal("12.00"), Decimal("128.14"))
    clock.set(parse_instant("2026-03-01T09:00:00Z"))
    invoice = app.billing.run("2026-03")
    assert invoice["count"] == 1
    lines = [
        (ln["kind"], ln["amount"], ln["start"], ln["end"])
        for ln in app.billing.preview("acme", None, "2026-03")["lines"]
        if ln["kind"] == "add_on"
    ]
    assert lines == [
        ("add_on", "8.14", "2026-02-10", "2026-03-01"),
        ("add_on", "12.00", "2026-03-01", "2026-04-01"),
    ]
    # Recorded with the partner as actor: a commitment at the price shown, an audit row.
    [commitment] = [c for c in app.billing.commitments("acme") if c["action"] == "addon_activate"]
    assert commitment["actor"] == f"partner:{PARTNER}"
    assert str(commitment["price_shown"]) == "128.14"
    assert count(app, audit_log, audit_log.c.action == "addon.activate") == 1


def test_a_per_account_add_on_at_the_contracted_price_and_its_deactivation_at_the_term_end(
    app: App, clock: FixedClock
) -> None:
    account(app)
    order_form(app, frequency="quarterly", months=6)
    info = app.addons.activate("acme", P, "reports", partner=PARTNER, unit_price=Decimal("80"))
    assert (info.charge_model, info.quantity, info.per_period) == (
        "per_account", 1, Decimal("240.00"),
    )  # fmt: skip
    ended = app.addons.deactivate("acme", P, "reports", partner=PARTNER)
    assert (str(ended.ends), ended.status) == ("2026-07-01", "ending")
    with pytest.raises(Conflict, match="already deactivated"):
        app.addons.deactivate("acme", P, "reports", partner=PARTNER)
    with pytest.raises(Conflict, match="until 2026-07-01"):
        app.addons.activate("acme", P, "reports", partner=PARTNER)
    for month in ("2026-04", "2026-07", "2026-10"):
        clock.set(parse_instant(f"{month}-01T09:00:00Z"))
        app.billing.run(month)
    billed = {
        month: [ln["amount"] for ln in app.billing.preview("acme", None, month)["lines"]
                if ln["kind"] == "add_on"]
        for month in ("2026-04", "2026-07", "2026-10")
    }  # fmt: skip
    # 80.00 x 11/31 ... of the first quarter's rest, then April-July in full, nothing after.
    assert billed["2026-04"][-1] == "240.00" and billed["2026-07"] == [] == billed["2026-10"]
    assert app.addons.list("acme")[0].status == "ended"
    app.addons.activate("acme", P, "reports", partner=PARTNER)  # again, once it has ended


@pytest.mark.parametrize(
    "partner, expected, remedy",
    [
        (None, "not selectable by an account's admins", "partner_activates"),
        ("cloudlane", "does not publish memory", None),  # salesforce's partner
        ("nobody", "does not publish memory", None),
    ],
)
def test_anyone_but_the_products_partner_is_refused_audited_and_nothing_is_written(
    app: App, partner: str | None, expected: str, remedy: str | None
) -> None:
    account(app)
    order_form(app)
    before = dump(app, addons, commitments)
    with pytest.raises(NotAuthorized, match=expected) as refused:
        app.addons.activate("acme", P, "insights", partner=partner, actor=ADMIN)
    assert refused.value.field == "partner" and refused.value.remedy == remedy
    assert dump(app, addons, commitments) == before
    assert count(app, audit_log, audit_log.c.outcome == "not_authorized") == 1


def test_bad_add_on_requests_are_refused(app: App) -> None:
    account(app)
    order_form(app)
    with pytest.raises(BadInput, match="insights, reports"):
        app.addons.activate("acme", P, "basic", partner=PARTNER)  # a base plan
    with pytest.raises(BadInput, match="charged once per account"):
        app.addons.activate("acme", P, "reports", partner=PARTNER, seats=3)
    app.addons.activate("acme", P, "insights", partner=PARTNER)
    assert app.addons.list("acme")[0].quantity == 10  # the contracted quantity
    with pytest.raises(Conflict, match="is active"):
        app.addons.activate("acme", P, "insights", partner=PARTNER)


def test_the_purchase_summary_never_offers_an_add_on_to_an_admin(app: App) -> None:
    with pytest.raises(BadInput, match="only the partner activates"):
        app.purchases.summary(P, "insights", 3)
    account(app)
    order_form(app)
    with pytest.raises(BadInput, match="only the partner activates"):
        app.purchases.change_plan("acme", P, "insights", ADMIN)


def test_catalog_list_names_each_products_partner(tmp_path: object) -> None:
    from seatgate.core.entrypoints.cli import main_group

    result = CliRunner().invoke(
        main_group, ["--db", f"sqlite:///{tmp_path}/c.db", "--json", "catalog", "list"]
    )
    assert result.exit_code == 0, result.output
    partners = {p["product"]: p["partner"] for p in json.loads(result.output)["plans"]}
    assert partners["salesforce"] == "cloudlane" and partners["servicenow"] == "nowbridge"
    human = CliRunner().invoke(
        main_group, ["--db", f"sqlite:///{tmp_path}/c.db", "catalog", "list"]
    )
    assert "cloudlane" in human.output and "partner" in human.output
