"""a channel per schema: two deployments sharing a database no longer hear each other's changes.

Revision ID: access_0003
Revises: access_0002
Create Date: 2026-12-01 20:30:00

The triggers (access_0001, access_0002) sent every note on the one channel ``seatgate_changes``,
and a channel belongs to the whole database, not to a schema: a deployment in another schema of
the same database (staging beside production, each test's schema) heard every ``e:acme`` of the
others and dropped its caches for nothing. The channel is now the schema's own, named by the
function ``seatgate_channel(schema)`` — the one place the rule lives: the triggers notify on
``seatgate_channel(TG_TABLE_SCHEMA)`` and a listener asks ``seatgate_channel(current_schema())``
(storage.notifications). The payloads are unchanged, and so is access_0002's ``l:`` rule.

Why a digest and not the schema name itself: a channel name is an identifier, at most 63 bytes
(``pg_notify`` refuses a longer one) and a schema name can be 63 bytes already, so a prefix plus
the name may not fit, and cutting it would give two long names with a common start one channel.
Sixteen hex digits of its md5 (64 bits: two schemas of a database sharing one is out of reach)
always fit, are the same whatever the name's case or characters, and need no quoting.

Servers still running the code before this revision listen on ``seatgate_changes``, which
nothing sends on any more: they hear no change until restarted (``fence`` freshness still answers
every check right; their tokens and, in ``notify`` freshness, their snapshots are re-read after
``max_age``). SQLite has no notifications: nothing to do there.
"""

from alembic import op

revision = "access_0003"
down_revision = "access_0002"
branch_labels = None
depends_on = None

# What access_0001 and access_0002 sent on, kept for the downgrade.
_OLD_CHANNEL = "'seatgate_changes'"
_NEW_CHANNEL = "seatgate_channel(TG_TABLE_SCHEMA)"

# access_0002's payload of a contract change, unchanged: the row as JSON without the version a
# sync bumps, equal before and after, means nothing but that version moved.
_LAGGED = """CASE WHEN TG_OP = 'UPDATE'
                AND NEW.strict_version = OLD.strict_version
                AND to_jsonb(NEW) - 'entitlement_version' = to_jsonb(OLD) - 'entitlement_version'
            THEN 'l:' ELSE 'e:' END"""

# IMMUTABLE (a function of its argument alone) and STRICT (no schema, no channel). The layout of
# the two trigger functions below is access_0002's and access_0001's, character for character, so
# the downgrade leaves their source exactly as it was (tests/test_migrations.py compares it).
_CHANNEL_FUNCTION = """
    CREATE FUNCTION seatgate_channel(schema_name text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT 'seatgate_changes_' || left(md5(schema_name), 16) $$
    """
_CHANNEL_COMMENT = (
    "COMMENT ON FUNCTION seatgate_channel(text) IS 'The NOTIFY channel of seatgate in a schema: "
    "its triggers send on seatgate_channel(TG_TABLE_SCHEMA), its servers LISTEN on "
    "seatgate_channel(current_schema()) (migration access_0003)'"
)


def _entitlements(channel: str) -> str:
    return f"""
        CREATE OR REPLACE FUNCTION seatgate_notify_entitlements() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify({channel}, {_LAGGED} || a.name)
            FROM accounts a WHERE a.id = COALESCE(NEW.account_id, OLD.account_id);
            RETURN NULL;
        END $$ LANGUAGE plpgsql
        """


def _tokens(channel: str) -> str:
    return f"""
        CREATE OR REPLACE FUNCTION seatgate_notify_tokens() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify({channel}, 't');
            RETURN NULL;
        END $$ LANGUAGE plpgsql
        """


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_CHANNEL_FUNCTION)
    op.execute(_CHANNEL_COMMENT)
    op.execute(_entitlements(_NEW_CHANNEL))
    op.execute(_tokens(_NEW_CHANNEL))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # PL/pgSQL records no dependency on the functions it calls, so nothing would stop the drop:
    # the triggers' functions are put back first, never left naming a function that is gone.
    op.execute(_entitlements(_OLD_CHANNEL))
    op.execute(_tokens(_OLD_CHANNEL))
    op.execute("DROP FUNCTION seatgate_channel(text)")
