"""Names the plugin machinery and the adapter directory share, without importing pluggy: the
built-in adapters, the entry-point group of third-party ones, and the environment switches."""

from __future__ import annotations

__all__ = ["BUILTIN_ADAPTERS", "ENTRY_POINT_GROUP", "ENV_LOAD", "ENV_STRICT", "ENV_TRACE"]

BUILTIN_ADAPTERS: tuple[str, ...] = (
    "seatgate.adapters.salesforce",
    "seatgate.adapters.servicenow",
    "seatgate.adapters.hubspot",
    "seatgate.adapters.oracle",
    "seatgate.adapters.pega",
    "seatgate.adapters.sap_c4c",
)
ENTRY_POINT_GROUP = "seatgate.adapters"
ENV_LOAD = "SEATGATE_LOAD_PLUGINS"
ENV_TRACE = "SEATGATE_TRACE_PLUGINS"
ENV_STRICT = "SEATGATE_STRICT_PLUGINS"
