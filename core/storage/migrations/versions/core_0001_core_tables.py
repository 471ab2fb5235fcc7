"""core tables: accounts, permissions, users, contracts, seats, the seat ledger, the audit log,
installations; the ledger and the audit log refuse UPDATE and DELETE.

Revision ID: core_0001
Revises:
Create Date: 2026-11-22 04:21:55.685629
"""

import sqlalchemy as sa
from alembic import op

from seatgate.core.storage import types

revision = "core_0001"
down_revision = None
branch_labels = ("core",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("region", sa.String(length=2), nullable=False),
        sa.Column("created_at", types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("name", name=op.f("uq_accounts_name")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", types.UTCDateTime(), nullable=False),
        sa.Column("account", sa.String(length=100), nullable=True),
        sa.Column("actor", sa.String(length=254), nullable=True),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("outcome", sa.String(length=30), nullable=False),
        sa.Column("detail", types.JSONText(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_account_at", ["account", "at"], unique=False)

    op.create_table(
        "contracts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("product", sa.String(length=40), nullable=False),
        sa.Column("plan", sa.String(length=60), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", types.Money(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("frequency", sa.String(length=12), nullable=False),
        sa.Column("term_start", sa.Date(), nullable=False),
        sa.Column("term_months", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("grandfathered_at", types.UTCDateTime(), nullable=True),
        sa.Column("entitlement_version", sa.Integer(), nullable=False),
        sa.Column("created_at", types.UTCDateTime(), nullable=False),
        sa.CheckConstraint("quantity >= 0", name=op.f("ck_contracts_quantity_not_negative")),
        sa.CheckConstraint("term_months > 0", name=op.f("ck_contracts_term_positive")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_contracts_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contracts")),
        sa.UniqueConstraint("account_id", "product", name="uq_contracts_account_product"),
    )
    op.create_table(
        "installations",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("product", sa.String(length=40), nullable=False),
        sa.Column("adapter", sa.String(length=60), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("settings", types.JSONText(), nullable=False),
        sa.Column("installed_at", types.UTCDateTime(), nullable=False),
        sa.Column("installed_by", sa.String(length=254), nullable=False),
        sa.Column("uninstall_effective", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_installations_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", "product", name=op.f("pk_installations")),
    )
    op.create_table(
        "integration_users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("roles", types.JSONText(), nullable=False),
        sa.Column("created_at", types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_integration_users_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integration_users")),
        sa.UniqueConstraint("account_id", "email", name="uq_integration_users_account_email"),
    )
    op.create_table(
        "permissions",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("permission", sa.String(length=16), nullable=False),
        sa.Column("granted_at", types.UTCDateTime(), nullable=False),
        sa.Column("granted_by", sa.String(length=254), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_permissions_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", "email", "permission", name=op.f("pk_permissions")),
    )
    op.create_table(
        "external_ids",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("product", sa.String(length=40), nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_external_ids_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["integration_users.id"],
            name=op.f("fk_external_ids_user_id_integration_users"),
        ),
        sa.PrimaryKeyConstraint(
            "account_id", "product", "external_id", name=op.f("pk_external_ids")
        ),
    )
    with op.batch_alter_table("external_ids", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_external_ids_user_id"), ["user_id"], unique=False)

    op.create_table(
        "seat_ledger",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("product", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=254), nullable=False),
        sa.Column("at", types.UTCDateTime(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("assigned_after", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_seat_ledger_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["integration_users.id"],
            name=op.f("fk_seat_ledger_user_id_integration_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seat_ledger")),
    )
    with op.batch_alter_table("seat_ledger", schema=None) as batch_op:
        batch_op.create_index(
            "ix_seat_ledger_account_product_at", ["account_id", "product", "at"], unique=False
        )

    op.create_table(
        "seats",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("product", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("assigned_at", types.UTCDateTime(), nullable=False),
        sa.Column("grandfathered", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_seats_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["integration_users.id"], name=op.f("fk_seats_user_id_integration_users")
        ),
        sa.PrimaryKeyConstraint("account_id", "product", "user_id", name=op.f("pk_seats")),
    )

    _append_only("seat_ledger")
    _append_only("audit_log")


def downgrade() -> None:
    op.drop_table("seats")
    with op.batch_alter_table("seat_ledger", schema=None) as batch_op:
        batch_op.drop_index("ix_seat_ledger_account_product_at")

    op.drop_table("seat_ledger")
    with op.batch_alter_table("external_ids", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_external_ids_user_id"))

    op.drop_table("external_ids")
    op.drop_table("permissions")
    op.drop_table("integration_users")
    op.drop_table("installations")
    op.drop_table("contracts")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_account_at")

    op.drop_table("audit_log")
    op.drop_table("accounts")


def _append_only(table: str) -> None:
    """Refuse UPDATE and DELETE: the ledger and the audit log are the record of what happened."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION seatgate_append_only() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$ LANGUAGE plpgsql"
        )
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION seatgate_append_only()"
        )
