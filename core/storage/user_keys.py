"""The keys of a user's rows, for migrations ``core_0006`` and ``sync_0003``: one composite key
to (account, user) in place of a key to ``accounts`` and one to ``integration_users``
(``tables._user_of_account`` says why). Imported by those migrations only (alembic is loaded
only when a database is migrated)."""

from __future__ import annotations

from alembic import op

__all__ = ["to_pair", "to_two_keys"]


def to_pair(table: str) -> None:
    """Replace ``table``'s keys on ``account_id`` and ``user_id`` by the composite one."""
    kept = _sqlite_triggers(table)
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.drop_constraint(f"fk_{table}_account_id_accounts", type_="foreignkey")
        batch_op.drop_constraint(f"fk_{table}_user_id_integration_users", type_="foreignkey")
        batch_op.create_foreign_key(
            f"fk_{table}_account_id_integration_users",
            "integration_users",
            ["account_id", "user_id"],
            ["account_id", "id"],
        )
    _restore(kept)


def to_two_keys(table: str) -> None:
    """The reverse of :func:`to_pair`."""
    kept = _sqlite_triggers(table)
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.drop_constraint(f"fk_{table}_account_id_integration_users", type_="foreignkey")
        batch_op.create_foreign_key(
            f"fk_{table}_account_id_accounts", "accounts", ["account_id"], ["id"]
        )
        batch_op.create_foreign_key(
            f"fk_{table}_user_id_integration_users", "integration_users", ["user_id"], ["id"]
        )
    _restore(kept)


def _sqlite_triggers(table: str) -> list[str]:
    """SQLite: the statements creating ``table``'s triggers (the seats' stamps, the ledger's
    append-only guard), which its rebuild by the batch drops with the old table."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return []
    rows = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? ORDER BY name",
        (table,),
    )
    return [r[0] for r in rows]


def _restore(statements: list[str]) -> None:
    for sql in statements:
        op.execute(sql)
