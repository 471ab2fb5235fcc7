"""The conformance kit against the SAP Cloud for Customer adapter and its sandbox, with Basic
auth and with a bearer token."""

from __future__ import annotations

from types import MappingProxyType

from seatgate.adapters.sap_c4c import plugin
from seatgate.adapters.sap_c4c.sandbox import SANDBOX
from seatgate.core.testing import AdapterConformance


class TestSapC4CConformance(AdapterConformance):
    plugin = plugin
    sandbox_class = SANDBOX
    products = ("sap_c4c",)


class TestSapC4CBearerConformance(AdapterConformance):
    plugin = plugin
    sandbox_class = SANDBOX
    products = ("sap_c4c",)
    sandbox_kwargs = MappingProxyType({"auth": "bearer"})
