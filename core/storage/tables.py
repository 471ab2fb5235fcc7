"""The core's tables. Other concerns (billing, sync) declare theirs in their own modules on the
same ``metadata`` and own an Alembic branch of their own (see migrations/)."""

from __future__ import annotations

import sqlalchemy as sa

from .types import JSONText, Money, UTCDateTime

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("region", sa.String(2), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# Seed 002 "Purchasing Authority": who holds the Install / Manage permission in an account.
permissions = sa.Table(
    "permissions",
    metadata,
    sa.Column("account_id", sa.ForeignKey("accounts.id"), primary_key=True),
    sa.Column("email", sa.String(254), primary_key=True),
    sa.Column("permission", sa.String(16), primary_key=True),
    sa.Column("granted_at", UTCDateTime, nullable=False),
    sa.Column("granted_by", sa.String(254)),
)

integration_users = sa.Table(
    "integration_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("email", sa.String(254), nullable=False),  # lower-cased: unique case-insensitively
    sa.Column("name", sa.String(200), nullable=False, default=""),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("roles", JSONText, nullable=False, default=list),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("account_id", "email", name="uq_integration_users_account_email"),
)

# A user is linked to the id each CRM gives it, per connector (product).
external_ids = sa.Table(
    "external_ids",
    metadata,
    sa.Column("account_id", sa.ForeignKey("accounts.id"), primary_key=True),
    sa.Column("product", sa.String(40), primary_key=True),
    sa.Column("external_id", sa.String(100), primary_key=True),
    sa.Column("user_id", sa.ForeignKey("integration_users.id"), nullable=False, index=True),
)

contracts = sa.Table(
    "contracts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("product", sa.String(40), nullable=False),
    sa.Column("plan", sa.String(60), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("unit_price", Money, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("frequency", sa.String(12), nullable=False),
    sa.Column("term_start", sa.Date, nullable=False),
    sa.Column("term_months", sa.Integer, nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    # Set once, by the enablement step; seats held since then above capacity are grandfathered.
    sa.Column("grandfathered_at", UTCDateTime),
    # Bumped by every change an entitlement decision depends on (seats, the contract, the adapter
    # being enabled): in-process entitlement caches compare it to know they are still fresh.
    sa.Column("entitlement_version", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("account_id", "product", name="uq_contracts_account_product"),
    sa.CheckConstraint("quantity >= 0", name="quantity_not_negative"),
    sa.CheckConstraint("term_months > 0", name="term_positive"),
)

seats = sa.Table(
    "seats",
    metadata,
    sa.Column("account_id", sa.ForeignKey("accounts.id"), primary_key=True),
    sa.Column("product", sa.String(40), primary_key=True),
    sa.Column("user_id", sa.ForeignKey("integration_users.id"), primary_key=True),
    sa.Column("assigned_at", UTCDateTime, nullable=False),
    sa.Column("grandfathered", sa.Boolean, nullable=False, default=False),
)

# Append-only (triggers in the migration refuse UPDATE and DELETE): every seat change, who and why.
seat_ledger = sa.Table(
    "seat_ledger",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("product", sa.String(40), nullable=False),
    sa.Column("user_id", sa.ForeignKey("integration_users.id"), nullable=False),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),  # assign | unassign | grandfather
    sa.Column("actor", sa.String(254), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("reason", sa.String(200), nullable=False, default=""),
    sa.Column("assigned_after", sa.Integer, nullable=False),  # seats held right after this change
    sa.Index("ix_seat_ledger_account_product_at", "account_id", "product", "at"),
)

# Append-only: admin actions and denied checks.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("account", sa.String(100)),
    sa.Column("actor", sa.String(254)),
    sa.Column("action", sa.String(60), nullable=False),
    sa.Column("outcome", sa.String(30), nullable=False),
    sa.Column("detail", JSONText, nullable=False, default=dict),
    sa.Index("ix_audit_log_account_at", "account", "at"),
)

# An adapter installed on an account for one product (its connector). Settings hold ${ENV}
# references or encrypted values only, never a secret in clear.
installations = sa.Table(
    "installations",
    metadata,
    sa.Column("account_id", sa.ForeignKey("accounts.id"), primary_key=True),
    sa.Column("product", sa.String(40), primary_key=True),
    sa.Column("adapter", sa.String(60), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("settings", JSONText, nullable=False, default=dict),
    sa.Column("installed_at", UTCDateTime, nullable=False),
    sa.Column("installed_by", sa.String(254), nullable=False),
    sa.Column("uninstall_effective", sa.Date),
)

APPEND_ONLY = ("seat_ledger", "audit_log")
