"""orders (issue 18): install links and their mail, add-on plans the partner activates, and
outbound webhooks (endpoints, deliveries, attempts).

Revision ID: orders_0001
Revises:
Create Date: 2026-11-30 09:00:00
"""

import sqlalchemy as sa
from alembic import op

from seatgate.core.storage import types

revision = "orders_0001"
down_revision = None
branch_labels = ("orders",)
depends_on = "core_0001"


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("events", types.JSONText(), nullable=False),
        sa.Column("secret_sealed", sa.String(length=500), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", types.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=254), nullable=True),
        sa.Column("removed_at", types.UTCDateTime(), nullable=True),
        sa.Column("disabled_at", types.UTCDateTime(), nullable=True),
        sa.Column("disabled_reason", sa.String(length=300), nullable=False),
        sa.Column("failing_since", types.UTCDateTime(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_webhook_endpoints_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_endpoints_account_id"), ["account_id"], unique=False
        )

    op.create_table(
        "billing_addons",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("plan", sa.String(length=60), nullable=False),
        sa.Column("charge_model", sa.String(length=16), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", types.Money(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("effective", sa.Date(), nullable=False),
        sa.Column("at", types.UTCDateTime(), nullable=False),
        sa.Column("partner", sa.String(length=60), nullable=False),
        sa.Column("actor", sa.String(length=254), nullable=False),
        sa.Column("ends", sa.Date(), nullable=True),
        sa.Column("deactivated_at", types.UTCDateTime(), nullable=True),
        sa.Column("deactivated_by", sa.String(length=254), nullable=True),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_billing_addons_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["contract_id"], ["contracts.id"], name=op.f("fk_billing_addons_contract_id_contracts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_addons")),
    )
    with op.batch_alter_table("billing_addons", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_billing_addons_contract_id"), ["contract_id"], unique=False
        )

    op.create_table(
        "install_links",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("product", sa.String(length=40), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("created_at", types.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=254), nullable=True),
        sa.Column("expires_at", types.UTCDateTime(), nullable=False),
        sa.Column("used_at", types.UTCDateTime(), nullable=True),
        sa.Column("used_by", sa.String(length=254), nullable=True),
        sa.Column("revoked_at", types.UTCDateTime(), nullable=True),
        sa.Column("revoked_by", sa.String(length=254), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_install_links_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["contract_id"], ["contracts.id"], name=op.f("fk_install_links_contract_id_contracts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_install_links")),
    )
    with op.batch_alter_table("install_links", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_install_links_account_id"), ["account_id"], unique=False
        )

    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("endpoint_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=32), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("payload", types.JSONText(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", types.UTCDateTime(), nullable=False),
        sa.Column("next_attempt_at", types.UTCDateTime(), nullable=False),
        sa.Column("retry_until", types.UTCDateTime(), nullable=True),
        sa.Column("leased_until", types.UTCDateTime(), nullable=True),
        sa.Column("last_attempt_at", types.UTCDateTime(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=False),
        sa.Column("delivered_at", types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_deliveries_endpoint_event"),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_webhook_deliveries_status_next", ["status", "next_attempt_at"], unique=False
        )

    op.create_table(
        "mail_outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("link_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", types.UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("sent_at", types.UTCDateTime(), nullable=True),
        sa.Column("error", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["link_id"], ["install_links.id"], name=op.f("fk_mail_outbox_link_id_install_links")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_outbox")),
    )
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mail_outbox_link_id"), ["link_id"], unique=False)

    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("at", types.UTCDateTime(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=300), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["webhook_deliveries.id"],
            name=op.f("fk_webhook_attempts_delivery_id_webhook_deliveries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
    )
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_attempts_delivery_id"), ["delivery_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_attempts_delivery_id"))

    op.drop_table("webhook_attempts")
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mail_outbox_link_id"))

    op.drop_table("mail_outbox")
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_deliveries_status_next")

    op.drop_table("webhook_deliveries")
    with op.batch_alter_table("install_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_install_links_account_id"))

    op.drop_table("install_links")
    with op.batch_alter_table("billing_addons", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billing_addons_contract_id"))

    op.drop_table("billing_addons")
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_endpoints_account_id"))

    op.drop_table("webhook_endpoints")
