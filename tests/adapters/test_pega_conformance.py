"""The conformance kit against the Pega adapter and its sandbox: keyset paging (the default) and
page numbers, with and without ``hasMoreResults`` in the answer."""

from __future__ import annotations

from types import MappingProxyType

from seatgate.adapters.pega import plugin
from seatgate.adapters.pega.sandbox import SANDBOX
from seatgate.core.testing import AdapterConformance


class TestPegaConformance(AdapterConformance):
    plugin = plugin
    sandbox_class = SANDBOX
    products = ("pega",)


class TestPegaOlderAnswersConformance(AdapterConformance):
    """A Pega that sends no hasMoreResults: a page shorter than pageSize ends the pull."""

    plugin = plugin
    sandbox_class = SANDBOX
    products = ("pega",)
    sandbox_kwargs = MappingProxyType({"has_more_results": False, "stamp_format": "iso"})


class PageNumberSandbox(SANDBOX):  # type: ignore[misc,valid-type]
    """The sandbox, with settings that page by page number."""

    def settings(self) -> dict[str, object]:
        return {**super().settings(), "paging": "page_number"}


class TestPegaPageNumberConformance(AdapterConformance):
    plugin = plugin
    sandbox_class = PageNumberSandbox
    products = ("pega",)
