"""The conformance kit against the ServiceNow adapter and its sandbox."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from seatgate.adapters.servicenow import plugin
from seatgate.adapters.servicenow.sandbox import SANDBOX
from seatgate.core.testing import AdapterConformance


class TestServiceNowConformance(AdapterConformance):
    plugin = plugin
    sandbox_class = SANDBOX
    products = ("servicenow",)
    skip_checks: ClassVar[Mapping[str, str]] = {
        "test_repeated_page_token": (
            "the Table API pages by sysparm_offset and X-Total-Count; there is no page token "
            "to repeat"
        ),
    }
