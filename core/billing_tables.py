"""Billing's tables (Alembic branch ``billing``). Invoices and their lines are append-only: an
issued invoice never changes; a correction is a new document (triggers in the migration)."""

from __future__ import annotations

import sqlalchemy as sa

from .storage.tables import metadata
from .storage.types import JSONText, Money, UTCDateTime

invoices = sa.Table(
    "billing_invoices",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("number", sa.String(60), nullable=False, unique=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("period", sa.String(7), nullable=False),  # YYYY-MM: the month it bills
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("total", Money, nullable=False),
    sa.Column("issued_at", UTCDateTime, nullable=False),
    sa.Index("ix_billing_invoices_account_period", "account_id", "period"),
)

invoice_lines = sa.Table(
    "billing_invoice_lines",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("invoice_id", sa.ForeignKey("billing_invoices.id"), nullable=False, index=True),
    sa.Column("contract_id", sa.ForeignKey("contracts.id"), nullable=False),
    sa.Column("product", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),  # base | additional_seats | ... | proration
    # What the line charges for (a credit's kind is ``proration``, its charge_kind what it credits).
    sa.Column("charge_kind", sa.String(20), nullable=False),
    sa.Column("ref", sa.Integer, nullable=False),  # the purchase / plan change it comes from, or 0
    sa.Column("slot_lo", sa.Integer, nullable=False),  # seats slot_lo..slot_hi of that charge
    sa.Column("slot_hi", sa.Integer, nullable=False),
    sa.Column("sign", sa.Integer, nullable=False),  # 1 charge, -1 credit
    sa.Column("description", sa.String(300), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("unit_price", Money, nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("start", sa.Date, nullable=False),
    sa.Column("end", sa.Date, nullable=False),
    sa.Column("period_start", sa.Date, nullable=False),  # the contract billing period it bills
)

# One row per contract billing period invoiced: the idempotency of billing runs.
billed_periods = sa.Table(
    "billing_periods_billed",
    metadata,
    sa.Column("contract_id", sa.ForeignKey("contracts.id"), primary_key=True),
    sa.Column("period_start", sa.Date, primary_key=True),
    sa.Column("period_end", sa.Date, nullable=False),
    sa.Column("invoice_id", sa.ForeignKey("billing_invoices.id"), nullable=False),
)

# Seed 002 "Purchasing Authority": every install, plan change or user addition is a commitment.
commitments = sa.Table(
    "billing_commitments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("product", sa.String(40), nullable=False),
    sa.Column("actor", sa.String(254), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    # install | add_users | plan_change | seats_buy | uninstall
    sa.Column("action", sa.String(30), nullable=False),
    sa.Column("detail", JSONText, nullable=False, default=dict),
    sa.Column("price_shown", Money),  # the indicative price the actor saw
    sa.Column("currency", sa.String(3)),
)

plan_changes = sa.Table(
    "billing_plan_changes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("contract_id", sa.ForeignKey("contracts.id"), nullable=False, index=True),
    sa.Column("plan", sa.String(60), nullable=False),
    sa.Column("charge_model", sa.String(16), nullable=False),
    sa.Column("unit_price", Money, nullable=False),  # the then-listed price
    sa.Column("effective", sa.Date, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(254), nullable=False),
)

purchases = sa.Table(
    "billing_seat_purchases",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("idempotency_key", sa.String(100), nullable=False, unique=True),
    sa.Column("contract_id", sa.ForeignKey("contracts.id"), nullable=False, index=True),
    sa.Column("request", JSONText, nullable=False),  # the arguments: a reused key must match
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("unit_price", Money, nullable=False),
    sa.Column("effective", sa.Date, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(254), nullable=False),
    sa.Column("result", JSONText, nullable=False),  # what the first call answered
)

uninstalls = sa.Table(
    "billing_uninstalls",
    metadata,
    sa.Column("contract_id", sa.ForeignKey("contracts.id"), primary_key=True),
    sa.Column("requested_at", UTCDateTime, nullable=False),
    sa.Column("effective", sa.Date, nullable=False),
    sa.Column("actor", sa.String(254), nullable=False),
)

tickets = sa.Table(
    "billing_tickets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("contract_id", sa.ForeignKey("contracts.id"), nullable=False, index=True),
    sa.Column("kind", sa.String(30), nullable=False),  # billing_cancellation | renewal_adjustment
    sa.Column("opened_at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(254)),
)

APPEND_ONLY = ("billing_invoices", "billing_invoice_lines")
