"""sync tables: per-connector sync settings, cursors, runs, quarantine, auto-install waiting list,
and the platform's agent directory.

Revision ID: sync_0001
Revises:
Create Date: 2026-11-22 04:30:27.443589
"""

import sqlalchemy as sa
from alembic import op

from seatgate.core.storage import types

revision = "sync_0001"
down_revision = None
branch_labels = ("sync",)
depends_on = "core_0001"


def upgrade() -> None:
    op.create_table(
        "sync_connectors",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("product", sa.String(length=40), nullable=False),
        sa.Column("activated_roles", types.JSONText(), nullable=False),
        sa.Column("interval_minutes", sa.Integer(), nullable=False),
        sa.Column("full_every", sa.Integer(), nullable=False),
        sa.Column("guard_share", sa.Float(), nullable=False),
        sa.Column("guard_min", sa.Integer(), nullable=False),
        sa.Column("uninstalled_at", types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_sync_connectors_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", "product", name=op.f("pk_sync_connectors")),
    )
    op.create_table(
        "sync_cursors",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("product", sa.String(length=40), nullable=False),
        sa.Column("cursor", types.UTCDateTime(), nullable=True),
        sa.Column("runs_since_full", sa.Integer(), nullable=False),
        sa.Column("last_full_at", types.UTCDateTime(), nullable=True),
        sa.Column("updated_at", types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_sync_cursors_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", "product", name=op.f("pk_sync_cursors")),
    )
    op.create_table(
        "sync_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("product", sa.String(length=40), nullable=False),
        sa.Column("started_at", types.UTCDateTime(), nullable=False),
        sa.Column("outcome", sa.String(length=12), nullable=False),
        sa.Column("full", sa.Boolean(), nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("pulled", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("deactivated", sa.Integer(), nullable=False),
        sa.Column("quarantined", sa.Integer(), nullable=False),
        sa.Column("seated", sa.Integer(), nullable=False),
        sa.Column("waiting", sa.Integer(), nullable=False),
        sa.Column("gated", sa.Integer(), nullable=False),
        sa.Column("agents_synced", sa.Integer(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("message", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_sync_runs_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_runs")),
    )
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sync_runs_account_product_started",
            ["account_id", "product", "started_at"],
            unique=False,
        )

    op.create_table(
        "agent_directory",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("product", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", types.UTCDateTime(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_agent_directory_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["integration_users.id"],
            name=op.f("fk_agent_directory_user_id_integration_users"),
        ),
        sa.PrimaryKeyConstraint(
            "account_id", "product", "user_id", name=op.f("pk_agent_directory")
        ),
    )
    with op.batch_alter_table("agent_directory", schema=None) as batch_op:
        batch_op.create_index("ix_agent_directory_run", ["run_id"], unique=False)

    op.create_table(
        "auto_install_waiting",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("product", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("since", types.UTCDateTime(), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_auto_install_waiting_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["integration_users.id"],
            name=op.f("fk_auto_install_waiting_user_id_integration_users"),
        ),
        sa.PrimaryKeyConstraint(
            "account_id", "product", "user_id", name=op.f("pk_auto_install_waiting")
        ),
    )
    op.create_table(
        "sync_quarantine",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("product", sa.String(length=40), nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("at", types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_sync_quarantine_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["sync_runs.id"], name=op.f("fk_sync_quarantine_run_id_sync_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_quarantine")),
    )
    with op.batch_alter_table("sync_quarantine", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sync_quarantine_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sync_quarantine", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_quarantine_run_id"))

    op.drop_table("sync_quarantine")
    op.drop_table("auto_install_waiting")
    with op.batch_alter_table("agent_directory", schema=None) as batch_op:
        batch_op.drop_index("ix_agent_directory_run")

    op.drop_table("agent_directory")
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_runs_account_product_started")

    op.drop_table("sync_runs")
    op.drop_table("sync_cursors")
    op.drop_table("sync_connectors")
