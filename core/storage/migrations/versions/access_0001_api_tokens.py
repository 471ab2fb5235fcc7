"""access: the HTTP API's bearer tokens, and (PostgreSQL) change notifications for the caches of
every server process.

Revision ID: access_0001
Revises:
Create Date: 2026-11-30 07:30:00

On PostgreSQL, triggers ``NOTIFY seatgate_changes`` when a contract row changes (its
``entitlement_version`` is bumped by every seat, user, contract or installation change a decision
depends on: payload ``e:<account name>``) and when a token is made or revoked (payload ``t``).
NOTIFY is transactional: it is delivered when the change commits, never for a rollback. SQLite has
no such channel; servers on SQLite re-read the version per request instead.
"""

import sqlalchemy as sa
from alembic import op

from seatgate.core.storage import types

revision = "access_0001"
down_revision = None
branch_labels = ("access",)
depends_on = "core_0001"

CHANNEL = "seatgate_changes"


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(length=20), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=254), nullable=True),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", types.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=254), nullable=True),
        sa.Column("revoked_at", types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_api_tokens_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("digest", name=op.f("uq_api_tokens_digest")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_account_id"), ["account_id"], unique=False)
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"""
        CREATE FUNCTION seatgate_notify_entitlements() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', 'e:' || a.name)
            FROM accounts a WHERE a.id = COALESCE(NEW.account_id, OLD.account_id);
            RETURN NULL;
        END $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        "CREATE TRIGGER contracts_notify AFTER INSERT OR UPDATE OR DELETE ON contracts "
        "FOR EACH ROW EXECUTE FUNCTION seatgate_notify_entitlements()"
    )
    op.execute(
        f"""
        CREATE FUNCTION seatgate_notify_tokens() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', 't');
            RETURN NULL;
        END $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        "CREATE TRIGGER api_tokens_notify AFTER INSERT OR UPDATE OR DELETE ON api_tokens "
        "FOR EACH ROW EXECUTE FUNCTION seatgate_notify_tokens()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS api_tokens_notify ON api_tokens")
        op.execute("DROP FUNCTION IF EXISTS seatgate_notify_tokens()")
        op.execute("DROP TRIGGER IF EXISTS contracts_notify ON contracts")
        op.execute("DROP FUNCTION IF EXISTS seatgate_notify_entitlements()")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_account_id"))
    op.drop_table("api_tokens")
