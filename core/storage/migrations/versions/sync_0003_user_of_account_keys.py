"""user of account keys: the waiting list's and the agent directory's rows point at (account,
user) with one composite key (see ``core_0006``, which adds the index it refers to).

Revision ID: sync_0003
Revises: sync_0002
Create Date: 2026-12-01 14:30:00
"""

from seatgate.core.storage.user_keys import to_pair, to_two_keys

revision = "sync_0003"
down_revision = "sync_0002"
branch_labels = None
depends_on = "core_0006"

TABLES = ("auto_install_waiting", "agent_directory")


def upgrade() -> None:
    for table in TABLES:
        to_pair(table)


def downgrade() -> None:
    for table in TABLES:
        to_two_keys(table)
