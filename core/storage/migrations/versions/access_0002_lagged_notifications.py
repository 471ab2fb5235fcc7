"""lagged notifications: a contract change that only a sync's writes made is told apart.

Revision ID: access_0002
Revises: web_0002
Create Date: 2026-12-01 10:45:00

``seatgate_notify_entitlements`` (access_0001) sent ``e:<account>`` for every change of a contract
row, and a server in ``notify`` freshness dropped its cached snapshots on each: a full sync of
100,000 users commits hundreds of batches, each bumping ``entitlement_version`` alone, and every
one made the next checks wait for a refresh (issue 15: p99 of 64 ms during a sync). The payload
is now ``l:<account>`` for an update that moved ``entitlement_version`` and nothing else — not
``strict_version`` (core_0004: a person's seat change, the contract, the installation), not any
other column — which a server may lag by at most its ``sync_lag``; every other change (an insert,
a delete, any other column) is still ``e:<account>``. A listener that does not know ``l:`` treats
it as ``e:`` (storage.notifications). SQLite has no notifications: nothing to do there.
"""

from alembic import op

revision = "access_0002"
down_revision = "web_0002"
branch_labels = None
depends_on = "core_0004"

CHANNEL = "seatgate_changes"

_ALWAYS = "'e:'"
# The row as JSON without the version a sync bumps: equal before and after means nothing but
# that version moved (a column added later is compared too, so it can never be lagged by mistake).
_LAGGED = """CASE WHEN TG_OP = 'UPDATE'
                AND NEW.strict_version = OLD.strict_version
                AND to_jsonb(NEW) - 'entitlement_version' = to_jsonb(OLD) - 'entitlement_version'
            THEN 'l:' ELSE 'e:' END"""


def _function(kind: str) -> str:
    return f"""
        CREATE OR REPLACE FUNCTION seatgate_notify_entitlements() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', {kind} || a.name)
            FROM accounts a WHERE a.id = COALESCE(NEW.account_id, OLD.account_id);
            RETURN NULL;
        END $$ LANGUAGE plpgsql
        """


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_function(_LAGGED))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_function(_ALWAYS))
