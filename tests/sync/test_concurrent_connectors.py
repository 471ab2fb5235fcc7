"""Two connectors of one account syncing at once (the fleet does): a user one of them creates
while the other is between reading what is known and writing is linked, not created twice — no
unique-email failure, one user, both CRMs' links (found by the fleet's two-worker test)."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock
from seatgate.core.domain.sync import Staged
from seatgate.core.storage.tables import external_ids, integration_users

from .conftest import ACCOUNT, make_app, memory_plugins, setup_account

AT = dt.datetime(2026, 2, 1, 12, tzinfo=dt.UTC)


@pytest.fixture
def app(db_url: str, clock: FixedClock) -> Iterator[App]:
    made = make_app(db_url, clock, memory_plugins())
    setup_account(made)
    yield made
    made.db.dispose()


def staged(ext: str, email: str) -> Staged:
    return Staged(ext=ext, email=email, name="", active=True, roles=("Agent",))


def account_id(app: App) -> int:
    with app.uow.read() as uow:
        return uow.accounts.get(ACCOUNT).id


def users_and_links(app: App) -> tuple[dict[str, int], set[tuple[str, str, int]]]:
    with app.db.read() as conn:
        users = {
            e: u
            for e, u in conn.execute(sa.select(integration_users.c.email, integration_users.c.id))
        }
        links = {
            (p, e, u)
            for p, e, u in conn.execute(
                sa.select(
                    external_ids.c.product, external_ids.c.external_id, external_ids.c.user_id
                )
            )
        }
    return users, links


def test_an_email_created_meanwhile_is_linked_not_created_again(app: App) -> None:
    acct = account_id(app)
    with app.uow.write() as uow:
        (first,) = uow.sync.insert_users(acct, "memory", [staged("a-1", "ann@x.example")], AT)
    # The second connector decided from an older read that ann is new, and bob too.
    with app.uow.write() as uow:
        ids = uow.sync.insert_users(
            acct, "voice", [staged("v-1", "ann@x.example"), staged("v-2", "bob@x.example")], AT
        )
    users, links = users_and_links(app)
    assert ids[0] == first == users["ann@x.example"] and ids[1] == users["bob@x.example"]
    assert len(users) == 2
    assert links == {
        ("memory", "a-1", first),
        ("voice", "v-1", first),
        ("voice", "v-2", users["bob@x.example"]),
    }


def test_two_connectors_inserting_the_same_emails_at_once_both_succeed(app: App) -> None:
    acct = account_id(app)
    emails = [f"user{n:04d}@x.example" for n in range(300)]
    start, errors, results = threading.Barrier(2), [], {}

    def insert(product: str) -> None:
        try:
            start.wait(10)
            with app.uow.write() as uow:
                results[product] = uow.sync.insert_users(
                    acct, product, [staged(f"{product}-{e}", e) for e in emails], AT
                )
        except Exception as exc:  # collected: the assertion below names it
            errors.append(exc)

    threads = [threading.Thread(target=insert, args=(p,)) for p in ("memory", "voice")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    users, links = users_and_links(app)
    assert len(users) == 300
    assert results["memory"] == results["voice"] == [users[e] for e in emails]
    assert len(links) == 600
