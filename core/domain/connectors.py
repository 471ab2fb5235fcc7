"""What the core keeps about a connector besides the adapter's own settings, and how it is read
from an installation's config: activated roles (seed 002 auto install), the sync interval, how
often a full pull runs, and the deletion guard.

A config file puts these core keys beside the adapter's keys; :func:`split_settings` takes them out,
checks them, and leaves the adapter's keys for its schema.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs

from ..errors import BadInput

__all__ = ["CORE_KEYS", "ConnectorSettings", "is_secret_reference", "split_settings"]


@attrs.frozen
class ConnectorSettings:
    """The core's settings of one connector.

    :param activated_roles: roles whose holders auto install seats (seed 002).
    :param interval_minutes: minutes between scheduled syncs.
    :param full_every: every how many runs a full pull runs.
    :param guard_share: the deletion guard's share of active users (0-1).
    :param guard_min: the deletion guard trips only from this many users.
    """

    activated_roles: tuple[str, ...] = ()
    interval_minutes: int = 60
    full_every: int = 24
    guard_share: float = 0.10
    guard_min: int = 5


#: The core's whole-number settings: (default, lowest, highest, unit). Bounded above too: a
#: larger number fits no database column (``full_every: 10**19`` failed at the INSERT).
_WHOLE: dict[str, tuple[int, int, int, str]] = {
    "sync_interval_minutes": (60, 1, 527_040, "minutes"),  # at most a year
    "full_every": (24, 1, 100_000, "runs"),
    "deletion_guard_min": (5, 0, 100_000_000, "users"),
}

CORE_KEYS: dict[str, str] = {
    "activated_roles": "a list of role names",
    **{
        key: f"a whole number of {unit} from {low} to {high}"
        for key, (_, low, high, unit) in _WHOLE.items()
    },
    "deletion_guard_share": "a share between 0 and 1, e.g. 0.1",
}


def split_settings(raw: Mapping[str, Any]) -> tuple[dict[str, Any], ConnectorSettings]:
    """``(the adapter's keys, the core's settings)`` of a config; raises :class:`BadInput`
    naming a bad core key."""
    adapter_raw = {k: v for k, v in raw.items() if k not in CORE_KEYS}
    core = {k: raw[k] for k in CORE_KEYS if k in raw}
    roles = core.get("activated_roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) and r for r in roles):
        raise BadInput("config activated_roles", roles, CORE_KEYS["activated_roles"])

    def whole(key: str) -> int:
        default, low, high, _ = _WHOLE[key]
        value = core.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise BadInput(f"config {key}", value, CORE_KEYS[key])
        return value

    share = core.get("deletion_guard_share", 0.10)
    if not isinstance(share, int | float) or isinstance(share, bool) or not 0 < share <= 1:
        raise BadInput("config deletion_guard_share", share, CORE_KEYS["deletion_guard_share"])
    return adapter_raw, ConnectorSettings(
        activated_roles=tuple(dict.fromkeys(roles)),
        interval_minutes=whole("sync_interval_minutes"),
        full_every=whole("full_every"),
        guard_share=float(share),
        guard_min=whole("deletion_guard_min"),
    )


_SECRET_REF = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")


def is_secret_reference(value: object) -> bool:
    """A stored secret must be a pure ``${ENV_VAR}`` reference: the database never holds one in
    clear."""
    return isinstance(value, str) and _SECRET_REF.fullmatch(value) is not None
