"""insert stamp when: SQLite's stamp of a new user is skipped when the insert wrote it already.

Revision ID: core_0005
Revises: core_0004
Create Date: 2026-12-01 06:30:00

``integration_users_stamp_insert`` (core_0003) updated every new row after its insert: a second
write of the row and of its ``(account_id, change_seq)`` index entry, which made a sync's bulk
insert of users cost twice what it would (issue 12 item 8: 2.2 s of 100,000 inserts, 1.2 s
without it). The trigger now runs only when the row does not hold the stamp already, so an
insert that writes ``change_seq`` itself (the sync's, in the stamp's own transaction) is written
once, and every other insert is stamped as before: the row ends with the same value either way.
PostgreSQL is unchanged (its stamp is the column's default).
"""

from alembic import op

revision = "core_0005"
down_revision = "core_0004"
branch_labels = None
depends_on = None

_STAMP = (
    "(SELECT coalesce(sum(entitlement_version), 0) FROM contracts "
    "WHERE account_id = NEW.account_id)"
)
_BODY = f"BEGIN UPDATE integration_users SET change_seq = {_STAMP} WHERE id = NEW.id; END"


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("DROP TRIGGER IF EXISTS integration_users_stamp_insert")
    op.execute(
        "CREATE TRIGGER integration_users_stamp_insert AFTER INSERT ON integration_users "
        f"WHEN NEW.change_seq IS NOT {_STAMP} {_BODY}"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("DROP TRIGGER IF EXISTS integration_users_stamp_insert")
    op.execute(
        f"CREATE TRIGGER integration_users_stamp_insert AFTER INSERT ON integration_users {_BODY}"
    )
