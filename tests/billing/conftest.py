"""The ``scenario`` fixture: a fresh database and a test clock (see billing_scenario.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from billing_scenario import Scenario


@pytest.fixture
def scenario(db_url: str) -> Iterator[Scenario]:
    """A scenario on SQLite and on PostgreSQL."""
    s = Scenario(db_url)
    yield s
    s.app.db.dispose()
