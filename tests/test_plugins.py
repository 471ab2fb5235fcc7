"""Loading adapters, the registry, the typed facades, and the pluggy traps they guard against."""

from __future__ import annotations

import datetime as dt
import logging
import sys
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from seatgate.core.errors import NotFound
from seatgate.core.plugins import (
    AdapterInfo,
    ConfigSchema,
    ExternalUser,
    Field,
    RequestContext,
    SyncSummary,
    UserPage,
    hookimpl,
)
from seatgate.core.plugins.manager import (
    BUILTIN_ADAPTERS,
    PluginLoadError,
    Plugins,
    build_plugin_manager,
)
from seatgate.core.testing.memory import MemoryAdapter

AT = dt.datetime(2026, 3, 16, tzinfo=dt.UTC)
SCHEMA = ConfigSchema(fields=(Field("token", required=True, secret=True),))


class FakeAdapter:
    """An adapter that records which of its hooks were called."""

    def __init__(self, name: str, products: tuple[str, ...]) -> None:
        self.name = name
        self.products = products
        self.calls: list[str] = []

    @hookimpl
    def seatgate_adapter_info(self) -> AdapterInfo:
        return AdapterInfo(
            name=self.name,
            products=self.products,
            version="0.1",
            features={p: ("cti",) for p in self.products},
            config_schema=SCHEMA,
            example_config={"token": "t"},
        )

    @hookimpl
    def seatgate_check_connection(
        self, product: str, settings: Mapping[str, Any], ctx: RequestContext
    ) -> bool:
        self.calls.append(f"check:{product}")
        return True

    @hookimpl
    def seatgate_pull_users(
        self,
        product: str,
        settings: Mapping[str, Any],
        since: dt.datetime | None,
        ctx: RequestContext,
    ) -> Iterator[UserPage]:
        self.calls.append(f"pull:{product}")
        return iter([UserPage([ExternalUser(f"{self.name}-1", f"a@{self.name}.example")])])

    @hookimpl
    def seatgate_install(self, account: str, product: str, settings: Mapping[str, Any]) -> bool:
        self.calls.append(f"install:{account}")
        return True


def build(*plugins: tuple[str, object], strict: bool | None = False) -> Plugins:
    return build_plugin_manager(
        builtins=(), entry_points=False, plugins=list(plugins), strict=strict
    )


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SEATGATE_STRICT_PLUGINS", "SEATGATE_LOAD_PLUGINS", "SEATGATE_TRACE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path where tests install distributions with entry points."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    yield root
    for name in [m for m in sys.modules if m.startswith("sgtest_")]:
        del sys.modules[name]


def install_dist(
    site: Path, dist: str, entry_points: Mapping[str, str], modules: Mapping[str, str]
) -> None:
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[seatgate.adapters]\n{lines}")


ACME_MODULE = """
    import attrs
    from seatgate.core.plugins import hookimpl
    from seatgate.core.testing.memory import MemoryAdapter

    class Acme(MemoryAdapter):
        @hookimpl
        def seatgate_adapter_info(self):
            info = MemoryAdapter.seatgate_adapter_info(self)
            return attrs.evolve(info, name="acme", products=("acme",), features={"acme": ("cti",)})

    plugin = Acme()
"""


# -- loading -----------------------------------------------------------------------------------------


def test_entry_point_adapter_is_registered_with_its_distribution(site: Path) -> None:
    install_dist(site, "acme-seatgate", {"acme": "sgtest_acme"}, {"sgtest_acme": ACME_MODULE})
    plugins = build_plugin_manager(builtins=(), strict=True)
    adapter = plugins.registry.get("acme")
    assert (adapter.name, adapter.origin) == ("acme", "acme-seatgate")
    assert adapter.as_dict()["config_schema"]["fields"][0]["name"] == "instance"


def test_broken_entry_points_are_reported_and_skipped(site: Path) -> None:
    install_dist(
        site,
        "mixed-bag",
        {
            "missing": "sgtest_no_such_module",
            "boom": "sgtest_boom",
            "garbage": "sgtest_garbage:plugin",
            "acme": "sgtest_acme",
        },
        {
            "sgtest_boom": "raise RuntimeError('import-time failure')\n",
            "sgtest_garbage": """
                from seatgate.core.plugins import hookimpl
                from seatgate.core.testing.memory import MemoryAdapter

                class Garbage(MemoryAdapter):
                    @hookimpl
                    def seatgate_adapter_info(self):
                        return {"name": "garbage"}

                plugin = Garbage()
            """,
            "sgtest_acme": ACME_MODULE,
        },
    )
    plugins = build_plugin_manager(builtins=(), strict=False)
    problems = {p.name: p for p in plugins.problems}
    assert set(problems) == {"missing", "boom", "garbage"}
    assert "ModuleNotFoundError" in problems["missing"].reason
    assert "import-time failure" in problems["boom"].reason
    assert "not AdapterInfo" in problems["garbage"].reason
    assert all(p.origin == "mixed-bag" for p in problems.values())
    assert plugins.registry.products == ("acme",)  # the good one still loaded
    # The skipped ones left no hookimpl behind.
    assert [plugins.pm.get_name(p) for p in plugins.pm.get_plugins()] == ["acme"]


def test_strict_mode_raises_on_a_broken_entry_point(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_dist(site, "broken-dist", {"broken": "sgtest_no_such_module"}, {})
    with pytest.raises(PluginLoadError, match=r"plugin 'broken' \(broken-dist\) was not loaded"):
        build_plugin_manager(builtins=(), strict=True)
    monkeypatch.setenv("SEATGATE_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError):
        build_plugin_manager(builtins=())


def test_missing_builtin_is_reported_like_a_broken_plugin() -> None:
    plugins = build_plugin_manager(
        builtins=("seatgate.adapters.not_written_yet",), entry_points=False, strict=False
    )
    assert [(p.name, p.origin) for p in plugins.problems] == [("not_written_yet", "builtin")]
    assert "ModuleNotFoundError" in plugins.problems[0].reason
    with pytest.raises(PluginLoadError):
        build_plugin_manager(
            builtins=("seatgate.adapters.not_written_yet",), entry_points=False, strict=True
        )


def test_builtin_adapters_load_as_default_plugins() -> None:
    plugins = build_plugin_manager(entry_points=False, strict=False)
    loaded = {a.plugin_name for a in plugins.registry}
    skipped = {p.name for p in plugins.problems}
    # Adapters land during development: each built-in either loaded or says why it did not.
    assert loaded | skipped == {m.rsplit(".", 1)[1] for m in BUILTIN_ADAPTERS}
    assert all(a.origin == "builtin" for a in plugins.registry)


def test_load_switch_chooses_plugins(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_dist(site, "acme-seatgate", {"acme": "sgtest_acme"}, {"sgtest_acme": ACME_MODULE})
    install_dist(site, "broken-dist", {"broken": "sgtest_no_such_module"}, {})
    monkeypatch.setenv("SEATGATE_LOAD_PLUGINS", "acme-seatgate")
    plugins = build_plugin_manager(builtins=BUILTIN_ADAPTERS, strict=True)
    assert plugins.registry.products == ("acme",)
    monkeypatch.setenv("SEATGATE_LOAD_PLUGINS", "")
    assert len(build_plugin_manager(strict=True).registry) == 0


def test_unknown_product_is_a_clear_error() -> None:
    plugins = build(("memory", MemoryAdapter()))
    with pytest.raises(NotFound, match="no adapter serves it"):
        plugins.adapter("salesforce")


# -- validation at registration ----------------------------------------------------------------------


class DefaultedAdapter(FakeAdapter):
    @hookimpl
    def seatgate_pull_users(  # type: ignore[override]
        self,
        product: str,
        settings: Mapping[str, Any],
        since: dt.datetime | None,
        ctx: RequestContext | None = None,
    ) -> Iterator[UserPage]:
        return iter([])


def test_hookimpl_with_defaults_is_refused() -> None:
    # pluggy would call this with ctx never passed: the adapter would silently run without retries.
    plugins = build(("defaulted", DefaultedAdapter("defaulted", ("d",))))
    assert len(plugins.registry) == 0
    [problem] = plugins.problems
    assert "seatgate_pull_users gives defaults to ctx" in problem.reason
    with pytest.raises(PluginLoadError, match="remove the defaults"):
        build(("defaulted", DefaultedAdapter("defaulted", ("d",))), strict=True)


class UnknownHook(FakeAdapter):
    @hookimpl
    def seatgate_pull_agents(self, product: str) -> None:
        return None


class NoPull:
    @hookimpl
    def seatgate_adapter_info(self) -> AdapterInfo:
        return FakeAdapter("nopull", ("np",)).seatgate_adapter_info()


class RaisingInfo(FakeAdapter):
    @hookimpl
    def seatgate_adapter_info(self) -> AdapterInfo:
        raise RuntimeError("info exploded")


class BadFeature(FakeAdapter):
    @hookimpl
    def seatgate_adapter_info(self) -> AdapterInfo:
        info = super().seatgate_adapter_info()
        return AdapterInfo(**{**_fields(info), "features": {"bf": ("teleport",)}})


def _fields(info: AdapterInfo) -> dict[str, Any]:
    import attrs

    return attrs.asdict(info, recurse=False)


@pytest.mark.parametrize(
    ("plugin", "reason"),
    [
        (UnknownHook("u", ("u",)), "unknown hook 'seatgate_pull_agents'"),
        (NoPull(), "an adapter must implement seatgate_check_connection, seatgate_pull_users"),
        (RaisingInfo("r", ("r",)), "RuntimeError: info exploded"),
        (BadFeature("bf", ("bf",)), "unknown gated feature 'teleport'"),
    ],
)
def test_invalid_adapters_are_skipped(plugin: object, reason: str) -> None:
    plugins = build(("bad", plugin), ("memory", MemoryAdapter()))
    [problem] = plugins.problems
    assert reason in problem.reason
    assert plugins.registry.products == ("memory",)
    assert plugins.pm.get_plugin("bad") is None


def test_a_product_served_twice_is_refused() -> None:
    plugins = build(("one", FakeAdapter("one", ("x",))), ("two", FakeAdapter("two", ("x", "y"))))
    assert plugins.registry.get("x").name == "one"
    assert "y" not in plugins.registry
    assert "already served by adapter 'one'" in plugins.problems[0].reason


# -- the adapter facade ------------------------------------------------------------------------------


def test_a_call_for_one_connector_reaches_its_plugin_only() -> None:
    one, two = FakeAdapter("one", ("p1",)), FakeAdapter("two", ("p2", "p3"))
    plugins = build(("one", one), ("two", two), strict=True)
    ctx = RequestContext()
    hooks = plugins.adapter("p3")
    assert hooks.adapter_info().name == "two"
    assert hooks.check_connection("p3", {}, ctx) is True
    pages = list(hooks.pull_users("p3", {}, None, ctx))
    assert [u.external_id for p in pages for u in p.users] == ["two-1"]
    assert hooks.install("acct", "p3", {}) is True
    assert hooks.uninstall("acct", "p3", {}) is True  # not implemented: nothing to undo
    assert two.calls == ["check:p3", "pull:p3", "install:acct"]
    assert one.calls == []
    assert plugins.adapter("p1").check_connection("p1", {}, ctx) is True
    assert one.calls == ["check:p1"]
    assert two.calls == ["check:p3", "pull:p3", "install:acct"]


# -- listeners ---------------------------------------------------------------------------------------


class Listener:
    def __init__(self, log: list[str], name: str, fail: bool = False) -> None:
        self.log, self.name, self.fail = log, name, fail

    @hookimpl
    def seatgate_installed(self, account: str, product: str, actor: str, at: dt.datetime) -> None:
        self.log.append(f"{self.name}:{account}:{product}:{actor}")
        if self.fail:
            raise RuntimeError(f"{self.name} is down")

    @hookimpl
    def seatgate_sync_finished(self, summary: SyncSummary) -> None:
        self.log.append(f"{self.name}:{summary.outcome}")
        if self.fail:
            raise ValueError("bad summary")


def test_one_listener_failing_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    log: list[str] = []
    plugins = build(
        ("billing", Listener(log, "billing")),
        ("audit", Listener(log, "audit", fail=True)),
        ("metrics", Listener(log, "metrics")),
        strict=True,
    )
    assert len(plugins.registry) == 0  # listeners are not adapters
    with caplog.at_level(logging.ERROR, logger="seatgate.plugins"):
        failures = plugins.listeners.installed("acct", "hubspot", "ann@example.com", AT)
    assert sorted(log) == [
        "audit:acct:hubspot:ann@example.com",
        "billing:acct:hubspot:ann@example.com",
        "metrics:acct:hubspot:ann@example.com",
    ]
    assert [(f.plugin_name, str(f.error)) for f in failures] == [("audit", "audit is down")]
    assert "listener audit failed in seatgate_installed" in caplog.text

    summary = SyncSummary("acct", "hubspot", "succeeded", True, AT, 0.5)
    log.clear()
    failures = plugins.listeners.sync_finished(summary)
    assert sorted(log) == ["audit:succeeded", "billing:succeeded", "metrics:succeeded"]
    assert [f.plugin_name for f in failures] == ["audit"]


def test_listeners_with_no_implementation_is_a_no_op() -> None:
    plugins = build(("memory", MemoryAdapter()))
    assert plugins.listeners.activation_reported("acct", "memory", ["a@example.com"], AT) == []


def test_trace_switch_logs_hook_calls(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SEATGATE_TRACE_PLUGINS", "1")
    plugins = build(("one", FakeAdapter("one", ("p1",))))
    with caplog.at_level(logging.INFO, logger="seatgate.plugins.trace"):
        plugins.adapter("p1").check_connection("p1", {"token": "hunter2-secret"}, RequestContext())
    assert "seatgate_check_connection(product, settings, ctx) -> one" in caplog.text
    assert "seatgate_check_connection returned bool" in caplog.text
    assert "hunter2" not in caplog.text
