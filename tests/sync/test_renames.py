"""A pull that moves many users to other emails (a directory's domain move, trades between
users) writes the renames in transactions of at most 1,000, ordered so that the account's emails
stay unique between them (``rename_batches``): one transaction for all of them had held SQLite's
write lock 748 ms for 25,000."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from seatgate.core.bootstrap import App
from seatgate.core.storage.repositories.sync import SqlSyncStore
from seatgate.core.storage.tables import integration_users
from seatgate.core.testing.memory import MemorySandbox

from .conftest import ACCOUNT

USERS = 2500


@pytest.fixture
def crm() -> Iterator[MemorySandbox]:
    with MemorySandbox(users=USERS) as sandbox:
        yield sandbox


def test_a_domain_move_with_trades_renames_in_batches_and_keeps_emails_unique(
    installed: Callable[..., App], crm: MemorySandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = installed(seats=USERS, page_size=500)
    assert app.sync.sync(ACCOUNT, "memory", full=True).outcome == "succeeded"
    users = [(u.number, u.email) for u in crm.store.users]
    (one, first), (two, second) = users[:2]
    for number, email in users[2:]:
        crm.store.change([number], email=email.replace("@", "@moved."))
    # The first two trade emails, in the same pull.
    crm.store.change([one], email=second)
    crm.store.change([two], email=first)
    sizes: list[int] = []
    real = SqlSyncStore.rename_users

    def counted(self: SqlSyncStore, updates: Any, at: Any) -> None:
        sizes.append(len(updates))
        real(self, updates, at)

    monkeypatch.setattr(SqlSyncStore, "rename_users", counted)
    result = app.sync.sync(ACCOUNT, "memory", full=True)
    assert result.outcome == "succeeded" and result.summary.quarantined == 0
    assert sum(sizes) == USERS and max(sizes) <= 1000 and len(sizes) == 3
    with app.db.read() as conn:
        emails = set(conn.execute(sa.select(integration_users.c.email)).scalars())
    assert emails == {u.email for u in crm.store.users}  # the trade too; no placeholder left
