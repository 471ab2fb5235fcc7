"""The publisher port: domain events go to the listener plugins after their transaction commits."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from ...domain.records import AgentRecord

if TYPE_CHECKING:
    from ...domain.events import Event

__all__ = ["Publisher"]


class Publisher(Protocol):
    """Delivers events to listeners. Called only after the transaction that made them committed,
    so a listener never sees (or bills) what was rolled back. A listener's failure is the
    publisher's to log; it never reaches the service."""

    def publish(self, events: Sequence[Event]) -> None: ...

    def wants_agents(self) -> bool:
        """True when a listener takes the agents a sync writes (they are streamed to it)."""
        ...

    def agents_written(
        self, account: str, product: str, agents: Sequence[AgentRecord], at: dt.datetime
    ) -> None: ...
