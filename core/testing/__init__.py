"""The conformance kit for seatgate adapters, shipped in the package.

* :class:`AdapterConformance` (in :mod:`.conformance`) — the base test class an adapter's test module
  subclasses; it imports pytest, so it is loaded only by the modules that use it.
* :mod:`.memory` — an in-memory adapter (product ``memory``) and its sandbox, for the engine's tests.
* :mod:`.setup` — ``account_with_contract``: the account, admin and contract a sync needs, for an
  adapter's engine-level tests.
* :mod:`.plugin` — the pytest plugin (pytest11 entry point ``seatgate``): small shared fixtures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .conformance import AdapterConformance, SleepRecorder

__all__ = ["AdapterConformance", "SleepRecorder"]


def __getattr__(name: str) -> Any:
    # Lazy, so `import seatgate.core.testing` (done by every pytest run) stays cheap.
    if name in __all__:
        from . import conformance

        return getattr(conformance, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
