"""web (issue 18 over HTTP): a bearer token of the ``partner`` role names the partner it acts for
(seed 002: add-on plans "will be activated in your Account by the Partner").

Revision ID: web_0001
Revises: access_0001
Create Date: 2026-11-30 10:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "web_0001"
down_revision = "access_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("partner", sa.String(length=60), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("partner")
