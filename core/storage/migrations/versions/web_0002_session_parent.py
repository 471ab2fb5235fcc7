"""web: a console session's token names the admin token it was signed in with, so that revoking
that token ends its sessions (they had outlived it).

Revision ID: web_0002
Revises: web_0001
Create Date: 2026-11-30 14:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "web_0002"
down_revision = "web_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.String(length=20), nullable=True))
        batch_op.create_index("ix_api_tokens_parent_id", ["parent_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_api_tokens_parent_id")
        batch_op.drop_column("parent_id")
