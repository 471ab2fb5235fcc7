"""billing commitments remember the event they were recorded from (one commitment per event).

Revision ID: billing_0002
Revises: billing_0001
Create Date: 2026-11-30 08:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "billing_0002"
down_revision = "billing_0001"
branch_labels = None
depends_on = "core_0002"


def upgrade() -> None:
    with op.batch_alter_table("billing_commitments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("event_id", sa.String(length=32), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_billing_commitments_event_id"), ["event_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("billing_commitments", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_billing_commitments_event_id"), type_="unique")
        batch_op.drop_column("event_id")
