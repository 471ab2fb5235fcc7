"""Deprecated: ``seatgate.core.hookspecs`` moved to ``seatgate.core.plugins`` (import from there).

A re-export kept for one release so third-party adapters keep working.
"""

import warnings

from .plugins import hookspecs as _moved

warnings.warn(
    "seatgate.core.hookspecs is deprecated: import from seatgate.core.plugins",
    DeprecationWarning,
    stacklevel=2,
)
globals().update({k: v for k, v in vars(_moved).items() if not k.startswith("__")})
