"""What an adapter hands the core (one CRM user, a page of them, what the adapter is), and what a
sync hands listeners (an agent written, the summary of a run).

These are the whole contract between a CRM adapter and the sync engine. An adapter maps its CRM's
user object onto :class:`ExternalUser` and nothing else; validation (a usable email, etc.) happens in
the core, so a bad record is quarantined with its reason instead of failing the page. A record whose
field values the adapter cannot read (a change stamp that does not parse, a flag neither true nor
false) is handed over too, with :attr:`ExternalUser.problem` saying why: one bad record never fails
the run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import attrs

from .vocabulary import Feature

# The gated features of seed 000, as their names (see :class:`~.vocabulary.Feature`).
FEATURES: tuple[str, ...] = tuple(Feature)


@attrs.frozen(slots=True)
class ExternalUser:
    """One user as the CRM reports it, already mapped to the core's names.

    :param external_id: the CRM's stable id for the user (Salesforce ``Id``, ServiceNow ``sys_id``...).
    :param email: as the CRM has it (may be missing or malformed: the core quarantines such records).
    :param name: display name.
    :param active: False when the CRM has deactivated, archived or locked the user.
    :param roles: role / profile / team names used by auto install ("activated roles").
    :param modified_at: the CRM's change stamp (UTC), the basis of incremental pulls.
    :param raw: a few untouched source fields worth keeping for support (never credentials).
    :param problem: why the adapter could not read this record, or None when it could: the field
        and what was wrong with its value (``pxUpdateDateTime '' is no date-time``), never a
        secret. The core quarantines such a record (``malformed_record``) under its id, and the
        rest of the pull goes on; the other fields hold what could be read (at least the id).
    """

    external_id: str
    email: str | None
    name: str = ""
    active: bool = True
    roles: tuple[str, ...] = ()
    modified_at: dt.datetime | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, eq=False, repr=False)
    problem: str | None = None


def unreadable(field: str, value: object, expected: str) -> str:
    """An :attr:`ExternalUser.problem` for a field value of the wrong kind: ``FIELD 'VALUE' is no
    EXPECTED`` (text cut to 40 characters), or the value's type where it is not text
    (``updatedAt int is no date-time``)."""
    shown = repr(value[:40]) if isinstance(value, str) else type(value).__name__
    return f"{field} {shown} is no {expected}"


@attrs.frozen(slots=True)
class UserPage:
    """One page of a pull, in the order the CRM returned it."""

    users: list[ExternalUser]


@attrs.frozen(slots=True)
class AdapterInfo:
    """What an adapter declares about itself (``seatgate adapters list`` shows it).

    :param name: the adapter's name (``salesforce``).
    :param products: the products it serves (``("salesforce", "salesforce_voice")``).
    :param version: the adapter's version string.
    :param features: per product, the gated features that apply to it.
    :param config_schema: the configuration it accepts (see :mod:`seatgate.core.config`).
    :param example_config: a configuration that passes the schema (used by docs and the kit).
    :param supports_cursor: True when the CRM has a change stamp to pull incrementally on.
    :param page_size: the largest page the CRM API allows, which the adapter uses.
    :param lookback_seconds: how far before the cursor an incremental pull re-reads (seconds): a
        change committed late with an older stamp (replication lag, a long transaction in the
        CRM) is still seen. Re-reading a record already applied changes nothing.
    """

    name: str
    products: tuple[str, ...]
    version: str
    features: Mapping[str, tuple[str, ...]]
    config_schema: Any
    example_config: Mapping[str, Any]
    supports_cursor: bool = True
    page_size: int = 1000
    description: str = ""
    lookback_seconds: int = 300


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
