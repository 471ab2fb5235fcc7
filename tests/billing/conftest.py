"""The ``scenario`` fixture: a fresh database and a test clock (see billing_scenario.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from billing_scenario import Scenario


@pytest.fixture
def scenario(sqlite_url: str) -> Iterator[Scenario]:
    s = Scenario(sqlite_url)
    yield s
    s.app.db.dispose()
