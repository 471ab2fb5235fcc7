"""The ports the services work through: what they need from the outside, never how it is done.

A service takes a :class:`Ports` bundle — the clock, the unit of work (storage), the catalog and
the timeline (data the rules run on), the publisher (listener plugins) and the adapter directory
(the CRM plugins) — and never the composition root. :mod:`seatgate.core.bootstrap` builds the real
ones; unit tests may pass fakes that satisfy these protocols.

One module per concern holds the protocol of its store (``accounts``, ``contracts``, ``seats``,
``audit``, ``entitlement``, ``installs``, ``billing``, ``sync``); :mod:`.uow` gathers them into the
unit of work.
"""

from __future__ import annotations

from .adapters import AdapterDirectory, ConnectorAdapter, RequestStats
from .publisher import Publisher
from .uow import Ports, UnitOfWork, UnitOfWorkFactory

__all__ = [
    "AdapterDirectory",
    "ConnectorAdapter",
    "Ports",
    "Publisher",
    "RequestStats",
    "UnitOfWork",
    "UnitOfWorkFactory",
]
