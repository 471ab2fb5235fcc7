"""``seatgate db``: schema migrations."""

from __future__ import annotations

import click

from . import Context, pass_ctx


@click.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
@pass_ctx
def upgrade(ctx: Context) -> None:
    """Create or migrate the schema to the newest version of every branch."""
    from ...storage.db import Database

    database = Database(ctx.db_url, migrate=False)
    try:
        heads = database.upgrade()
    finally:
        database.dispose()
    ctx.emit(
        {"database": repr(database), "heads": heads},
        lambda c: c.print(f"schema up to date: {', '.join(heads)}"),
    )


def register(main: click.Group) -> None:
    main.add_command(db)
