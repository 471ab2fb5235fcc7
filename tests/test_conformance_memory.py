"""The conformance kit against the in-memory adapter; and how the kit treats skips."""

from __future__ import annotations

import pytest

from seatgate.core.plugins import RequestContext
from seatgate.core.plugins.manager import build_plugin_manager
from seatgate.core.testing import AdapterConformance
from seatgate.core.testing.memory import MemoryAdapter, MemorySandbox

pytest_plugins = ["pytester"]


class TestMemoryConformance(AdapterConformance):
    plugin = MemoryAdapter()
    sandbox_class = MemorySandbox
    products = ("memory",)


def test_skip_reason_reaches_the_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from seatgate.core.testing import AdapterConformance
        from seatgate.core.testing.memory import MemoryAdapter, MemorySandbox

        class TestMem(AdapterConformance):
            plugin = MemoryAdapter()
            sandbox_class = MemorySandbox
            skip_checks = {"test_far_future_since": "the CRM refuses dates in the future"}
        """
    )
    result = pytester.runpytest("-rs", "-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=len(_checks()) - 1, skipped=1)
    result.stdout.fnmatch_lines(["*the CRM refuses dates in the future*"])


def _checks() -> list[str]:
    return [n for n in dir(AdapterConformance) if n.startswith("test_")]


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_skip_without_reason_is_refused(reason: object) -> None:
    with pytest.raises(TypeError, match="has no reason"):
        type(
            "TestNoReason",
            (AdapterConformance,),
            {"skip_checks": {"test_malformed_page": reason}},
        )


def test_skip_of_unknown_check_is_refused() -> None:
    with pytest.raises(TypeError, match="not a check"):
        type("TestTypo", (AdapterConformance,), {"skip_checks": {"test_malformd": "typo"}})


def test_kit_fails_a_broken_adapter(pytester: pytest.Pytester) -> None:
    """The kit can fail: a key in an error, and a pull that ignores `since`, are caught."""
    pytester.makepyfile(
        """
        from seatgate.core.errors import AuthFailed
        from seatgate.core.plugins import hookimpl
        from seatgate.core.testing import AdapterConformance
        from seatgate.core.testing.memory import MemoryAdapter, MemorySandbox

        class Broken(MemoryAdapter):
            @hookimpl
            def seatgate_check_connection(self, product, settings, ctx):
                raise AuthFailed("refused key " + settings["api_key"].reveal())

            @hookimpl
            def seatgate_pull_users(self, product, settings, since, ctx):
                return MemoryAdapter.seatgate_pull_users(self, product, settings, None, ctx)

        class TestBroken(AdapterConformance):
            plugin = Broken()
            sandbox_class = MemorySandbox
        """
    )
    recorder = pytester.inline_run("-p", "no:cacheprovider", "-k", "secret or since or increm")
    _, _, failures = recorder.listoutcomes()
    failed = {r.nodeid.split("::")[-1] for r in failures}
    assert failed == {
        "test_far_future_since[memory]",
        "test_incremental_pull[memory]",
        "test_secret_never_leaks[memory]",
    }


def test_memory_pull_of_100k_users_is_streamed_in_full_pages() -> None:
    # How fast is bench/sync_engine.py's to say: a test asserts no time.
    plugins = build_plugin_manager(
        builtins=(), entry_points=False, plugins=[("memory", MemoryAdapter())], strict=True
    )
    crm = MemorySandbox(users=100_000)
    info = plugins.registry.get("memory").info
    settings = info.config_schema.validate(crm.settings())
    pulled = 0
    pages = 0
    for page in plugins.adapter("memory").pull_users("memory", settings, None, RequestContext()):
        pulled += len(page.users)
        pages += 1
    assert pulled == 100_000
    assert pages == 100  # streamed at the largest page size, not one list
