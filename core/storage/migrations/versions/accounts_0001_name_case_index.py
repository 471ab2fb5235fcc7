"""accounts: account names unique whatever their case in the database too — a unique index on
lower(name), so two concurrent creates of "Acme" and "acme" cannot both commit (the repository's
check alone reads the table before either insert is visible).

A database that already holds two names differing only in case (made before that check existed)
is refused with the names, before anything changes: rename one, then upgrade.

Revision ID: accounts_0001
Revises: core_0002
Create Date: 2026-11-30 14:20:00
"""

import sqlalchemy as sa
from alembic import op

from seatgate.core.errors import DatabaseUnusable

revision = "accounts_0001"
down_revision = "core_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    twins = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT lower(name) FROM accounts GROUP BY lower(name) HAVING count(*) > 1"
                " ORDER BY 1"
            )
        )
        .scalars()
        .all()
    )
    if twins:
        raise DatabaseUnusable(
            "accounts whose names differ only in case: "
            + ", ".join(twins[:5])
            + ("..." if len(twins) > 5 else "")
            + "; rename all but one of each, then upgrade again"
        )
    op.create_index("ux_accounts_name_lower", "accounts", [sa.text("lower(name)")], unique=True)


def downgrade() -> None:
    op.drop_index("ux_accounts_name_lower", table_name="accounts")
