"""fleet (issue 17): the runs enqueued for Celery workers and the duplicate deliveries skipped.

Revision ID: fleet_0001
Revises:
Create Date: 2026-11-30 10:40:00
"""

import sqlalchemy as sa
from alembic import op

from seatgate.core.storage import types

revision = "fleet_0001"
down_revision = None
branch_labels = ("fleet",)
depends_on = "sync_0001"


def upgrade() -> None:
    op.create_table(
        "fleet_tasks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("product", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("outcome", sa.String(length=12), nullable=False),
        sa.Column("task_id", sa.String(length=64), nullable=False),
        sa.Column("enqueued_at", types.UTCDateTime(), nullable=False),
        sa.Column("started_at", types.UTCDateTime(), nullable=True),
        sa.Column("finished_at", types.UTCDateTime(), nullable=True),
        sa.Column("worker", sa.String(length=200), nullable=False),
        sa.Column("deliveries", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("pulled", sa.Integer(), nullable=False),
        sa.Column("message", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_fleet_tasks_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fleet_tasks")),
    )
    op.create_index(
        "ix_fleet_tasks_state", "fleet_tasks", ["state", "account_id", "product"], unique=False
    )
    op.create_table(
        "fleet_skips",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("task", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("product", sa.String(length=40), nullable=False),
        sa.Column("at", types.UTCDateTime(), nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_fleet_skips_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fleet_skips")),
    )
    op.create_index(op.f("ix_fleet_skips_task"), "fleet_skips", ["task"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_fleet_skips_task"), table_name="fleet_skips")
    op.drop_table("fleet_skips")
    op.drop_index("ix_fleet_tasks_state", table_name="fleet_tasks")
    op.drop_table("fleet_tasks")
