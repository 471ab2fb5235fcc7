"""The conformance kit against the ServiceNow adapter and its sandbox."""

from __future__ import annotations

from seatgate.adapters.servicenow import plugin
from seatgate.adapters.servicenow.sandbox import SANDBOX
from seatgate.core.testing import AdapterConformance


class TestServiceNowConformance(AdapterConformance):
    plugin = plugin
    sandbox_class = SANDBOX
    products = ("servicenow",)
