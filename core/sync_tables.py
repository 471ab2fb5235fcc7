"""The sync engine's tables (Alembic branch ``sync``): per-connector sync settings, cursors, runs,
quarantined records, users waiting for an auto-install seat, and the platform's agent directory.

They sit on the core's ``metadata`` so the whole schema is one picture, but only this module and the
``sync`` migration branch change them.
"""

from __future__ import annotations

import sqlalchemy as sa

from .storage.tables import metadata
from .storage.types import JSONText, UTCDateTime

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
    sa.Column("outcome", sa.String(12), nullable=False),  # succeeded | failed | halted
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
    sa.Column("account_id", sa.ForeignKey("accounts.id"), primary_key=True),
    sa.Column("product", sa.String(40), primary_key=True),
    sa.Column("user_id", sa.ForeignKey("integration_users.id"), primary_key=True),
    sa.Column("since", UTCDateTime, nullable=False),
    sa.Column("reason", sa.String(40), nullable=False),
)

# The platform's agent directory, as each connector feeds it. ``run_id`` is the last run that
# wrote the row, so the rows of one run can be streamed to the ``agents_written`` listeners.
agent_directory = sa.Table(
    "agent_directory",
    metadata,
    sa.Column("account_id", sa.ForeignKey("accounts.id"), primary_key=True),
    sa.Column("product", sa.String(40), primary_key=True),
    sa.Column("user_id", sa.ForeignKey("integration_users.id"), primary_key=True),
    sa.Column("external_id", sa.String(100), nullable=False),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("name", sa.String(200), nullable=False, default=""),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("run_id", sa.Integer, nullable=False),
    sa.Index("ix_agent_directory_run", "run_id"),
)

SYNC_TABLES = (
    sync_connectors,
    sync_cursors,
    sync_runs,
    sync_quarantine,
    auto_install_waiting,
    agent_directory,
)
