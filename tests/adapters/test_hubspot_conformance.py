"""The conformance kit against the HubSpot adapter and its sandbox (private app token)."""

from __future__ import annotations

from types import MappingProxyType

from seatgate.adapters.hubspot import plugin
from seatgate.adapters.hubspot.sandbox import SANDBOX
from seatgate.core.testing import AdapterConformance


class TestHubSpotConformance(AdapterConformance):
    plugin = plugin
    sandbox_class = SANDBOX
    products = ("hubspot",)


class TestHubSpotOAuthConformance(AdapterConformance):
    plugin = plugin
    sandbox_class = SANDBOX
    products = ("hubspot",)
    sandbox_kwargs = MappingProxyType({"auth": "oauth"})
