"""Alembic environment. Each concern (core, billing, sync...) owns a branch of migrations with its
own ``branch_labels``; ``upgrade heads`` applies them all, so concerns evolve their tables
independently (and a plugin could ship a branch of its own)."""

from __future__ import annotations

from alembic import context

from seatgate.core.storage.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    import sqlalchemy as sa

    connection = sa.create_engine(context.config.get_main_option("sqlalchemy.url") or "").connect()

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
