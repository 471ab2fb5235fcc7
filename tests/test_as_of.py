"""The test clock sees no future (issue 13, item 7): every read as of an instant — checks, seat
lists, counts, overage — sees only what existed then, so a test clock can replay any past instant.
(The sync engine's own gate reads are the sync engine's.)"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock
from seatgate.core.entrypoints.cli import main
from seatgate.core.errors import NotFound

ADMIN = "admin@example.com"
P = "salesforce"
UTC = dt.UTC
SETUP = dt.datetime(2025, 10, 1, 9, tzinfo=UTC)
FIRST = [f"user{i}@example.com" for i in range(4)]


def seatgate(db: str, as_of: str, *args: str) -> tuple[int, Any]:
    done = CliRunner().invoke(
        main_entry, ["--db", db, "--as-of", as_of, "--actor", ADMIN, "--json", *args]
    )
    return done.exit_code, json.loads(done.output)


def _main(argv: tuple[str, ...]) -> None:
    main(list(argv))


import click  # noqa: E402  (the entry point wrapper below needs it)

main_entry = click.command(context_settings={"ignore_unknown_options": True})(
    click.argument("argv", nargs=-1, type=click.UNPROCESSED)(_main)
)


def test_a_seat_assigned_in_june_is_not_seen_in_march(sqlite_url: str) -> None:
    db = sqlite_url
    early = "2025-10-01T09:00:00Z"
    assert (
        seatgate(db, early, "account", "create", "acme", "--region", "US", "--admin", ADMIN)[0] == 0
    )
    seatgate(db, early, "contract", "create", "acme", P, "--seats", "5", "--plan", "standard",
             "--frequency", "monthly", "--start", "2025-10-01", "--months", "12")  # fmt: skip
    seatgate(db, early, "users", "add", "acme", "ann@example.com")
    code, _ = seatgate(db, "2026-06-01T09:00:00Z", "seats", "assign", "acme", P, "ann@example.com")
    assert code == 0
    code, march = seatgate(db, "2026-03-16T09:00:00Z", "check", "acme", P, "ann@example.com", "cti")
    assert (code, march["reason"], march["assigned"]) == (1, "no_seat", 0)
    _, listed = seatgate(db, "2026-03-16T09:00:00Z", "seats", "list", "acme")
    assert listed["seats"] == [] and listed["products"][0]["assigned"] == 0
    code, june = seatgate(db, "2026-06-02T09:00:00Z", "check", "acme", P, "ann@example.com", "cti")
    assert (code, june["reason"], june["assigned"]) == (0, "seated", 1)
    _, listed = seatgate(db, "2026-06-02T09:00:00Z", "seats", "list", "acme")
    assert [s["email"] for s in listed["seats"]] == ["ann@example.com"]
    # Nor does a user or a contract exist before it was recorded.
    code, before = seatgate(
        db, "2025-09-30T09:00:00Z", "check", "acme", P, "ann@example.com", "cti"
    )
    assert code == 2 and before["error"]["code"] == "not_found"


# -- the kind: writes at random instants, reads at others ------------------------------------------

instants = st.integers(min_value=0, max_value=300 * 24).map(
    lambda hours: SETUP + dt.timedelta(hours=1 + hours)
)
writes = st.lists(
    st.tuples(
        instants,
        st.sampled_from(["assign", "unassign", "join", "buy"]),
        st.lists(st.integers(0, 6), min_size=1, max_size=3),
    ),
    min_size=1,
    max_size=8,
)


class Account:
    """One account of the property test: what was written, at which instant, in write order."""

    _names = itertools.count()

    def __init__(self, app: App) -> None:
        self.app = app
        self.name = f"acct{next(self._names)}"
        self.clock = app.clock
        assert isinstance(self.clock, FixedClock)
        self.log: list[tuple[dt.datetime, str, str]] = []  # (instant, what, email or quantity)
        self.at(SETUP)
        app.accounts.create(self.name, "US", admin=ADMIN)
        app.contracts.create(
            self.name, P, seats=2, plan="standard", frequency="monthly",
            start=dt.date(2025, 10, 1), months=12, actor=ADMIN,
        )  # fmt: skip
        app.accounts.add_users(self.name, FIRST)
        self.users = list(FIRST)

    def at(self, instant: dt.datetime) -> None:
        self.clock.set(instant)  # type: ignore[attr-defined]

    def email(self, n: int) -> str:
        return self.users[n % len(self.users)]

    def write(self, instant: dt.datetime, what: str, picks: list[int]) -> None:
        self.at(instant)
        app = self.app
        if what == "assign":
            done = app.assign(self.name, P, [self.email(n) for n in picks], ADMIN)
            self.log += [(instant, "seat", e) for e in done.newly_assigned]
        elif what == "unassign":
            done = app.unassign(self.name, P, [self.email(n) for n in picks], ADMIN)
            self.log += [(instant, "unseat", e) for e in done.unassigned]
        elif what == "join":
            email = f"late{len(self.users)}@example.com"
            app.accounts.add_users(self.name, [email])
            self.users.append(email)
            self.log.append((instant, "user", email))
        else:
            app.purchases.buy_seats(self.name, P, 1, ADMIN, confirm=True)
            self.log.append((instant, "buy", "1"))

    def expected(self, t: dt.datetime) -> tuple[set[str], set[str], int]:
        """(users, seated users, contracted seats) that existed at ``t``."""
        users, seated, contracted = set(FIRST), set(), 2
        for instant, what, value in self.log:
            if instant > t:
                continue
            if what == "user":
                users.add(value)
            elif what == "seat":
                seated.add(value)
            elif what == "unseat":
                seated.discard(value)
            else:
                contracted += int(value)
        return users, seated, contracted


@pytest.fixture(scope="module")
def shared_app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    db = tmp_path_factory.mktemp("as_of") / "seatgate.db"
    application = App(f"sqlite:///{db}", clock=FixedClock(SETUP))
    yield application
    application.db.dispose()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(happened=writes, reads=st.lists(instants, min_size=1, max_size=6))
def test_every_read_as_of_an_instant_sees_only_what_existed_then(
    shared_app: App, happened: list[tuple[dt.datetime, str, list[int]]], reads: list[dt.datetime]
) -> None:
    acct = Account(shared_app)
    # A test clock moves forward while it writes; the reads go anywhere, the past included.
    for instant, what, picks in sorted(happened, key=lambda w: w[0]):
        acct.write(instant, what, picks)
    for t in reads:
        users, seated, contracted = acct.expected(t)
        acct.at(t)
        listing = shared_app.seats.list(acct.name, P)
        assert {r.email for r in listing.seats} == seated
        ((_, count),) = listing.counts
        assert (count.assigned, count.contracted) == (len(seated), contracted)
        assert count.in_overage == (len(seated) > contracted)
        for email in acct.users:
            if email not in users:
                with pytest.raises(NotFound):
                    shared_app.check(acct.name, P, email, "cti", t)
                continue
            decision = shared_app.check(acct.name, P, email, "cti", t)
            assert (decision.assigned, decision.contracted) == (len(seated), contracted)
            if decision.phase != "pre_enablement":  # before enablement nothing is gated
                assert (decision.reason == "seated") == (email in seated)


# -- the listings of the kind (tester report item 5): users, commitments, tokens, tickets, invoices


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    happened=writes,
    tokens=st.lists(instants, max_size=3),
    reads=st.lists(instants, min_size=1, max_size=6),
)
def test_every_listing_as_of_an_instant_shows_only_what_existed_then(
    shared_app: App,
    happened: list[tuple[dt.datetime, str, list[int]]],
    tokens: list[dt.datetime],
    reads: list[dt.datetime],
) -> None:
    acct = Account(shared_app)
    made: list[tuple[dt.datetime, str]] = []
    steps: list[tuple[dt.datetime, str, list[int]]] = [
        *happened,
        *((t, "token", []) for t in tokens),
    ]
    for instant, what, picks in sorted(steps, key=lambda w: w[0]):
        if what == "token":
            acct.at(instant)
            made.append((instant, shared_app.tokens.create(acct.name, "check").info.id))
        else:
            acct.write(instant, what, picks)
    for t in [SETUP, *reads]:
        users, _, _ = acct.expected(t)
        acct.at(t)
        listed = shared_app.listings.users(acct.name, limit=1000).items
        assert {u["email"] for u in listed} == users
        bought = [
            c for c in shared_app.billing.commitments(acct.name) if c["action"] == "seats_buy"
        ]
        assert len(bought) == sum(1 for i, w, _ in acct.log if w == "buy" and i <= t)
        assert all(c["at"] <= t for c in shared_app.billing.commitments(acct.name))
        assert {k.id for k in shared_app.tokens.list(acct.name)} == {i for at, i in made if at <= t}


def test_the_testers_reads_as_of_march_show_nothing_of_june(sqlite_url: str) -> None:
    """Tester report item 5, as reported: users, commitments, invoices, tickets, tokens and runs
    written in June are not seen in March."""
    db = sqlite_url
    jan = "2026-01-01T00:00:00Z"
    seatgate(db, jan, "account", "create", "a", "--region", "US", "--admin", ADMIN)
    seatgate(db, jan, "contract", "create", "a", P, "--seats", "5", "--plan", "standard",
             "--frequency", "monthly", "--start", "2026-01-01", "--months", "12")  # fmt: skip
    june = "2026-06-01T00:00:00Z"
    assert seatgate(db, june, "users", "add", "a", "late@x.com")[0] == 0
    assert seatgate(db, june, "seats", "buy", "a", P, "--quantity", "1", "--yes")[0] == 0
    assert seatgate(db, june, "ticket", "open", "a", P, "--kind", "renewal_adjustment")[0] == 0
    assert seatgate(db, june, "token", "create", "a", "--role", "check")[0] == 0
    assert seatgate(db, "2026-06-30T12:00:00Z", "billing", "run", "--period", "2026-06")[0] == 0
    march = "2026-03-01T00:00:00Z"
    _, users = seatgate(db, march, "users", "list", "a")
    assert "late@x.com" not in json.dumps(users)
    _, commitments = seatgate(db, march, "commitments", "list", "a")
    assert "seats_buy" not in json.dumps(commitments)
    _, invoices = seatgate(db, march, "billing", "invoices", "a")
    assert "INV-2026-06" not in json.dumps(invoices)
    _, tokens = seatgate(db, march, "token", "list", "a")
    assert tokens in ([], {"tokens": []}) or "check" not in json.dumps(tokens)
    # ... and are seen once they exist.
    _, users = seatgate(db, "2026-07-01T00:00:00Z", "users", "list", "a")
    assert "late@x.com" in json.dumps(users)
    _, invoices = seatgate(db, "2026-07-01T00:00:00Z", "billing", "invoices", "a")
    assert "INV-2026-06" in json.dumps(invoices)
