"""Whether a database is usable by a server: reachable, and every migration branch applied."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from .db import Database

__all__ = ["missing_migrations"]


def missing_migrations(database: Database) -> list[str]:
    """The head revisions not applied yet ([] when the schema is current). Raises the driver's
    error when the database cannot be reached.

    Compared through the revision graph, not as sets of heads: Alembic keeps only the newest of
    revisions linked by ``depends_on`` in its version table (``billing_0002`` depending on
    ``core_0002`` leaves ``core_0002`` out), so the current heads never equal the script's.
    """
    script = ScriptDirectory.from_config(database.alembic_config())
    current = tuple(database.current())
    applied = {r.revision for r in script.iterate_revisions(current, "base")} if current else set()
    return sorted(database.heads() - applied)
