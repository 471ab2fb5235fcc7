"""money and seats exactly right (issue 11): an order-form contract's own charge model, idempotency
keys per account, uninstalls a reinstall withdraws or ends, and tickets Support resolves.

- ``contracts.charge_model``: a negotiated order-form plan's charge model (NULL: the catalog's).
- ``billing_seat_purchases.account_id``: an idempotency key belongs to one account (unique per
  account, no longer across accounts).
- ``billing_uninstalls``: one row per uninstall (an id of its own, no longer one per contract), with
  ``reinstalled_at``: an install after it withdrew it (before the effective date) or ended it.
- ``billing_tickets``: the uninstall a cancellation ticket is for, ``withdrawn_at`` (a reinstall
  before the effective date withdraws the ticket with the uninstall), and the renewal quantity
  Support sets on a renewal adjustment (``renewal_quantity``, ``resolved_at``, ``resolved_by``).

Revision ID: billing_b_0003
Revises: billing_0002
Create Date: 2026-12-08 09:00:00
"""

import sqlalchemy as sa
from alembic import op

from seatgate.core.storage import types

revision = "billing_b_0003"
down_revision = "billing_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contracts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("charge_model", sa.String(length=16), nullable=True))

    with op.batch_alter_table("billing_seat_purchases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("account_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE billing_seat_purchases SET account_id = (SELECT contracts.account_id FROM "
        "contracts WHERE contracts.id = billing_seat_purchases.contract_id)"
    )
    with op.batch_alter_table("billing_seat_purchases", schema=None) as batch_op:
        batch_op.alter_column("account_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_constraint(
            batch_op.f("uq_billing_seat_purchases_idempotency_key"), type_="unique"
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_billing_seat_purchases_account_id_accounts"),
            "accounts",
            ["account_id"],
            ["id"],
        )
        batch_op.create_unique_constraint(
            "uq_billing_seat_purchases_account_key", ["account_id", "idempotency_key"]
        )

    # One uninstall per row: copied aside, the table rebuilt with an id of its own (its primary
    # key was the contract), and copied back.
    _set_aside("billing_uninstalls", "contract_id, requested_at, effective, actor")
    op.create_table(
        "billing_uninstalls",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("requested_at", types.UTCDateTime(), nullable=False),
        sa.Column("effective", sa.Date(), nullable=False),
        sa.Column("actor", sa.String(length=254), nullable=False),
        sa.Column("reinstalled_at", types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["contracts.id"],
            name=op.f("fk_billing_uninstalls_contract_id_contracts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_uninstalls")),
    )
    with op.batch_alter_table("billing_uninstalls", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_billing_uninstalls_contract_id"), ["contract_id"], unique=False
        )
    _copy_back("billing_uninstalls", "contract_id, requested_at, effective, actor")

    with op.batch_alter_table("billing_tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("uninstall_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("withdrawn_at", types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("renewal_quantity", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("resolved_at", types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("resolved_by", sa.String(length=254), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_billing_tickets_uninstall_id_billing_uninstalls"),
            "billing_uninstalls",
            ["uninstall_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("billing_tickets", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_billing_tickets_uninstall_id_billing_uninstalls"), type_="foreignkey"
        )
        for column in ("resolved_by", "resolved_at", "renewal_quantity", "withdrawn_at"):
            batch_op.drop_column(column)
        batch_op.drop_column("uninstall_id")
    op.execute("DELETE FROM billing_uninstalls WHERE reinstalled_at IS NOT NULL")
    _set_aside("billing_uninstalls", "contract_id, requested_at, effective, actor")
    op.create_table(
        "billing_uninstalls",
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("requested_at", types.UTCDateTime(), nullable=False),
        sa.Column("effective", sa.Date(), nullable=False),
        sa.Column("actor", sa.String(length=254), nullable=False),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["contracts.id"],
            name=op.f("fk_billing_uninstalls_contract_id_contracts"),
        ),
        sa.PrimaryKeyConstraint("contract_id", name=op.f("pk_billing_uninstalls")),
    )
    _copy_back("billing_uninstalls", "contract_id, requested_at, effective, actor")
    with op.batch_alter_table("billing_seat_purchases", schema=None) as batch_op:
        batch_op.drop_constraint("uq_billing_seat_purchases_account_key", type_="unique")
        batch_op.drop_constraint(
            batch_op.f("fk_billing_seat_purchases_account_id_accounts"), type_="foreignkey"
        )
        batch_op.drop_column("account_id")
        batch_op.create_unique_constraint(
            batch_op.f("uq_billing_seat_purchases_idempotency_key"), ["idempotency_key"]
        )
    # Not a batch: rebuilding ``contracts`` would break the keys that point at it (SQLite 3.35+
    # drops a column in place).
    op.drop_column("contracts", "charge_model")


def _set_aside(table: str, columns: str) -> None:
    """Copy ``table``'s rows into a plain table of their own (no constraints: no name clashes on
    PostgreSQL), then drop it."""
    op.execute(f"CREATE TABLE {table}_aside AS SELECT {columns} FROM {table}")
    op.drop_table(table)


def _copy_back(table: str, columns: str) -> None:
    op.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {table}_aside")
    op.drop_table(f"{table}_aside")
