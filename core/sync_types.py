"""Records passed to listener hooks about sync runs (filled in by the sync engine)."""

from __future__ import annotations

import datetime as dt

import attrs


@attrs.frozen(slots=True)
class AgentRecord:
    """An agent as written to the platform's agent directory."""

    email: str
    name: str
    external_id: str
    active: bool


@attrs.frozen
class SyncSummary:
    """The record of one sync run."""

    account: str
    product: str
    outcome: str  # succeeded | failed | halted
    full: bool
    started_at: dt.datetime
    seconds: float
    pulled: int = 0
    created: int = 0
    updated: int = 0
    deactivated: int = 0
    quarantined: int = 0
    seated: int = 0
    gated: int = 0
    agents_synced: int = 0
    requests: int = 0
    retries: int = 0
    message: str = ""
