"""Outbound events (issue 18 item 3): endpoints, durable deliveries written by the built-in
listener plugin, and the sender — against a real local HTTP receiver that verifies the signature
and the timestamp, de-duplicates on the event id, fails on purpose and recovers. The test clock
moves; nothing sleeps."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock
from seatgate.core.domain.events import SeatsAssigned, UsersActivated
from seatgate.core.errors import BadInput, Conflict, NotAuthorized, NotFound
from seatgate.core.services.base import deliver_pending
from seatgate.core.storage.tables import event_outbox, webhook_deliveries, webhook_endpoints

from .conftest import ADMIN, PARTNER, SECRET, P, account, count, order_form
from .servers import Receiver

USERS = [f"u{i}@acme.example" for i in range(4)]


def setup(app: App, receiver: Receiver, events: tuple[str, ...] = ("*",)) -> int:
    account(app)
    order_form(app, seats=2, mode="hard_cap")
    app.accounts.add_users("acme", USERS)
    made = app.webhooks.add("acme", receiver.url, events, ADMIN)
    receiver.secret = made.secret
    return made.endpoint.id


def deliver(app: App, receiver: Receiver, clock: FixedClock) -> dict[str, object]:
    receiver.now = clock.now()
    return app.webhooks.deliver().as_dict()


def test_events_reach_a_receiver_signed_once_each_with_payloads_that_carry_no_secret(
    app: App, clock: FixedClock, receiver: Receiver
) -> None:
    setup(app, receiver)
    app.assign("acme", P, USERS, ADMIN)  # 2 seated, 2 refused: the hard cap
    app.addons.activate("acme", P, "insights", partner=PARTNER)
    run = deliver(app, receiver, clock)
    assert run["attempted"] == run["delivered"] == 4 and receiver.rejected == 0
    types = sorted(e["type"] for e in receiver.events.values())
    assert types == ["addon.activated", "seat.assigned", "seat.refused", "user.activated"]
    refused = next(e for e in receiver.events.values() if e["type"] == "seat.refused")
    assert refused["account"] == "acme" and refused["product"] == P
    assert refused["data"]["emails"] == USERS[2:]
    assert refused["data"]["reasons"] == ["capacity_reached", "capacity_reached"]
    assert set(refused) == {"id", "type", "occurred_at", "account", "product", "data"}
    for event in receiver.events.values():
        text = json.dumps(event)
        assert receiver.secret not in text and SECRET not in text and "api_key" not in text
    assert deliver(app, receiver, clock)["attempted"] == 0  # nothing due twice


def test_a_receiver_that_fails_then_recovers_loses_nothing_and_gets_nothing_twice(
    app: App, clock: FixedClock, receiver: Receiver
) -> None:
    setup(app, receiver, ("seat.assigned", "user.activated"))
    receiver.fail_with = 503
    app.assign("acme", P, USERS[:1], ADMIN)
    app.assign("acme", P, USERS[1:2], ADMIN)
    first = deliver(app, receiver, clock)
    assert (first["attempted"], first["delivered"], first["retrying"]) == (4, 0, 4)
    assert deliver(app, receiver, clock)["attempted"] == 0  # not due yet: the backoff
    pending = app.webhooks.deliveries("acme", status="pending")
    waits = [(d.next_attempt_at - clock.now()).total_seconds() for d in pending]
    assert all(15 <= w < 30 for w in waits)  # 30 s backoff, equal jitter
    clock.advance(seconds=30)
    assert deliver(app, receiver, clock)["retrying"] == 4  # still down: 60 s backoff now
    receiver.fail_with = None
    clock.advance(seconds=60)
    assert deliver(app, receiver, clock)["delivered"] == 4
    assert len(receiver.events) == 4 and receiver.duplicates == 0 and receiver.rejected == 0
    [one] = app.webhooks.deliveries("acme", status="delivered", limit=1)
    log = app.webhooks.delivery("acme", one.id).log
    assert [a["status_code"] for a in log] == [503, 503, 204]
    # A manual redelivery sends the same event id: the receiver sees a duplicate and keeps one.
    app.webhooks.redeliver("acme", one.id, ADMIN)
    assert deliver(app, receiver, clock)["delivered"] == 1
    assert len(receiver.events) == 4 and receiver.duplicates == 1


def test_a_delivery_is_retried_for_a_day_then_given_up_and_the_endpoint_disabled_with_an_event(
    app: App, clock: FixedClock, receiver: Receiver
) -> None:
    endpoint = setup(app, receiver, ("seat.assigned",))
    with Receiver() as watcher:
        watcher.secret = app.webhooks.add("acme", watcher.url, ["webhook.disabled"], ADMIN).secret
        receiver.fail_with = 500
        app.assign("acme", P, USERS[:1], ADMIN)
        start = clock.now()
        while app.webhooks.deliveries("acme", endpoint=endpoint, status="pending"):
            [due] = app.webhooks.deliveries("acme", endpoint=endpoint, status="pending")
            assert due.next_attempt_at is not None
            clock.set(max(clock.now(), due.next_attempt_at))
            watcher.now = clock.now()
            deliver(app, receiver, clock)
        attempts = receiver.requests
        [failed] = app.webhooks.deliveries("acme", endpoint=endpoint)
        assert failed.status == "failed" and failed.attempts == attempts
        assert dt.timedelta(hours=23) <= clock.now() - start <= dt.timedelta(days=1)
        assert 30 <= attempts <= 55  # 7 doublings to the 1 h cap, then 30 to 46 at 0.5-1 h
        [listed] = [e for e in app.webhooks.list("acme") if e.id == endpoint]
        assert not listed.enabled and "every attempt failed" in listed.disabled_reason
        # The event saying so reached the other endpoint, and never the disabled one.
        watcher.now = clock.now()
        app.webhooks.deliver()
        [disabled] = watcher.events.values()
        assert disabled["type"] == "webhook.disabled"
        assert disabled["data"]["endpoint"] == str(endpoint)
        # Enabled again: what it missed meanwhile is sent; the given-up one waits for redelivery.
        receiver.fail_with = None
        app.assign("acme", P, USERS[1:2], ADMIN)
        assert deliver(app, receiver, clock)["attempted"] == 0  # disabled: held
        app.webhooks.enable("acme", endpoint, ADMIN)
        assert deliver(app, receiver, clock)["delivered"] == 1
        app.webhooks.redeliver("acme", failed.id, ADMIN)
        assert deliver(app, receiver, clock)["delivered"] == 1
        assert len(receiver.events) == 2 and receiver.duplicates == 0


def test_a_batch_of_events_is_enqueued_with_one_read_per_account_and_one_write(
    app: App, clock: FixedClock, receiver: Receiver
) -> None:
    """The listener hears the outbox's batch at once (seatgate_events): each account's endpoints
    are read once and the batch's deliveries written in one transaction, each event to the
    endpoints subscribed to it, in order."""
    acme = setup(app, receiver, ("seat.assigned",))
    account(app, "beta", admin="root@beta.example")
    beta = app.webhooks.add("beta", receiver.url, ("*",), "root@beta.example").endpoint.id
    at = clock.now()

    def assigned(name: str, email: str) -> SeatsAssigned:
        return SeatsAssigned(
            account=name, product=P, at=at, emails=(email,), actor=ADMIN, reason="admin"
        )

    batch = [
        assigned("acme", "a@acme.example"),
        UsersActivated(
            account="acme",
            product=P,
            at=at,
            emails=("a@acme.example",),
            actor=ADMIN,
            assigned_after=1,
            price_shown="0.00",
            currency="USD",
        ),
        assigned("beta", "b@beta.example"),
        assigned("acme", "c@acme.example"),
    ]
    reads: list[str] = []
    writes: list[str] = []

    def statement(conn: object, cursor: object, sql: str, *args: object) -> None:
        verb = sql.lstrip().upper()
        if verb.startswith("SELECT") and "webhook_endpoints" in sql:
            reads.append(sql)
        elif verb.startswith("INSERT"):
            writes.append(sql)

    engine = app.db.engine
    sa.event.listen(engine, "before_cursor_execute", statement)
    try:
        assert app.webhooks.enqueue_all(batch) == 3
    finally:
        sa.event.remove(engine, "before_cursor_execute", statement)
    assert len(reads) == 2 and len(writes) == 1
    with app.db.read() as conn:
        rows = conn.execute(
            sa.select(webhook_deliveries.c.endpoint_id, webhook_deliveries.c.event_id).order_by(
                webhook_deliveries.c.id
            )
        ).all()
    ids = [e.id for e in batch]
    assert [tuple(r) for r in rows] == [
        (acme, ids[0]), (beta, ids[2]), (acme, ids[3]),
    ]  # fmt: skip
    assert app.webhooks.enqueue_all(batch) == 0  # delivered again after a crash: nothing new


def test_a_receiver_with_another_secret_or_a_stale_timestamp_rejects_the_request(
    app: App, clock: FixedClock, receiver: Receiver
) -> None:
    setup(app, receiver, ("seat.assigned",))
    receiver.secret = "whsec_not-the-one"
    app.assign("acme", P, USERS[:1], ADMIN)
    assert deliver(app, receiver, clock)["retrying"] == 1 and receiver.rejected == 1
    [made] = app.webhooks.list("acme")
    receiver.secret = ""
    clock.advance(minutes=5)
    receiver.now = clock.now() + dt.timedelta(minutes=6)  # the request looks 6 minutes old
    app.webhooks.deliver()
    assert receiver.rejected == 2 and not receiver.events
    assert made.failures == 1 and app.webhooks.list("acme")[0].failures == 2


def test_deliveries_are_idempotent_on_the_event_id(
    app: App, clock: FixedClock, receiver: Receiver
) -> None:
    setup(app, receiver, ("seat.assigned",))
    event = SeatsAssigned(
        account="acme", product=P, at=clock.now(), emails=("x@acme.example",), actor=ADMIN,
        reason="admin",
    )  # fmt: skip
    assert app.webhooks.enqueue(event) == 1
    assert app.webhooks.enqueue(event) == 0  # the outbox delivered it again after a crash
    # An event left undelivered in the outbox reaches the listener once more: still one.
    app.assign("acme", P, USERS[:1], ADMIN)
    with app.db.write() as conn:
        conn.execute(event_outbox.update().values(delivered_at=None))
    deliver_pending(app.ports)
    assert count(app, webhook_deliveries) == 2


def test_the_signing_secret_is_shown_once_and_stored_encrypted(
    app: App, receiver: Receiver
) -> None:
    setup(app, receiver)
    with app.db.read() as conn:
        [sealed] = conn.execute(sa.select(webhook_endpoints.c.secret_sealed)).scalars().all()
    assert receiver.secret.startswith("whsec_") and receiver.secret not in sealed
    assert app.ports.orders.keys is not None
    assert app.ports.orders.keys.unseal(sealed) == receiver.secret
    listed = json.dumps([e.as_dict() for e in app.webhooks.list("acme")], default=str)
    assert receiver.secret not in listed and sealed not in listed


def test_endpoints_are_refused_without_manage_or_with_a_bad_url_or_event(
    app: App, receiver: Receiver
) -> None:
    account(app)
    app.accounts.grant("acme", "ann@acme.example", "install", ADMIN)
    with pytest.raises(NotAuthorized):
        app.webhooks.add("acme", receiver.url, ["*"], "ann@acme.example")
    with pytest.raises(BadInput, match=r"https://"):
        app.webhooks.add("acme", "http://hooks.example.com/x", ["*"], ADMIN)
    with pytest.raises(BadInput, match=r"seat\.assigned"):
        app.webhooks.add("acme", receiver.url, ["seat.sold"], ADMIN)
    with pytest.raises(BadInput):
        app.webhooks.add("acme", "https://user:pw@hooks.example.com/x", ["*"], ADMIN)
    assert count(app, webhook_endpoints) == 0
    made = app.webhooks.add("acme", "https://hooks.example.com/x", ["*"], ADMIN)
    account(app, "globex", admin="boss@globex.example")
    with pytest.raises(NotFound):
        app.webhooks.remove("globex", made.endpoint.id, "boss@globex.example")


def test_overage_entered_and_left_and_invoices_issued_are_events(
    app: App, clock: FixedClock, receiver: Receiver
) -> None:
    setup(app, receiver, ("overage.entered", "overage.left", "invoice.issued"))
    app.assign("acme", P, USERS[:2], ADMIN)
    app.contracts.set_quantity("acme", P, 1, ADMIN)  # 2 held, 1 contracted: in overage
    app.purchases.buy_seats("acme", P, 1, ADMIN, confirm=True)  # out of it
    app.billing.run("2026-02")
    deliver(app, receiver, clock)
    got = sorted((e["type"], e["data"].get("cause", "")) for e in receiver.events.values())
    assert got == [
        ("invoice.issued", ""),
        ("overage.entered", "quantity"),
        ("overage.left", "quantity"),
    ]
    invoice = next(e for e in receiver.events.values() if e["type"] == "invoice.issued")
    assert invoice["data"]["number"].startswith("INV-2026-02") and invoice["data"]["products"] == [
        P
    ]


def test_removing_an_endpoint_ends_what_it_had_pending_and_keeps_the_log(
    app: App, clock: FixedClock, receiver: Receiver
) -> None:
    endpoint = setup(app, receiver, ("seat.assigned",))
    app.assign("acme", P, USERS[:1], ADMIN)
    app.webhooks.remove("acme", endpoint, ADMIN)
    [ended] = app.webhooks.deliveries("acme")
    assert (ended.status, ended.last_error) == ("failed", "the endpoint was removed")
    assert app.webhooks.list("acme") == [] and deliver(app, receiver, clock)["attempted"] == 0
    app.assign("acme", P, USERS[1:2], ADMIN)  # a removed endpoint gets nothing new
    assert len(app.webhooks.deliveries("acme")) == 1


def test_a_sender_without_a_usable_secret_claims_nothing(
    db_url: str, clock: FixedClock, receiver: Receiver
) -> None:
    """Refused before a delivery is leased: once the secret is right the delivery goes at once,
    not after the lease (5 minutes) runs out."""
    from .conftest import make_app

    app = make_app(db_url, clock)
    try:
        setup(app, receiver, ("seat.assigned",))
        app.seats.assign("acme", P, USERS[:1], ADMIN)
    finally:
        app.close()
    for secret in ("", "too-short"):
        broken = make_app(db_url, clock, secret_key=secret)
        try:
            with pytest.raises((BadInput, Conflict)):
                broken.webhooks.deliver()
            with broken.db.read() as conn:
                leased = conn.execute(sa.select(webhook_deliveries.c.leased_until)).scalars()
                assert leased.all() == [None]
        finally:
            broken.close()
    app = make_app(db_url, clock)
    try:
        assert deliver(app, receiver, clock)["delivered"] == 1
    finally:
        app.close()
