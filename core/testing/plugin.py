"""pytest plugin of the seatgate conformance kit (loaded through the pytest11 entry point).

Every pytest run in an environment with seatgate installed loads this module, so it imports nothing
heavy and changes no test it was not asked about: it only offers fixtures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .conformance import SleepRecorder


@pytest.fixture
def recording_sleep() -> SleepRecorder:
    """A ``sleep`` for ``RetryPolicy(sleep=...)`` that records delays instead of waiting."""
    from .conformance import SleepRecorder

    return SleepRecorder()
