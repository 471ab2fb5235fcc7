"""strict version: the part of a contract's versions a server's checks must never lag.

Revision ID: core_0004
Revises: core_0003
Create Date: 2026-12-01 04:00:00

``contracts.entitlement_version`` moves with every change a decision depends on, a sync's batches
included (a full sync of 100,000 users commits hundreds). A server that refreshed its cached
snapshot before answering on each of them spent its checks' time on refreshes (issue 15: p99 over
100 ms during a sync). ``strict_version`` moves with it only for the changes a check must see at
once — seats assigned or taken back by a person, the contract, the installation, users added by
an admin — so a server answers from its snapshot while only a sync's writes are newer, and
refreshes in the background (docs/http.md, "sync lag").
"""

import sqlalchemy as sa
from alembic import op

revision = "core_0004"
down_revision = "core_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "contracts", sa.Column("strict_version", sa.Integer(), nullable=False, server_default="0")
    )


def downgrade() -> None:
    with op.batch_alter_table("contracts", schema=None) as batch_op:
        batch_op.drop_column("strict_version")
