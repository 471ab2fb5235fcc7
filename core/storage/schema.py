"""All tables of every concern on one ``metadata``: import here what declares tables, so Alembic
and the migration drift test see the whole schema."""

from __future__ import annotations

from .. import (
    billing_tables,  # noqa: F401  (the billing branch's tables)
    sync_tables,  # noqa: F401  (the sync branch's tables)
)
from .tables import metadata

__all__ = ["metadata"]
