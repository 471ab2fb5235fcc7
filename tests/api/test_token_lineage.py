"""Derived tokens (a console session is one): revoked with the token they came from, and never
made from a token that is revoked or of another account."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock
from seatgate.core.errors import BadInput


@pytest.fixture
def core(db_url: str, clock: FixedClock) -> Iterator[App]:
    app = App(db_url, clock=clock)
    app.accounts.create("acme", "US")
    app.accounts.create("globex", "US")
    yield app
    app.close()


def test_a_derived_token_lives_and_dies_with_its_parent(core: App) -> None:
    parent = core.tokens.create("acme", "admin", "ada@acme.example")
    child = core.tokens.create("acme", "admin", "ada@acme.example", parent=parent.info.id)
    grandchild = core.tokens.create("acme", "check", None, parent=child.info.id)
    other = core.tokens.create("acme", "admin", "ada@acme.example")
    assert core.tokens.authenticate(child.secret) is not None
    assert {t.id: t.parent for t in core.tokens.list("acme")}[child.info.id] == parent.info.id

    _, changed = core.tokens.revoke(parent.info.id, by="ada@acme.example")

    assert changed
    assert core.tokens.authenticate(parent.secret) is None
    assert core.tokens.authenticate(child.secret) is None
    # A token derived from a derived one is refused too (its parent is revoked), and a token with
    # no lineage is untouched.
    assert core.tokens.authenticate(grandchild.secret) is None
    assert core.tokens.authenticate(other.secret) is not None
    listed = {t.id: t for t in core.tokens.list("acme")}
    assert listed[child.info.id].revoked_at is not None
    assert listed[other.info.id].revoked_at is None


@pytest.mark.parametrize("case", ["revoked", "foreign", "unknown"])
def test_a_token_is_never_derived_from_a_dead_or_foreign_one(core: App, case: str) -> None:
    parent = core.tokens.create("globex" if case == "foreign" else "acme", "admin", None)
    if case == "revoked":
        core.tokens.revoke(parent.info.id)
    named = "tok_000000000000" if case == "unknown" else parent.info.id
    before = len(core.tokens.list("acme"))
    with pytest.raises(BadInput) as refused:
        core.tokens.create("acme", "admin", None, parent=named)
    assert named in str(refused.value) and "a live token of account 'acme'" in str(refused.value)
    assert len(core.tokens.list("acme")) == before  # nothing written
