"""Users the account already knows by email (added by an admin, or by another CRM) are linked to
the CRM's id on their first sync, not created a second time."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from seatgate.core.bootstrap import App
from seatgate.core.storage.tables import agent_directory, external_ids, integration_users
from seatgate.core.testing.memory import MemorySandbox

from .conftest import ACCOUNT

P = "memory"


def _user(app: App, email: str) -> tuple[int, str, bool, list[str]]:
    with app.db.read() as conn:
        row = conn.execute(
            sa.select(
                integration_users.c.id,
                integration_users.c.name,
                integration_users.c.active,
                integration_users.c.roles,
            ).where(integration_users.c.email == email)
        ).one()
    return row.id, row.name, row.active, row.roles


def _links(app: App, user_id: int) -> list[str]:
    with app.db.read() as conn:
        return list(
            conn.execute(
                sa.select(external_ids.c.external_id).where(external_ids.c.user_id == user_id)
            ).scalars()
        )


def test_users_known_by_email_are_linked_not_duplicated(
    installed: Callable[..., App], crm: MemorySandbox
) -> None:
    app = installed()
    app.accounts.add_users(ACCOUNT, ["USER000007@example.com", "someone@else.example"], name="Pre")
    known = _user(app, "user000007@example.com")[0]
    result = app.sync.sync(ACCOUNT, P)
    s = result.summary
    assert (s.outcome, s.pulled, s.created, s.updated, s.quarantined) == ("succeeded", 40, 39, 1, 0)
    uid, name, active, _roles = _user(app, "user000007@example.com")
    assert uid == known and name != "Pre" and active is True  # the CRM's record, same user
    assert _links(app, uid) == ["mem-0000007"]
    assert _links(app, _user(app, "someone@else.example")[0]) == []
    with app.db.read() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(integration_users)).scalar()
    assert count == 41
    # The next full pull finds the user by its link: nothing left to change.
    again = app.sync.sync(ACCOUNT, P, full=True)
    assert (again.summary.created, again.summary.updated, again.summary.deactivated) == (0, 0, 0)


def test_a_twin_taking_over_a_user_whose_record_moved_to_a_taken_email_is_its_agent(
    installed: Callable[..., App], crm: MemorySandbox
) -> None:
    """User 1's record, deactivated, moves to an email another user holds (set aside,
    ``email_taken``); a new active record with user 1's email, earlier in the pull, takes the
    user over. Its agent row and its link follow the new record: the set-aside's row, as it
    stands, had overridden them (the agent inactive, the link written inactive without roles)."""
    app = installed()
    assert app.sync.sync(ACCOUNT, P, full=True).outcome == "succeeded"
    app.accounts.add_users(ACCOUNT, ["taken@x.example"], name="Pre")
    crm.store.deactivate([1])
    assert app.sync.sync(ACCOUNT, P).outcome == "succeeded"
    (twin,) = crm.store.add(1, roles=["Agent"])
    crm.store.change([twin.number], email="user000001@example.com")
    crm.store.change([1], email="taken@x.example")  # after the twin in the pull
    result = app.sync.sync(ACCOUNT, P)
    assert result.outcome == "succeeded" and result.quarantine_reasons == {"email_taken": 1}
    uid, _name, active, roles = _user(app, "user000001@example.com")
    assert active is True and roles == ["Agent"] and _links(app, uid) == [twin.id]
    with app.db.read() as conn:
        agent = conn.execute(
            sa.select(agent_directory.c.external_id, agent_directory.c.active).where(
                agent_directory.c.user_id == uid
            )
        ).one()
        link = conn.execute(
            sa.select(external_ids.c.active, external_ids.c.roles).where(
                external_ids.c.external_id == twin.id
            )
        ).one()
    assert tuple(agent) == (twin.id, True) and tuple(link) == (True, ["Agent"])
