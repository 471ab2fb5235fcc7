"""user of account keys: a user's links, seats and ledger rows point at (account, user) with one
composite key, instead of one key to ``accounts`` and one to ``integration_users``.

Revision ID: core_0006
Revises: core_0005
Create Date: 2026-12-01 14:30:00

PostgreSQL checks a foreign key one row and key at a time: the two keys were about half of each
bulk insert of a sync (issue 12 item 9: 100,000 links, 0.56 s without keys, 2.2 s with the two,
1.6 s with the pair). The pair implies the account (the user's row points at it) and is stricter:
a row can no longer name a user of another account. ``integration_users`` gets the unique index
the pair refers to. SQLite rebuilds the tables (keeping their triggers: the seats' stamps, the
ledger's append-only guard). The sync branch's tables follow in ``sync_0003``.
"""

from alembic import op

from seatgate.core.storage.user_keys import to_pair, to_two_keys

revision = "core_0006"
down_revision = "core_0005"
branch_labels = None
depends_on = None

TABLES = ("external_ids", "seats", "seat_ledger")


def upgrade() -> None:
    op.create_index(
        "ux_integration_users_account_id", "integration_users", ["account_id", "id"], unique=True
    )
    for table in TABLES:
        to_pair(table)


def downgrade() -> None:
    for table in TABLES:
        to_two_keys(table)
    op.drop_index("ux_integration_users_account_id", table_name="integration_users")
