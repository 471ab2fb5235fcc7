"""The conformance kit against the Salesforce adapter and its sandbox, once per login flow."""

from __future__ import annotations

from types import MappingProxyType

from seatgate.adapters.salesforce import plugin
from seatgate.adapters.salesforce.sandbox import SANDBOX
from seatgate.core.testing import AdapterConformance


class TestSalesforcePasswordConformance(AdapterConformance):
    plugin = plugin
    sandbox_class = SANDBOX
    products = ("salesforce", "salesforce_voice")


class TestSalesforceSessionConformance(AdapterConformance):
    plugin = plugin
    sandbox_class = SANDBOX
    products = ("salesforce", "salesforce_voice")
    sandbox_kwargs = MappingProxyType({"auth": "session"})


class TestSalesforceJwtConformance(AdapterConformance):
    plugin = plugin
    sandbox_class = SANDBOX
    products = ("salesforce",)
    sandbox_kwargs = MappingProxyType({"auth": "jwt"})


class TestSalesforceClientCredentialsConformance(AdapterConformance):
    plugin = plugin
    sandbox_class = SANDBOX
    products = ("salesforce",)
    sandbox_kwargs = MappingProxyType({"auth": "client"})
