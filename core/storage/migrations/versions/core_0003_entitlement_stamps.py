"""entitlement stamps: every change of a user or a seat stamps the user's row, so that an
entitlement snapshot refreshes from the users changed since it was read (issue 12 item 7: a sync
of 100,000 users used to make every check after each of its batches re-read all 100,000).

Revision ID: core_0003
Revises: core_0002
Create Date: 2026-11-30 14:00:00

``integration_users.change_seq`` is written by the database itself, so that every path stamps —
the sync's bulk writes, seats assigned or unassigned, users added, grandfathering — and none can
forget to:

- PostgreSQL: the id of the writing transaction (``pg_current_xact_id()``), the column's default
  on insert (free on bulk inserts), a row trigger when the email or active flag changes, and
  statement triggers on ``seats`` (one set-based update per statement). A reader keeps the
  transactions its snapshot did not see (``pg_current_snapshot()``: at or after ``xmax``, or in
  progress) and later re-reads the users stamped by exactly those: a transaction that commits late
  with an older id is not missed, which a plain sequence would allow.
- SQLite (one writer at a time): the sum of the account's contracts' entitlement versions, which
  only grows (every change a decision depends on bumps a version in its own transaction, and
  contracts are never deleted). A reader re-reads the users stamped at or above the sum it read.
"""

from alembic import op

revision = "core_0003"
down_revision = "core_0002"
branch_labels = None
depends_on = None

_XID = "pg_current_xact_id()::text::bigint"


def _sqlite_stamp(account: str) -> str:
    return (
        "(SELECT coalesce(sum(entitlement_version), 0) FROM contracts "
        f"WHERE account_id = {account})"
    )


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute("ALTER TABLE integration_users ADD COLUMN change_seq BIGINT NOT NULL DEFAULT 0")
    op.create_index(
        "ix_integration_users_account_change", "integration_users", ["account_id", "change_seq"]
    )
    if dialect == "sqlite":
        _sqlite_triggers()
    elif dialect == "postgresql":
        _postgresql_triggers()


def _sqlite_triggers() -> None:
    def stamp(user: str, account: str) -> str:
        return (
            f"UPDATE integration_users SET change_seq = {_sqlite_stamp(account)} WHERE id = {user};"
        )

    op.execute(
        "CREATE TRIGGER integration_users_stamp_insert AFTER INSERT ON integration_users "
        f"BEGIN {stamp('NEW.id', 'NEW.account_id')} END"
    )
    op.execute(
        "CREATE TRIGGER integration_users_stamp_update AFTER UPDATE OF active, email "
        "ON integration_users "
        "WHEN OLD.active IS NOT NEW.active OR OLD.email IS NOT NEW.email "
        f"BEGIN {stamp('NEW.id', 'NEW.account_id')} END"
    )
    op.execute(
        "CREATE TRIGGER seats_stamp_insert AFTER INSERT ON seats "
        f"BEGIN {stamp('NEW.user_id', 'NEW.account_id')} END"
    )
    op.execute(
        "CREATE TRIGGER seats_stamp_delete AFTER DELETE ON seats "
        f"BEGIN {stamp('OLD.user_id', 'OLD.account_id')} END"
    )
    op.execute(
        "CREATE TRIGGER seats_stamp_update AFTER UPDATE OF account_id, product, user_id ON seats "
        f"BEGIN {stamp('OLD.user_id', 'OLD.account_id')} "
        f"{stamp('NEW.user_id', 'NEW.account_id')} END"
    )


def _postgresql_triggers() -> None:
    op.execute(f"ALTER TABLE integration_users ALTER COLUMN change_seq SET DEFAULT {_XID}")
    op.execute(
        f"""
        CREATE FUNCTION seatgate_stamp_user() RETURNS trigger AS $$
        BEGIN
            NEW.change_seq := {_XID};
            RETURN NEW;
        END $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        "CREATE TRIGGER integration_users_stamp BEFORE UPDATE OF active, email "
        "ON integration_users FOR EACH ROW "
        "WHEN (OLD.active IS DISTINCT FROM NEW.active OR OLD.email IS DISTINCT FROM NEW.email) "
        "EXECUTE FUNCTION seatgate_stamp_user()"
    )
    for verb, rows in (("insert", "new_rows"), ("delete", "old_rows")):
        op.execute(
            f"""
            CREATE FUNCTION seatgate_stamp_seats_{verb}() RETURNS trigger AS $$
            BEGIN
                -- Lock the users in id order first: two statements stamping overlapping users
                -- then wait for each other instead of deadlocking.
                PERFORM 1 FROM integration_users
                WHERE id IN (SELECT user_id FROM {rows}) ORDER BY id FOR UPDATE;
                UPDATE integration_users SET change_seq = {_XID}
                WHERE id IN (SELECT user_id FROM {rows});
                RETURN NULL;
            END $$ LANGUAGE plpgsql
            """
        )
        table = "NEW TABLE AS new_rows" if verb == "insert" else "OLD TABLE AS old_rows"
        op.execute(
            f"CREATE TRIGGER seats_stamp_{verb} AFTER {verb.upper()} ON seats "
            f"REFERENCING {table} FOR EACH STATEMENT "
            f"EXECUTE FUNCTION seatgate_stamp_seats_{verb}()"
        )
    op.execute(
        f"""
        CREATE FUNCTION seatgate_stamp_seats_update() RETURNS trigger AS $$
        BEGIN
            PERFORM 1 FROM integration_users
            WHERE id IN (SELECT user_id FROM old_rows UNION SELECT user_id FROM new_rows)
            ORDER BY id FOR UPDATE;
            UPDATE integration_users SET change_seq = {_XID}
            WHERE id IN (SELECT user_id FROM old_rows UNION SELECT user_id FROM new_rows);
            RETURN NULL;
        END $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        "CREATE TRIGGER seats_stamp_update AFTER UPDATE ON seats "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION seatgate_stamp_seats_update()"
    )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in (
            "integration_users_stamp_insert",
            "integration_users_stamp_update",
            "seats_stamp_insert",
            "seats_stamp_delete",
            "seats_stamp_update",
        ):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS integration_users_stamp ON integration_users")
        op.execute("DROP FUNCTION IF EXISTS seatgate_stamp_user()")
        for verb in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS seats_stamp_{verb} ON seats")
            op.execute(f"DROP FUNCTION IF EXISTS seatgate_stamp_seats_{verb}()")
    op.drop_index("ix_integration_users_account_change", table_name="integration_users")
    with op.batch_alter_table("integration_users", schema=None) as batch_op:
        batch_op.drop_column("change_seq")
