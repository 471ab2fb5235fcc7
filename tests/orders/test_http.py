"""Issue 18 over HTTP, through a real uvicorn server on 127.0.0.1 built the way ``seatgate serve``
builds its workers (``build_core``: the server secret, SMTP and the catalog from the environment):
an install link mailed through a real SMTP server (aiosmtpd) and redeemed over HTTP, a partner
token activating an add-on and the invoice line it makes, webhooks delivered by the server's own
background sender to a real local receiver that verifies signatures, fails on purpose and
recovers, and every refusal as one problem document that changes nothing."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import sqlalchemy as sa
from api.conftest import LiveServer, bearer  # tests/ is on sys.path (rootdir-relative imports)

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock, parse_instant
from seatgate.core.domain.events import SeatsAssigned
from seatgate.core.entrypoints.http.app import create_app
from seatgate.core.entrypoints.http.server import build_core
from seatgate.core.entrypoints.http.settings import Settings
from seatgate.core.plugins.manager import build_plugin_manager
from seatgate.core.storage.tables import (
    addons,
    commitments,
    install_links,
    installations,
    mail_outbox,
    webhook_deliveries,
)
from seatgate.core.testing.memory import MemoryAdapter, MemorySandbox

from .conftest import (
    ACME_KEY_ENV,
    ADMIN,
    PARTNER,
    SECRET,
    P,
    catalog_data,
    config,
    dump,
    order_form,
)
from .servers import Receiver, SmtpServer

AS_OF = "2026-02-10T09:00:00Z"
USERS = [f"u{i}@acme.example" for i in range(1, 5)]
ACME = "/v1/accounts/acme"
PRODUCT = f"{ACME}/products/{P}"
PROBLEM = "application/problem+json"


@attrs.define
class Served:
    core: App
    server: LiveServer
    http: httpx.Client
    tokens: dict[str, str]
    settings: Settings

    @property
    def clock(self) -> FixedClock:
        assert isinstance(self.core.clock, FixedClock)
        return self.core.clock

    def call(self, method: str, path: str, who: str | None, **kwargs: Any) -> httpx.Response:
        headers = bearer(self.tokens[who]) if who else {}
        return self.http.request(method, path, headers=headers, **kwargs)


def serve_orders(
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    smtp_url: str,
    **settings: Any,
) -> tuple[App, Settings]:
    """The App of a server worker, from the environment as ``seatgate serve`` gives it."""
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(catalog_data()), encoding="utf-8")
    monkeypatch.setenv("SEATGATE_CATALOG", str(catalog))
    monkeypatch.setenv("SEATGATE_SECRET_KEY", SECRET)
    monkeypatch.setenv("SEATGATE_SMTP_URL", smtp_url)
    monkeypatch.setenv("SEATGATE_CONSOLE_URL", "https://console.example")
    config_ = Settings(db_url=db_url, as_of=AS_OF, **settings)
    plugins = build_plugin_manager(
        builtins=(), entry_points=False, plugins=[("memory", MemoryAdapter())], strict=True
    )
    return build_core(config_, plugins), config_


def seed(core: App) -> dict[str, str]:
    """acme (an order-form memory contract: 10 seats at 10.00 from 2026-01-01, users u1..u4) and
    globex (the same contract); a token per role."""
    for name, admin in (("acme", ADMIN), ("globex", "admin@globex.example")):
        core.accounts.create(name, "US", admin=admin)
        order_form(core, name)
    core.accounts.add_users("acme", USERS, roles=(), name="", actor=ADMIN)
    made = {
        "admin": core.tokens.create("acme", "admin", ADMIN),
        "billing": core.tokens.create("acme", "billing", ADMIN),
        "check": core.tokens.create("acme", "check"),
        "clerk": core.tokens.create("acme", "admin", "clerk@acme.example"),
        "partner": core.tokens.create("acme", "partner", "ops@memco.example", partner=PARTNER),
        "other_partner": core.tokens.create("acme", "partner", partner="cloudlane"),
        "globex_admin": core.tokens.create("globex", "admin", "admin@globex.example"),
        "globex_partner": core.tokens.create("globex", "partner", partner=PARTNER),
    }
    return {role: issued.secret for role, issued in made.items()}


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


@pytest.fixture
def served(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp: SmtpServer
) -> Iterator[Served]:
    # The sender runs every 50 ms so that the test waits little for it; what it sends is decided
    # by the test clock (retries fall due when the test moves it).
    core, settings = serve_orders(db_url, tmp_path, monkeypatch, smtp.url, webhook_interval=0.05)
    tokens = seed(core)
    try:
        with (
            LiveServer(create_app(core, settings)) as server,
            httpx.Client(base_url=server.url, timeout=20) as http,
        ):
            yield Served(core, server, http, tokens, settings)
    finally:
        core.close()


def wait_for(what: Callable[[], Any], seconds: float = 20.0) -> Any:
    """Poll ``what`` until it is truthy: it waits for the server's sender thread, not for the
    clock (the test clock moves only when the test moves it)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError("timed out waiting for the server")


def is_problem(got: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert got.status_code == status, got.text
    assert got.headers["content-type"] == PROBLEM
    body: dict[str, Any] = got.json()
    assert body["code"] == code, body
    assert "\n" not in body["detail"] and "Traceback" not in got.text
    return body


# -- install links ----------------------------------------------------------------------------------
def link_token(smtp: SmtpServer, index: int = -1) -> str:
    body = smtp.messages[index].get_payload(decode=True).decode()
    found = re.search(r"https://console\.example/install/(sgl_[A-Za-z0-9_.-]+)", body)
    assert found, body
    return found.group(1)


def test_an_install_link_made_over_http_is_mailed_through_smtp_and_redeemed_over_http(
    served: Served, smtp: SmtpServer, crm: MemorySandbox
) -> None:
    made = served.call(
        "POST", f"{PRODUCT}/install-links", "admin", json={"email": "IT@acme.example"}
    )
    assert made.status_code == 201, made.text
    link = made.json()
    assert (link["mail"], link["state"], link["email"]) == ("sent", "active", "it@acme.example")
    [mail] = smtp.messages
    assert mail["To"] == "it@acme.example" and "memory" in mail["Subject"]
    token = link_token(smtp)
    assert token == link["token"]  # shown once in the answer too, as the CLI shows it once

    listed = served.call("GET", f"{ACME}/install-links", "admin")
    assert listed.json()["links"][0]["state"] == "active" and token not in listed.text

    done = served.call(
        "POST",
        f"{ACME}/install-links/redeem",
        "admin",
        json={"token": token, "config": config(crm, ACME_KEY_ENV)},
    )
    assert done.status_code == 200, done.text
    answer = done.json()
    assert answer["next"] == "add_users" and answer["link"]["state"] == "used"
    assert answer["install"]["product"] == P and answer["link"]["used_by"] == ADMIN
    assert crm.settings()["api_key"] not in done.text  # settings as references only
    # Installed under the order-form contract: no purchase, no price.
    [commitment] = served.core.billing.commitments("acme")
    assert commitment["action"] == "install" and commitment["price_shown"] is None

    # Used: one problem, nothing changed.
    before = dump(served.core, install_links, installations, commitments)
    again = served.call(
        "POST",
        f"{ACME}/install-links/redeem",
        "admin",
        json={"token": token, "config": config(crm, ACME_KEY_ENV)},
    )
    body = is_problem(again, 409, "conflict")
    assert "was used on 2026-02-10 09:00 UTC" in body["detail"]
    assert body["remedy"] == "new_install_link"
    assert dump(served.core, install_links, installations, commitments) == before


def test_every_bad_link_over_http_is_one_problem_and_changes_nothing(
    served: Served, smtp: SmtpServer, crm: MemorySandbox
) -> None:
    def create(account: str = "acme", who: str = "admin", days: int = 14) -> str:
        got = served.call(
            "POST",
            f"/v1/accounts/{account}/products/{P}/install-links",
            who,
            json={"email": f"it@{account}.example", "days": days},
        )
        assert got.status_code == 201, got.text
        return str(got.json()["token"])

    expiring = create(days=1)
    revoked = create()
    foreign = create("globex", "globex_admin")
    good = create()
    revoked_id = revoked.removeprefix("sgl_").split(".")[0]
    assert served.call("DELETE", f"{ACME}/install-links/{revoked_id}", "admin").status_code == 200
    served.clock.advance(days=2)

    tables = (install_links, installations, commitments, mail_outbox)
    before = dump(served.core, *tables)

    def redeem(token: str, who: str = "admin", account: str = "acme") -> httpx.Response:
        return served.call(
            "POST",
            f"/v1/accounts/{account}/install-links/redeem",
            who,
            json={"token": token, "config": config(crm, ACME_KEY_ENV)},
        )

    body = is_problem(redeem(expiring), 409, "conflict")
    assert "expired on 2026-02-11 09:00 UTC" in body["detail"]
    body = is_problem(redeem(revoked), 409, "conflict")
    assert "was revoked on 2026-02-10 09:00 UTC" in body["detail"]
    tampered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    body = is_problem(redeem(tampered), 400, "bad_input")
    assert body["field"] == "token" and tampered not in json.dumps(body)
    body = is_problem(redeem("sgl_garbage"), 400, "bad_input")
    assert "garbage" not in json.dumps(body)
    body = is_problem(redeem(foreign), 409, "conflict")
    assert "for another account, not 'acme'" in body["detail"]
    is_problem(redeem(good, "globex_admin"), 404, "not_found")  # acme, seen from globex
    body = is_problem(redeem(good, "clerk"), 403, "not_authorized")  # no install permission
    assert body["remedy"] == "grant_permission"
    is_problem(redeem(good, "billing"), 403, "forbidden")
    is_problem(redeem(good, "partner"), 403, "forbidden")
    is_problem(redeem(good, None), 401, "unauthenticated")
    # A tenant's config names only its account's variables: not the server's environment.
    for name in ("HOME", "SEATGATE_SECRET_KEY", "SEATGATE_ACCOUNT_globex__MEMORY_KEY"):
        leaked = served.call(
            "POST",
            f"{ACME}/install-links/redeem",
            "admin",
            json={"token": good, "config": config(crm, name)},
        )
        assert name in is_problem(leaked, 400, "bad_input")["detail"]
    # Revoking twice, another account's link, and a link that does not exist.
    is_problem(
        served.call("DELETE", f"{ACME}/install-links/{revoked_id}", "admin"), 409, "conflict"
    )
    foreign_id = foreign.removeprefix("sgl_").split(".")[0]
    is_problem(
        served.call("DELETE", f"{ACME}/install-links/{foreign_id}", "admin"), 404, "not_found"
    )
    assert dump(served.core, *tables) == before
    # And the good link still works.
    assert redeem(good).status_code == 200


def test_install_links_are_listed_in_pages(served: Served) -> None:
    for n in range(5):
        served.clock.advance(minutes=1)
        got = served.call(
            "POST", f"{PRODUCT}/install-links", "admin", json={"email": f"it{n}@acme.example"}
        )
        assert got.status_code == 201
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor is not None:  # (httpx would send an empty cursor for None)
            params["cursor"] = cursor
        page = served.call("GET", f"{ACME}/install-links", "admin", params=params).json()
        seen += [x["email"] for x in page["links"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"it{n}@acme.example" for n in reversed(range(5))]  # newest first
    is_problem(
        served.call("GET", f"{ACME}/install-links", "admin", params={"cursor": "bm9wZQ"}),
        400,
        "bad_input",
    )


# -- add-ons ----------------------------------------------------------------------------------------
def test_the_partner_activates_an_add_on_over_http_and_the_invoice_bills_it(
    served: Served,
) -> None:
    got = served.call("POST", f"{PRODUCT}/addons/insights", "partner", json={"seats": 4})
    assert got.status_code == 201, got.text
    info = got.json()
    assert (info["partner"], info["actor"], info["quantity"], info["unit_price"]) == (
        PARTNER, "ops@memco.example", 4, "3.00",
    )  # fmt: skip
    assert (info["effective"], info["per_period"], info["rest_of_term"]) == (
        "2026-02-10", "12.00", "128.14",
    )  # fmt: skip
    # The invoice line it makes, read over HTTP with a billing token: 19/28 of February.
    preview = served.call(
        "GET", f"{ACME}/billing/preview", "billing", params={"period": "2026-02"}
    ).json()
    [line] = [ln for ln in preview["lines"] if ln["kind"] == "add_on"]
    assert (line["amount"], line["start"], line["end"], line["quantity"]) == (
        "8.14", "2026-02-10", "2026-03-01", 4,
    )  # fmt: skip
    march = served.call(
        "GET", f"{ACME}/billing/preview", "billing", params={"period": "2026-03"}
    ).json()
    assert [ln["amount"] for ln in march["lines"] if ln["kind"] == "add_on"] == ["12.00"]
    # Recorded with the partner as actor.
    [commitment] = served.core.billing.commitments("acme")
    assert (commitment["action"], commitment["actor"]) == ("addon_activate", f"partner:{PARTNER}")

    # The list: the account's for admin and billing tokens, the partner's products' for partners.
    for who, expected in (("admin", 1), ("billing", 1), ("partner", 1), ("other_partner", 0)):
        listed = served.call("GET", f"{ACME}/addons", who)
        assert listed.status_code == 200 and len(listed.json()["addons"]) == expected, who

    # Deactivated by the partner: at the end of the term, billed until then.
    ended = served.call("DELETE", f"{PRODUCT}/addons/insights", "partner")
    assert ended.status_code == 200, ended.text
    assert (ended.json()["ends"], ended.json()["status"]) == ("2027-01-01", "ending")


def test_every_add_on_refusal_over_http_is_one_problem_and_changes_nothing(served: Served) -> None:
    before = dump(served.core, addons, commitments)
    url = f"{PRODUCT}/addons/insights"
    # An admin reaches the service and is refused there, with the seed's reason.
    body = is_problem(served.call("POST", url, "admin", json={"seats": 2}), 403, "not_authorized")
    assert body["remedy"] == "partner_activates" and "memco" in body["detail"]
    # The partner of another product.
    body = is_problem(served.call("POST", url, "other_partner"), 403, "not_authorized")
    assert "'cloudlane' does not publish memory" in body["detail"]
    # The right partner, but its token is another account's.
    is_problem(served.call("POST", url, "globex_partner"), 404, "not_found")
    # Roles without the scope.
    is_problem(served.call("POST", url, "billing"), 403, "forbidden")
    is_problem(served.call("POST", url, "check"), 403, "forbidden")
    is_problem(served.call("POST", url, None), 401, "unauthenticated")
    # Bad values: one problem each, naming the field.
    for payload, field in (
        ({"seats": 0}, "seats"),
        ({"seats": 10**9}, "seats"),
        ({"unit_price": "12.345"}, "unit price"),
        ({"unit_price": "-1"}, "unit price"),
        ({"colour": "red"}, "colour"),
    ):
        body = is_problem(served.call("POST", url, "partner", json=payload), 400, "bad_input")
        assert body["field"] == field, body
    body = is_problem(served.call("POST", f"{PRODUCT}/addons/nosuch", "partner"), 400, "bad_input")
    body = is_problem(
        served.call("POST", f"{PRODUCT}/addons/reports", "partner", json={"seats": 3}),
        400,
        "bad_input",
    )
    assert "charged once per account" in body["detail"]
    # Deactivating what is not active, and the partner pages of other roles.
    is_problem(served.call("DELETE", url, "partner"), 404, "not_found")
    is_problem(served.call("DELETE", url, "admin"), 403, "not_authorized")
    assert dump(served.core, addons, commitments) == before


# -- webhooks ---------------------------------------------------------------------------------------
def deliveries(served: Served, **params: Any) -> list[dict[str, Any]]:
    got = served.call("GET", f"{ACME}/webhooks/deliveries", "admin", params=params)
    assert got.status_code == 200, got.text
    return list(got.json()["deliveries"])


def test_the_background_sender_of_serve_delivers_signed_events_through_a_failure_and_recovery(
    served: Served, receiver: Receiver
) -> None:
    receiver.now = served.clock.now()
    added = served.call(
        "POST",
        f"{ACME}/webhooks",
        "admin",
        json={"url": receiver.url, "events": ["seat.assigned", "addon.activated"]},
    )
    assert added.status_code == 201, added.text
    receiver.secret = added.json()["secret"]
    assert receiver.secret.startswith("whsec_")
    listed = served.call("GET", f"{ACME}/webhooks", "admin")
    assert receiver.secret not in listed.text and listed.json()["endpoints"][0]["enabled"]

    # An event made over HTTP is posted by the server's own sender, signed (the receiver checks).
    assign = f"{PRODUCT}/seats/assign"
    assert served.call("POST", assign, "admin", json={"emails": [USERS[0]]}).status_code == 200
    wait_for(lambda: len(receiver.events) == 1)
    [first] = receiver.events.values()
    assert (first["type"], first["data"]["emails"]) == ("seat.assigned", [USERS[0]])

    # The receiver fails on purpose: the attempt is logged and retried later by the clock.
    receiver.fail_with = 503
    requests = receiver.requests
    assert served.call("POST", assign, "admin", json={"emails": [USERS[1]]}).status_code == 200
    wait_for(lambda: receiver.requests == requests + 1)
    failed = wait_for(lambda: [d for d in deliveries(served) if d["last_status"] == 503])
    assert failed[0]["status"] == "pending" and failed[0]["attempts"] == 1
    # Nothing is due until the clock moves: the sender keeps running and posts nothing more.
    sender = served.server.server.config.app.state.webhook_sender
    runs = sender.runs
    wait_for(lambda: sender.runs >= runs + 5)
    assert receiver.requests == requests + 1

    # It recovers; the clock passes the backoff (at most 30 s for a first retry).
    receiver.fail_with = None
    served.clock.advance(seconds=31)
    receiver.now = served.clock.now()
    wait_for(lambda: len(receiver.events) == 2)
    wait_for(lambda: all(d["status"] == "delivered" for d in deliveries(served)))
    one = served.call("GET", f"{ACME}/webhooks/deliveries/{failed[0]['id']}", "admin").json()
    assert [a["status_code"] for a in one["log"]] == [503, 204]

    assert receiver.duplicates == 0  # through the failure and recovery: nothing twice
    scraped = served.http.get("/metrics").text
    assert 'seatgate_webhook_attempts_total{outcome="delivered"} 2.0' in scraped
    assert 'seatgate_webhook_attempts_total{outcome="retrying"} 1.0' in scraped
    # A manual redelivery sends the same event id: the de-duplicating receiver keeps it once.
    again = served.call("POST", f"{ACME}/webhooks/deliveries/{failed[0]['id']}/redeliver", "admin")
    assert again.status_code == 200 and again.json()["status"] == "pending"
    wait_for(lambda: receiver.duplicates == 1)
    assert len(receiver.events) == 2 and receiver.rejected == 0
    assert {e["data"]["emails"][0] for e in receiver.events.values()} == set(USERS[:2])


def test_the_sender_flushes_what_is_due_when_the_server_stops(
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    smtp: SmtpServer,
    receiver: Receiver,
) -> None:
    # An hour between runs: only the last pass, at shutdown, can send the event.
    core, settings = serve_orders(db_url, tmp_path, monkeypatch, smtp.url, webhook_interval=3600)
    try:
        tokens = seed(core)
        receiver.now = core.clock.now()
        receiver.secret = core.webhooks.add("acme", receiver.url, ["*"], ADMIN).secret
        app = create_app(core, settings)
        with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=20) as http:
            got = http.post(
                f"{PRODUCT}/seats/assign",
                json={"emails": [USERS[0]]},
                headers=bearer(tokens["admin"]),
            )
            assert got.status_code == 200
            assert receiver.events == {}
        assert not app.state.webhook_sender.running
        assert {e["type"] for e in receiver.events.values()} == {"seat.assigned", "user.activated"}
        with core.db.read() as conn:
            statuses = conn.execute(sa.select(webhook_deliveries.c.status)).scalars().all()
        assert statuses and set(statuses) == {"delivered"}
    finally:
        core.close()


def test_webhook_refusals_and_pages_over_http(served: Served) -> None:
    url = f"{ACME}/webhooks"
    body = is_problem(
        served.call("POST", url, "admin", json={"url": "http://example.com/x", "events": ["*"]}),
        400,
        "bad_input",
    )
    assert body["field"] == "url"
    body = is_problem(
        served.call("POST", url, "admin", json={"url": "https://h.example/x", "events": ["nope"]}),
        400,
        "bad_input",
    )
    body = is_problem(
        served.call("POST", url, "clerk", json={"url": "https://h.example/x", "events": ["*"]}),
        403,
        "not_authorized",
    )
    is_problem(served.call("POST", url, "billing", json={}), 403, "forbidden")
    is_problem(served.call("GET", url, "globex_admin"), 404, "not_found")
    ids = []
    for n in range(3):
        got = served.call(
            "POST", url, "admin", json={"url": f"https://h{n}.example/x", "events": ["*"]}
        )
        assert got.status_code == 201
        ids.append(got.json()["id"])
    first = served.call("GET", url, "admin", params={"limit": 2}).json()
    rest = served.call("GET", url, "admin", params={"cursor": first["next_cursor"]}).json()
    assert [e["id"] for e in first["endpoints"] + rest["endpoints"]] == ids
    assert rest["next_cursor"] is None
    # Disable, enable, remove; another account's endpoint is not found.
    assert served.call("POST", f"{url}/{ids[0]}/disable", "admin").json()["enabled"] is False
    assert served.call("POST", f"{url}/{ids[0]}/enable", "admin").json()["enabled"] is True
    assert served.call("DELETE", f"{url}/{ids[0]}", "admin").status_code == 200
    is_problem(served.call("DELETE", f"{url}/{ids[0]}", "admin"), 404, "not_found")
    is_problem(served.call("DELETE", f"{url}/{2**40}", "admin"), 400, "bad_input")
    is_problem(
        served.call("GET", f"{url}/deliveries", "admin", params={"status": "lost"}),
        400,
        "bad_input",
    )
    is_problem(served.call("GET", f"{url}/deliveries/999", "admin"), 404, "not_found")
    is_problem(served.call("POST", f"{url}/deliveries/999/redeliver", "admin"), 404, "not_found")


# -- seatgate serve itself ----------------------------------------------------------------------------
SEATGATE = str(Path(sys.executable).with_name("seatgate"))


def test_seatgate_serve_mails_links_through_smtp_url_and_sends_webhooks_in_the_background(
    db_url: str, smtp: SmtpServer, receiver: Receiver, tmp_path: Path
) -> None:
    """The command a user runs: ``SEATGATE_SECRET_KEY`` and ``SEATGATE_SMTP_URL`` in its
    environment, ``--webhook-interval``; the link's mail reaches the SMTP server and an event made
    over HTTP reaches the receiver, posted by the server's sender (no ``webhook deliver`` runs)."""
    as_of = "2026-03-20T12:00:00Z"
    core = App(db_url, clock=FixedClock(parse_instant(as_of)), secret_key=SECRET, smtp_url="")
    core.accounts.create("acme", "US", admin=ADMIN)
    core.contracts.create(
        "acme", "salesforce", seats=5, plan="standard", frequency="monthly",
        start=dt.date(2026, 1, 1), months=12, unit_price=Decimal("10"), channel="order_form",
    )  # fmt: skip
    core.accounts.add_users("acme", USERS, roles=(), name="", actor=ADMIN)
    receiver.secret = core.webhooks.add("acme", receiver.url, ["seat.assigned"], ADMIN).secret
    receiver.now = parse_instant(as_of)
    token = core.tokens.create("acme", "admin", ADMIN).secret
    core.close()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "SEATGATE_SECRET_KEY": SECRET,
        "SEATGATE_SMTP_URL": smtp.url,
        "SEATGATE_CONSOLE_URL": "https://console.example",
    }
    argv = [SEATGATE, "--db", db_url, "--as-of", as_of, "serve", "--port", str(port)]
    proc = subprocess.Popen(
        [*argv, "--webhook-interval", "0.2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ready(base, proc), 60)
        with httpx.Client(base_url=base, timeout=20, headers=bearer(token)) as http:
            made = http.post(
                "/v1/accounts/acme/products/salesforce/install-links",
                json={"email": "it@acme.example"},
            )
            assert made.status_code == 201 and made.json()["mail"] == "sent", made.text
            assert link_token(smtp) == made.json()["token"]
            got = http.post(
                "/v1/accounts/acme/products/salesforce/seats/assign",
                json={"emails": [USERS[0]]},
            )
            assert got.status_code == 200, got.text
            wait_for(lambda: len(receiver.events) == 1)
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    [event] = receiver.events.values()
    assert event["type"] == "seat.assigned" and receiver.rejected == 0
    log = err.decode()
    assert "webhooks: 1 attempted, 1 delivered" in log
    assert SECRET not in log and token not in log and receiver.secret not in log
    assert "Traceback" not in log


def _ready(base: str, proc: subprocess.Popen[bytes]) -> bool:
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    try:
        return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_the_senders_of_several_workers_share_the_deliveries_and_post_none_twice(
    db_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    """``serve --workers 3``: three senders race for 300 due deliveries; the leases (PostgreSQL
    ``FOR UPDATE SKIP LOCKED``, SQLite's write lock) give each delivery to one of them."""
    as_of = "2026-03-20T12:00:00Z"
    core = App(db_url, clock=FixedClock(parse_instant(as_of)), secret_key=SECRET, smtp_url="")
    try:
        core.accounts.create("acme", "US", admin=ADMIN)
        receiver.secret = core.webhooks.add("acme", receiver.url, ["seat.assigned"], ADMIN).secret
        receiver.now = parse_instant(as_of)
        for i in range(300):
            core.webhooks.enqueue(
                SeatsAssigned(
                    account="acme", product="salesforce", at=core.clock.now(),
                    emails=(f"u{i}@acme.example",), actor=ADMIN, reason="admin",
                )
            )  # fmt: skip
    finally:
        core.close()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [SEATGATE, "--db", db_url, "--as-of", as_of, "serve", "--port", str(port),
         "--workers", "3", "--webhook-interval", "0.05"],
        env={**os.environ, "SEATGATE_SECRET_KEY": SECRET},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )  # fmt: skip
    try:
        wait_for(lambda: len(receiver.events) == 300, 90)
        wait_for(lambda: _ready(f"http://127.0.0.1:{port}", proc), 30)
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert receiver.duplicates == 0 and receiver.rejected == 0
    assert receiver.requests == 300
    assert "Traceback" not in err.decode()
