"""The surface seatgate offers its plugins: everything a CRM adapter (or a listener) imports.

An adapter imports from here and nowhere else in seatgate (the import contracts check it)::

    from seatgate.core.plugins import AdapterInfo, ExternalUser, UserPage, hookimpl, kit

- the hooks: :data:`hookimpl` (and the specs in :mod:`.hookspecs`, documented in docs/hooks.md);
- the records an adapter hands the core: :class:`ExternalUser` (:func:`unreadable` words its
  ``problem``), :class:`UserPage`,
  :class:`AdapterInfo`, and the gated :data:`FEATURES`;
- configuration: :class:`ConfigSchema`, :class:`Field`, :func:`timeout_field`, :class:`Secret`,
  :func:`reveal`, :func:`require_tls`;
- requests: :class:`RequestContext` (the run's retry policy and counts), :class:`RetryPolicy`,
  :func:`parse_retry_after`, :func:`read_ahead`, and the :mod:`.kit` (status -> error, throttle
  headers, the paged loop, an httpx JSON client), :func:`throttle_store` (each CRM instance's
  pauses, shared by a fleet of workers through Redis: :mod:`.throttle`);
- sandboxes: :class:`Sandbox`, :class:`SandboxUser`, :class:`UserStore`, :class:`FaultKnobs`, :func:`with_raw`,
  :class:`Request`, :class:`Response`;
- the errors an adapter raises (:mod:`seatgate.core.errors`).

The plugin manager itself (loading, the registry, the typed facades) is :mod:`.manager`, for the
core's own wiring.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..domain.records import (
    FEATURES,
    AdapterInfo,
    AgentRecord,
    ExternalUser,
    SyncSummary,
    UserPage,
    unreadable,
)
from ..errors import (
    AdapterError,
    AuthFailed,
    BadInput,
    MalformedResponse,
    QuotaExhausted,
    RateLimited,
    SeatgateError,
    TokenExpired,
    TransientError,
)
from .config import (
    LOOPBACK_HOSTS,
    ConfigSchema,
    Field,
    Secret,
    redact,
    require_tls,
    reveal,
    timeout_field,
)
from .hookspecs import hookimpl

if TYPE_CHECKING:
    from ..domain.events import Event
    from . import kit
    from .readahead import read_ahead
    from .retry import RequestContext, RetryPolicy, parse_retry_after
    from .sandbox import (
        FaultKnobs,
        Request,
        Response,
        Sandbox,
        SandboxUser,
        UserStore,
        with_raw,
    )
    from .throttle import throttle_store

# Loaded on first use: the kit imports httpx, the retry policy tenacity, the sandboxes an HTTP
# server, the events module defines 16 attrs classes; a CLI command that only checks an
# entitlement needs none of them.
_LAZY = {
    "Event": ("..domain.events", "Event"),
    "kit": (".kit", None),
    "read_ahead": (".readahead", "read_ahead"),
    "RequestContext": (".retry", "RequestContext"),
    "RetryPolicy": (".retry", "RetryPolicy"),
    "parse_retry_after": (".retry", "parse_retry_after"),
    "FaultKnobs": (".sandbox", "FaultKnobs"),
    "Request": (".sandbox", "Request"),
    "Response": (".sandbox", "Response"),
    "Sandbox": (".sandbox", "Sandbox"),
    "SandboxUser": (".sandbox", "SandboxUser"),
    "with_raw": (".sandbox", "with_raw"),
    "UserStore": (".sandbox", "UserStore"),
    "throttle_store": (".throttle", "throttle_store"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module_name, attr = _LAZY[name]
        module = importlib.import_module(module_name, __name__)
        value = module if attr is None else getattr(module, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FEATURES",
    "LOOPBACK_HOSTS",
    "AdapterError",
    "AdapterInfo",
    "AgentRecord",
    "AuthFailed",
    "BadInput",
    "ConfigSchema",
    "Event",
    "ExternalUser",
    "FaultKnobs",
    "Field",
    "MalformedResponse",
    "QuotaExhausted",
    "RateLimited",
    "Request",
    "RequestContext",
    "Response",
    "RetryPolicy",
    "Sandbox",
    "SandboxUser",
    "SeatgateError",
    "Secret",
    "SyncSummary",
    "TokenExpired",
    "TransientError",
    "UserPage",
    "UserStore",
    "hookimpl",
    "kit",
    "parse_retry_after",
    "read_ahead",
    "redact",
    "require_tls",
    "reveal",
    "throttle_store",
    "timeout_field",
    "unreadable",
    "with_raw",
]
