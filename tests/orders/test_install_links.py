"""Install links for order-form purchases (issue 18 item 1; seed 002, "Buying through a Signed
Order Form": "Install the App through the AppConnect Marketplace or an Install Link sent to you via
an email notification"). Mail goes through a real local SMTP server; installs reach the in-memory
CRM's real HTTP sandbox."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock
from seatgate.core.domain.links import token_for
from seatgate.core.errors import BadInput, Conflict, NotAuthorized
from seatgate.core.storage.tables import (
    audit_log,
    install_links,
    installations,
    mail_outbox,
)
from seatgate.core.storage.tables import (
    commitments as billing_commitments_table,
)
from seatgate.core.testing.memory import MemorySandbox

from .conftest import ADMIN, SECRET, P, account, config, count, dump, make_app, order_form
from .servers import SmtpServer

TOKEN_RE = re.compile(r"/install/(sgl_[0-9a-f]{32}\.[A-Za-z0-9_-]{43})")
STATE_TABLES = (install_links, installations, billing_commitments_table)


@pytest.fixture
def mailing_app(db_url: str, clock: FixedClock, smtp: SmtpServer) -> App:
    application = make_app(db_url, clock, smtp_url=smtp.url)
    yield application  # type: ignore[misc]
    application.close()


def test_a_link_is_mailed_through_smtp_and_installs_under_the_order_form_contract(
    mailing_app: App, smtp: SmtpServer, crm: MemorySandbox
) -> None:
    app = mailing_app
    account(app)
    order_form(app)
    made = app.install_links.create("acme", P, "It@Acme.Example", "sales@talkdesk.example")
    assert made.mail == "sent" and made.link.state == "active"
    assert made.link.expires_at == app.now() + dt.timedelta(days=14)
    [mail] = smtp.messages
    assert mail["To"] == "it@acme.example"
    assert mail["From"] == "orders@seatgate.example"
    body = mail.get_payload(decode=True).decode()  # type: ignore[union-attr]
    token = TOKEN_RE.search(body)
    assert token is not None and token[1] == made.token
    assert "add the intended users" in body

    done = app.install_links.redeem(token[1], config(crm), ADMIN)
    assert done.next == "add_users"
    assert done.install.product == P and done.link.state == "used"
    assert done.link.used_by == ADMIN
    # The order form's contract applies: the commitment records who installed, no price.
    [commitment] = app.billing.commitments("acme")
    assert commitment["action"] == "install" and commitment["actor"] == ADMIN
    assert commitment["price_shown"] is None
    assert commitment["detail"]["via"] == "install_link"
    [contract] = app.contracts.list("acme")
    assert (contract.contract.unit_price, contract.contract.quantity) == (10, 10)
    assert [row.state for row in app.install_links.list("acme")] == ["used"]


def test_without_smtp_the_mail_stays_in_the_outbox_and_holds_no_token(app: App) -> None:
    account(app)
    order_form(app)
    made = app.install_links.create("acme", P, "it@acme.example")
    assert made.mail == "queued" and made.url in made.message
    with app.db.read() as conn:
        [(body, status)] = conn.execute(
            mail_outbox.select().with_only_columns(mail_outbox.c.body, mail_outbox.c.status)
        ).all()
    assert status == "queued" and "{link}" in body and made.token not in body
    assert made.token not in repr(made) and SECRET not in repr(app.ports)


def _link(app: App) -> str:
    account(app)
    order_form(app)
    return app.install_links.create("acme", P, "it@acme.example").token


@pytest.mark.parametrize("kind", ["expired", "used", "revoked", "tampered", "foreign", "garbled"])
def test_every_bad_link_gets_one_clear_line_and_changes_nothing(
    app: App, clock: FixedClock, crm: MemorySandbox, db_url: str, kind: str
) -> None:
    token = _link(app)
    if kind == "expired":
        clock.advance(days=14)
    elif kind == "used":
        app.install_links.redeem(token, config(crm), ADMIN)
        app.purchases.uninstall("acme", P, ADMIN)
    elif kind == "revoked":
        [link] = app.install_links.list("acme")
        app.install_links.revoke("acme", link.id, "sales@talkdesk.example")
    elif kind == "tampered":
        link_id, mac = token[4:].split(".")
        token = f"sgl_{link_id[:-1]}{'0' if link_id[-1] != '0' else '1'}.{mac}"
    elif kind == "foreign":  # signed by another seatgate's secret
        other = make_app(db_url, clock, secret_key="another-server-secret-" + "x" * 32)
        assert other.ports.orders.keys is not None
        token = token_for(other.ports.orders.keys.sign, token[4:36])
        other.close()
    else:
        token = "sgl_not-a-token"
    before = dump(app, *STATE_TABLES)
    with pytest.raises((Conflict, BadInput)) as refused:
        app.install_links.redeem(token, config(crm), ADMIN)
    message = str(refused.value)
    assert "\n" not in message and token[5:] not in message
    expected = {
        "expired": "expired on 2026-02-24",
        "used": "was used on",
        "revoked": "was revoked on",
        "tampered": "altered",
        "foreign": "another server",
        "garbled": "malformed",
    }[kind]
    assert expected in message
    assert refused.value.remedy == "new_install_link"
    assert dump(app, *STATE_TABLES) == before


def test_a_link_of_another_account_is_refused_in_that_account(app: App, crm: MemorySandbox) -> None:
    token = _link(app)
    with pytest.raises(Conflict, match="another account"):
        app.install_links.redeem(token, config(crm), ADMIN, account="globex")
    assert count(app, installations) == 0


def test_redeeming_needs_install_or_manage_in_the_links_account(
    app: App, crm: MemorySandbox
) -> None:
    token = _link(app)
    account(app, "globex", admin="boss@globex.example")
    with pytest.raises(NotAuthorized):
        app.install_links.redeem(token, config(crm), "boss@globex.example")
    assert count(app, installations) == 0
    [link] = app.install_links.list("acme")
    assert link.state == "active"  # refused: still usable by the right person
    app.install_links.redeem(token, config(crm), ADMIN)


def test_only_order_form_contracts_get_links(app: App) -> None:
    account(app)
    order_form(app, channel="marketplace", unit_price=None)  # the listed price (item 6)
    with pytest.raises(BadInput, match="signed order form"):
        app.install_links.create("acme", P, "it@acme.example")
    assert count(app, install_links) == 0


def test_without_a_server_secret_links_are_refused_with_the_remedy(
    db_url: str, clock: FixedClock
) -> None:
    app = make_app(db_url, clock, secret_key="")
    try:
        account(app)
        order_form(app)
        with pytest.raises(Conflict) as refused:
            app.install_links.create("acme", P, "it@acme.example")
        assert refused.value.remedy == "set_secret_key"
    finally:
        app.close()


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"secret_key": "too-short"}, "SEATGATE_SECRET_KEY"),
        ({"smtp_url": "ftp://mail.example.com"}, "SEATGATE_SMTP_URL"),
        ({"smtp_url": "smtp://mail.example.com:notaport"}, "SEATGATE_SMTP_URL"),
    ],
)
def test_a_bad_secret_or_smtp_url_is_refused_before_anything_is_written(
    db_url: str, clock: FixedClock, settings: dict[str, str], field: str
) -> None:
    app = make_app(db_url, clock, **settings)
    try:
        account(app)
        order_form(app)
        before = dump(app, install_links, mail_outbox, audit_log)
        with pytest.raises(BadInput) as refused:
            app.install_links.create("acme", P, "it@acme.example")
        assert refused.value.field == field
        assert "too-short" not in str(refused.value)
        assert dump(app, install_links, mail_outbox, audit_log) == before
    finally:
        app.close()


def test_revoking_a_used_link_is_refused_and_another_accounts_link_is_not_found(
    app: App, crm: MemorySandbox
) -> None:
    token = _link(app)
    [link] = app.install_links.list("acme")
    account(app, "globex", admin="boss@globex.example")
    from seatgate.core.errors import NotFound

    with pytest.raises(NotFound):
        app.install_links.revoke("globex", link.id)
    app.install_links.redeem(token, config(crm), ADMIN)
    with pytest.raises(Conflict, match="used already"):
        app.install_links.revoke("acme", link.id)


def test_the_audit_log_records_creation_and_redemption(app: App, crm: MemorySandbox) -> None:
    token = _link(app)
    app.install_links.redeem(token, config(crm), ADMIN)
    assert count(app, audit_log, audit_log.c.action == "install_link.create") == 1
    assert count(app, audit_log, audit_log.c.action == "install_link.redeem") == 1
