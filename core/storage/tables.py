"""Every table of seatgate, on one ``metadata``: the core's, billing's and the sync engine's. Each
concern keeps an Alembic branch of its own (``core``, ``billing``, ``sync``: see migrations/); the
migration drift test compares this module with what the migrations build."""

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
# Unique whatever their case, in the database too (accounts_0001): two concurrent creates of
# "Acme" and "acme" both pass the repository's check; the index refuses the second insert.
# SQLite's reflection skips an index on an expression: a batch migration that rebuilds
# `accounts` on SQLite must create this index again.
sa.Index("ux_accounts_name_lower", sa.func.lower(accounts.c.name), unique=True)

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
    # Stamped by the database (migration core_0003) whenever the user is added, its email or active
    # flag changes, or a seat of it is assigned or removed, whatever the path: an entitlement
    # snapshot re-reads only the users stamped since it was read. PostgreSQL: the writing
    # transaction's id; SQLite: the sum of the account's contracts' entitlement versions.
    sa.Column("change_seq", sa.BigInteger, nullable=False, server_default="0"),
    sa.UniqueConstraint("account_id", "email", name="uq_integration_users_account_email"),
    sa.Index("ix_integration_users_account_change", "account_id", "change_seq"),
    # The key the rows of a user point at (core_0006): (account, user), so that each of them is
    # checked once, against the user of that very account (see _user_of_account).
    sa.Index("ux_integration_users_account_id", "account_id", "id", unique=True),
)


def _user_of_account() -> sa.ForeignKeyConstraint:
    """The key from a row of a user's (link, seat, ledger, waiting, directory) to that user *of
    that account*: one composite key instead of one to ``accounts`` and one to the user, which
    PostgreSQL checked one row and key at a time (issue 12 item 9: two checks were about half of
    a bulk insert). The account exists because the user's row points at it; the pair is stricter
    than the two keys were (a user of another account is refused)."""
    return sa.ForeignKeyConstraint(
        ["account_id", "user_id"], ["integration_users.account_id", "integration_users.id"]
    )


# A user is linked to the id each CRM gives it, per connector (product).
external_ids = sa.Table(
    "external_ids",
    metadata,
    sa.Column("account_id", sa.Integer, primary_key=True),
    sa.Column("product", sa.String(40), primary_key=True),
    sa.Column("external_id", sa.String(100), primary_key=True),
    sa.Column("user_id", sa.Integer, nullable=False, index=True),
    # The record's own state in this CRM (issue 12): the duplicate rule weighs an established link
    # that a pull did not return by it, and activated roles and the role gain are per product.
    sa.Column("active", sa.Boolean, nullable=False, default=True, server_default=sa.true()),
    sa.Column("roles", JSONText, nullable=False, default=list, server_default="[]"),
    _user_of_account(),
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
    # Bumped with it by the changes a server's checks must see at once (seats assigned or taken
    # back by a person, the contract, the installation), not by a sync's writes, which checks
    # follow within a bounded lag (core_0004; docs/http.md).
    sa.Column("strict_version", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # A negotiated order-form plan's charge model (per_seat | per_account); NULL: the catalog's.
    sa.Column("charge_model", sa.String(16)),
    sa.UniqueConstraint("account_id", "product", name="uq_contracts_account_product"),
    sa.CheckConstraint("quantity >= 0", name="quantity_not_negative"),
    sa.CheckConstraint("term_months > 0", name="term_positive"),
)

seats = sa.Table(
    "seats",
    metadata,
    sa.Column("account_id", sa.Integer, primary_key=True),
    sa.Column("product", sa.String(40), primary_key=True),
    sa.Column("user_id", sa.Integer, primary_key=True),
    sa.Column("assigned_at", UTCDateTime, nullable=False),
    sa.Column("grandfathered", sa.Boolean, nullable=False, default=False),
    _user_of_account(),
)

# Append-only (triggers in the migration refuse UPDATE and DELETE): every seat change, who and why.
seat_ledger = sa.Table(
    "seat_ledger",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.Integer, nullable=False),
    sa.Column("product", sa.String(40), nullable=False),
    sa.Column("user_id", sa.Integer, nullable=False),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),  # assign | unassign | grandfather
    sa.Column("actor", sa.String(254), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("reason", sa.String(200), nullable=False, default=""),
    sa.Column("assigned_after", sa.Integer, nullable=False),  # seats held right after this change
    sa.Index("ix_seat_ledger_account_product_at", "account_id", "product", "at"),
    _user_of_account(),
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

# The event outbox: every domain event, written in the transaction of the change it reports and
# marked delivered once the listeners were called (seatgate.core.services.base.deliver_pending).
event_outbox = sa.Table(
    "event_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(32), nullable=False, unique=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("account", sa.String(100), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("payload", JSONText, nullable=False),
    sa.Column("delivered_at", UTCDateTime),
    sa.Index("ix_event_outbox_delivered_at", "delivered_at"),
)

APPEND_ONLY = ("seat_ledger", "audit_log")


# ------------------------------------------------------------------------------------------------
# Billing's tables (Alembic branch ``billing``). Invoices and their lines are append-only: an
# issued invoice never changes; a correction is a new document (triggers in the migration).
# ------------------------------------------------------------------------------------------------

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
    # install | self_serve_purchase | add_users | plan_change | seats_buy | uninstall
    sa.Column("action", sa.String(30), nullable=False),
    sa.Column("detail", JSONText, nullable=False, default=dict),
    sa.Column("price_shown", Money),  # the indicative price the actor saw
    sa.Column("currency", sa.String(3)),
    # The event a listener recorded this commitment from (users added): one commitment per event.
    sa.Column("event_id", sa.String(32), unique=True),
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
    sa.Column("idempotency_key", sa.String(100), nullable=False),
    sa.Column("contract_id", sa.ForeignKey("contracts.id"), nullable=False, index=True),
    # An idempotency key belongs to one account: unique per account, never looked up across them.
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("request", JSONText, nullable=False),  # the arguments: a reused key must match
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("unit_price", Money, nullable=False),
    sa.Column("effective", sa.Date, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(254), nullable=False),
    sa.Column("result", JSONText, nullable=False),  # what the first call answered
    sa.UniqueConstraint(
        "account_id", "idempotency_key", name="uq_billing_seat_purchases_account_key"
    ),
)

# One row per uninstall. An install after it sets ``reinstalled_at``: before ``effective`` that
# withdrew the uninstall (and its cancellation ticket); on or after it, a new purchase.
uninstalls = sa.Table(
    "billing_uninstalls",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("contract_id", sa.ForeignKey("contracts.id"), nullable=False, index=True),
    sa.Column("requested_at", UTCDateTime, nullable=False),
    sa.Column("effective", sa.Date, nullable=False),
    sa.Column("actor", sa.String(254), nullable=False),
    sa.Column("reinstalled_at", UTCDateTime),
)

tickets = sa.Table(
    "billing_tickets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("contract_id", sa.ForeignKey("contracts.id"), nullable=False, index=True),
    sa.Column("kind", sa.String(30), nullable=False),  # billing_cancellation | renewal_adjustment
    sa.Column("opened_at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(254)),
    sa.Column("uninstall_id", sa.ForeignKey("billing_uninstalls.id")),  # billing_cancellation
    sa.Column("withdrawn_at", UTCDateTime),  # a reinstall before the uninstall took effect
    # renewal_adjustment: the contracted quantity Support set for the renewal, when and by whom.
    sa.Column("renewal_quantity", sa.Integer),
    sa.Column("resolved_at", UTCDateTime),
    sa.Column("resolved_by", sa.String(254)),
)

BILLING_APPEND_ONLY = ("billing_invoices", "billing_invoice_lines")


# ------------------------------------------------------------------------------------------------
# The sync engine's tables (Alembic branch ``sync``): per-connector sync settings, cursors, runs,
# quarantined records, users waiting for an auto-install seat, and the platform's agent directory.
# ------------------------------------------------------------------------------------------------

# What the core (not the adapter) needs to know about an installation: the activated roles of auto
# install (seed 002), how often it syncs, how often a full pull runs, the deletion guard. Kept apart
# from ``installations.settings``, which is the adapter's own schema and nothing else.
sync_connectors = sa.Table(
    "sync_connectors",
    metadata,
    sa.Column("account_id", sa.ForeignKey("accounts.id"), primary_key=True),
    sa.Column("product", sa.String(40), primary_key=True),
    sa.Column("activated_roles", JSONText, nullable=False, default=list),
    sa.Column("interval_minutes", sa.Integer, nullable=False, default=60),
    sa.Column("full_every", sa.Integer, nullable=False, default=24),
    sa.Column("guard_share", sa.Float, nullable=False, default=0.10),
    sa.Column("guard_min", sa.Integer, nullable=False, default=5),
    # Set once the adapter's uninstall hook has run for a due ``uninstall_effective``.
    sa.Column("uninstalled_at", UTCDateTime),
)

# One row per connector; changed only in the transaction that reconciles the users it covers.
sync_cursors = sa.Table(
    "sync_cursors",
    metadata,
    sa.Column("account_id", sa.ForeignKey("accounts.id"), primary_key=True),
    sa.Column("product", sa.String(40), primary_key=True),
    sa.Column("cursor", UTCDateTime),  # max change stamp seen, never past a run's start
    sa.Column("runs_since_full", sa.Integer, nullable=False, default=0),
    sa.Column("last_full_at", UTCDateTime),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

sync_runs = sa.Table(
    "sync_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("product", sa.String(40), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    # running | succeeded | failed | halted | interrupted (a running run whose lease expired)
    sa.Column("outcome", sa.String(12), nullable=False),
    sa.Column("full", sa.Boolean, nullable=False),
    sa.Column("forced", sa.Boolean, nullable=False, default=False),
    sa.Column("pulled", sa.Integer, nullable=False, default=0),
    sa.Column("created", sa.Integer, nullable=False, default=0),
    sa.Column("updated", sa.Integer, nullable=False, default=0),
    sa.Column("deactivated", sa.Integer, nullable=False, default=0),
    sa.Column("quarantined", sa.Integer, nullable=False, default=0),
    sa.Column("seated", sa.Integer, nullable=False, default=0),
    sa.Column("waiting", sa.Integer, nullable=False, default=0),
    sa.Column("gated", sa.Integer, nullable=False, default=0),
    sa.Column("agents_synced", sa.Integer, nullable=False, default=0),
    sa.Column("requests", sa.Integer, nullable=False, default=0),
    sa.Column("retries", sa.Integer, nullable=False, default=0),
    sa.Column("seconds", sa.Float, nullable=False, default=0.0),
    sa.Column("message", sa.String(500), nullable=False, default=""),
    # The lease of a running run (issue 13 item 10): who runs it, when it last said so, and when
    # it counts as dead if it says nothing more.
    sa.Column("owner", sa.String(120)),
    sa.Column("heartbeat_at", UTCDateTime),
    sa.Column("lease_expires_at", UTCDateTime),
    sa.Index("ix_sync_runs_account_product_started", "account_id", "product", "started_at"),
)

# A record the run could not use, with why (bad email, missing id, duplicate within the run...).
sync_quarantine = sa.Table(
    "sync_quarantine",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.ForeignKey("sync_runs.id"), nullable=False, index=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("product", sa.String(40), nullable=False),
    sa.Column("external_id", sa.String(100), nullable=False, default=""),
    sa.Column("email", sa.String(254), nullable=False, default=""),
    sa.Column("reason", sa.String(40), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
)

# Seed 002 auto install in hard_cap: "only up to capacity; the rest wait and are reported".
auto_install_waiting = sa.Table(
    "auto_install_waiting",
    metadata,
    sa.Column("account_id", sa.Integer, primary_key=True),
    sa.Column("product", sa.String(40), primary_key=True),
    sa.Column("user_id", sa.Integer, primary_key=True),
    sa.Column("since", UTCDateTime, nullable=False),
    sa.Column("reason", sa.String(40), nullable=False),
    _user_of_account(),
)

# The platform's agent directory, as each connector feeds it. ``run_id`` is the last run that
# wrote the row, so the rows of one run can be streamed to the ``agents_written`` listeners.
agent_directory = sa.Table(
    "agent_directory",
    metadata,
    sa.Column("account_id", sa.Integer, primary_key=True),
    sa.Column("product", sa.String(40), primary_key=True),
    sa.Column("user_id", sa.Integer, primary_key=True),
    sa.Column("external_id", sa.String(100), nullable=False),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("name", sa.String(200), nullable=False, default=""),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("run_id", sa.Integer, nullable=False),
    sa.Index("ix_agent_directory_run", "run_id"),
    _user_of_account(),
)

SYNC_TABLES = (
    sync_connectors,
    sync_cursors,
    sync_runs,
    sync_quarantine,
    auto_install_waiting,
    agent_directory,
)


# ------------------------------------------------------------------------------------------------
# Access (Alembic branch ``access``): the HTTP API's bearer tokens, one account each. The token
# itself is shown once when made; only its SHA-256 digest is kept.
# ------------------------------------------------------------------------------------------------
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.String(20), primary_key=True),  # tok_ + 12 hex: what list and revoke name
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False, index=True),
    sa.Column("role", sa.String(16), nullable=False),  # check | admin | billing | partner
    sa.Column("actor", sa.String(254)),  # whose authority admin and billing acts use
    sa.Column("partner", sa.String(60)),  # partner tokens: the partner they act for (web_0001)
    sa.Column("digest", sa.String(64), nullable=False, unique=True),  # sha256 hex of the token
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", sa.String(254)),
    sa.Column("revoked_at", UTCDateTime),
    # A console session's token: the admin token it was signed in with (web_0002). Revoking that
    # token revokes its sessions, and a session of a revoked token is refused.
    sa.Column("parent_id", sa.String(20), index=True),
)


# ------------------------------------------------------------------------------------------------
# Orders (Alembic branch ``orders``, issue 18): install links for order-form contracts and the
# mail that carries them, add-on plans the partner activates, and outbound webhooks.
# ------------------------------------------------------------------------------------------------

# Seed 002: "an Install Link sent to you via an email notification". The token is never stored:
# it is the id signed with the server secret (seatgate.core.domain.links).
install_links = sa.Table(
    "install_links",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),  # 128 random bits, hex
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False, index=True),
    sa.Column("product", sa.String(40), nullable=False),
    sa.Column("contract_id", sa.ForeignKey("contracts.id"), nullable=False),
    sa.Column("email", sa.String(254), nullable=False),  # the admin it was sent to
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", sa.String(254)),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime),
    sa.Column("used_by", sa.String(254)),
    sa.Column("revoked_at", UTCDateTime),
    sa.Column("revoked_by", sa.String(254)),
)

# Mail to send. The body holds ``{link}`` where the install link goes: the link is signed again
# when the mail is sent, so the table never holds a usable token.
mail_outbox = sa.Table(
    "mail_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("recipient", sa.String(254), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("link_id", sa.ForeignKey("install_links.id"), index=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(12), nullable=False),  # queued | sent | failed
    sa.Column("sent_at", UTCDateTime),
    sa.Column("error", sa.String(300), nullable=False, default=""),
)

# Seed 002: add-on plans "will be activated in your Account by the Partner, based on contracted
# terms". Billed as ``add_on`` lines from ``effective`` until ``ends`` (end of the term a
# deactivation was asked in).
addons = sa.Table(
    "billing_addons",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("contract_id", sa.ForeignKey("contracts.id"), nullable=False, index=True),
    sa.Column("plan", sa.String(60), nullable=False),
    sa.Column("charge_model", sa.String(16), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("unit_price", Money, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("effective", sa.Date, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("partner", sa.String(60), nullable=False),
    sa.Column("actor", sa.String(254), nullable=False),
    sa.Column("ends", sa.Date),
    sa.Column("deactivated_at", UTCDateTime),
    sa.Column("deactivated_by", sa.String(254)),
    sa.CheckConstraint("quantity > 0", name="quantity_positive"),
)

# An account's webhook endpoint. The signing secret is encrypted with the server secret (the
# sender must sign with it, so a hash would not do); it is shown once, when the endpoint is added.
webhook_endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False, index=True),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("events", JSONText, nullable=False, default=list),
    sa.Column("secret_sealed", sa.String(500), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", sa.String(254)),
    sa.Column("removed_at", UTCDateTime),
    sa.Column("disabled_at", UTCDateTime),
    sa.Column("disabled_reason", sa.String(300), nullable=False, default=""),
    sa.Column("failing_since", UTCDateTime),  # first failure since the last success
    sa.Column("failures", sa.Integer, nullable=False, default=0),  # attempts failed since then
)

# One delivery per (endpoint, event): written by the webhook listener, idempotent on the event id.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("endpoint_id", sa.ForeignKey("webhook_endpoints.id"), nullable=False),
    sa.Column("event_id", sa.String(32), nullable=False),
    sa.Column("event", sa.String(40), nullable=False),  # the webhook event name
    sa.Column("payload", JSONText, nullable=False),
    sa.Column("status", sa.String(12), nullable=False),  # pending | delivered | failed
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("retry_until", UTCDateTime),  # set by the first attempt: a day of retries
    sa.Column("leased_until", UTCDateTime),  # a sender holds it until then
    sa.Column("last_attempt_at", UTCDateTime),
    sa.Column("last_status", sa.Integer),
    sa.Column("last_error", sa.String(300), nullable=False, default=""),
    sa.Column("delivered_at", UTCDateTime),
    sa.UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_deliveries_endpoint_event"),
    sa.Index("ix_webhook_deliveries_status_next", "status", "next_attempt_at"),
)

webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("delivery_id", sa.ForeignKey("webhook_deliveries.id"), nullable=False, index=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("error", sa.String(300), nullable=False, default=""),
    sa.Column("seconds", sa.Float, nullable=False, default=0.0),
)


# ------------------------------------------------------------------------------------------------
# Fleet (Alembic branch ``fleet``, issue 17): the runs a beat enqueued for Celery workers, and the
# deliveries skipped because another worker held the connector's lock. ``sync_runs`` stays the
# record of what a sync did; these say what the fleet asked for and who ran it.
fleet_tasks = sa.Table(
    "fleet_tasks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("product", sa.String(40), nullable=False),
    sa.Column("state", sa.String(12), nullable=False),  # queued | running | done | skipped
    sa.Column("outcome", sa.String(12), nullable=False, default=""),  # the sync's, once done
    sa.Column("task_id", sa.String(64), nullable=False, default=""),  # the broker's message id
    sa.Column("enqueued_at", UTCDateTime, nullable=False),
    sa.Column("started_at", UTCDateTime),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("worker", sa.String(200), nullable=False, default=""),
    sa.Column("deliveries", sa.Integer, nullable=False, default=0),  # > 1: redelivered
    sa.Column("run_id", sa.Integer),  # sync_runs.id of the run it made
    sa.Column("pulled", sa.Integer, nullable=False, default=0),
    sa.Column("message", sa.String(500), nullable=False, default=""),
    sa.Index("ix_fleet_tasks_state", "state", "account_id", "product"),
)

fleet_skips = sa.Table(
    "fleet_skips",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("task", sa.Integer, nullable=False, index=True),  # fleet_tasks.id of the delivery
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("product", sa.String(40), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("worker", sa.String(200), nullable=False, default=""),
    sa.Column("reason", sa.String(200), nullable=False),
)

FLEET_TABLES = (fleet_tasks, fleet_skips)
