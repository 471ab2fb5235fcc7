"""sync: each CRM record's own state on its link (active, roles: the duplicate rule and the
per-product role gain of issue 12), and the lease of a running run (issue 13 item 10).

Revision ID: sync_0002
Revises: sync_0001
Create Date: 2026-11-30 10:50:00
"""

import sqlalchemy as sa
from alembic import op

from seatgate.core.storage import types

revision = "sync_0002"
down_revision = "sync_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("external_ids") as batch:
        batch.add_column(
            sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.add_column(sa.Column("roles", types.JSONText(), nullable=False, server_default="[]"))
    # A link's state starts as its user's: without it every linked user holding an activated role
    # would look like gaining it at the next run, and be seated again.
    op.execute(
        "UPDATE external_ids SET "
        "active = (SELECT integration_users.active FROM integration_users "
        "WHERE integration_users.id = external_ids.user_id), "
        "roles = (SELECT integration_users.roles FROM integration_users "
        "WHERE integration_users.id = external_ids.user_id)"
    )
    with op.batch_alter_table("sync_runs") as batch:
        batch.add_column(sa.Column("owner", sa.String(length=120), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", types.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", types.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sync_runs") as batch:
        batch.drop_column("lease_expires_at")
        batch.drop_column("heartbeat_at")
        batch.drop_column("owner")
    with op.batch_alter_table("external_ids") as batch:
        batch.drop_column("roles")
        batch.drop_column("active")
