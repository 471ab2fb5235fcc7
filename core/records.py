"""What an adapter hands the core: one CRM user, a page of them, and what the adapter is.

These are the whole contract between a CRM adapter and the sync engine. An adapter maps its CRM's
user object onto :class:`ExternalUser` and nothing else; validation (a usable email, etc.) happens in
the core, so a bad record is quarantined with its reason instead of failing the page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import attrs

# The gated features of seed 000 ("Users without a valid licensed seat will be restricted from...").
FEATURES: tuple[str, ...] = (
    "cti",  # log in to the CTI and use its features (pops, click to call, automation tools)
    "managed_package",  # enter managed package components
    "activities_identification",  # Activities user identification
    "embedded_login",  # log in via embedded experiences within the integration
    "automation_identification",  # automation user identification
    "agent_sync",  # being part of agent synchronization from the CRM to the platform
)


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
    """

    external_id: str
    email: str | None
    name: str = ""
    active: bool = True
    roles: tuple[str, ...] = ()
    modified_at: dt.datetime | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, eq=False, repr=False)


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
