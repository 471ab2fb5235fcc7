"""Loading adapters and listeners, the adapter registry, and typed facades over ``pm.hook``.

* Built-in adapters (:data:`BUILTIN_ADAPTERS`) are registered as default plugins, the way datasette
  ships its own behaviour; each module exposes a module-level ``plugin``.
* Third-party adapters load from the entry-point group :data:`ENTRY_POINT_GROUP`, one at a time: a
  broken one (import error, hookimpl validation error, ``adapter_info`` raising or returning garbage)
  is reported in :attr:`Plugins.problems` and skipped, or raises :class:`PluginLoadError` in strict
  mode (``strict=True`` or ``SEATGATE_STRICT_PLUGINS=1``, which the tests use).
* ``SEATGATE_LOAD_PLUGINS=a,b`` loads only the named plugins (built-in short name, entry-point name
  or distribution name); set and empty, it loads none. ``SEATGATE_TRACE_PLUGINS=1`` writes every hook
  call and its result to the ``seatgate.plugins.trace`` logger.
* :class:`AdapterHooks` calls one adapter's plugin only (``pm.subset_hook_caller``);
  :class:`Listeners` calls each listener on its own, so one failure is logged and the rest still run.

Nothing is built at import time: :func:`build_plugin_manager` makes a fresh manager on each call.
"""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.metadata
import logging
import os
import types
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, cast, final

import attrs
import pluggy

from ..domain.events import (
    Event,
    Installed,
    PlanChanged,
    SeatsAssigned,
    SeatsUnassigned,
    SyncFinished,
    Uninstalled,
    UsersActivated,
)
from ..domain.records import FEATURES, AdapterInfo, AgentRecord, SyncSummary, UserPage
from ..errors import NotFound, SeatgateError
from ..services.ports import RequestStats
from . import hookspecs
from .config import ConfigSchema, references_shown
from .names import BUILTIN_ADAPTERS, ENTRY_POINT_GROUP, ENV_LOAD, ENV_STRICT, ENV_TRACE

__all__ = [
    "ADAPTER_HOOKS",
    "BUILTIN_ADAPTERS",
    "ENTRY_POINT_GROUP",
    "LISTENER_HOOKS",
    "AdapterHooks",
    "AdapterRegistry",
    "ListenerFailure",
    "Listeners",
    "LoadProblem",
    "PluginLoadError",
    "Plugins",
    "RegisteredAdapter",
    "build_plugin_manager",
    "validate_adapter_info",
]

logger = logging.getLogger("seatgate.plugins")
trace_logger = logging.getLogger("seatgate.plugins.trace")

ADAPTER_HOOKS: tuple[str, ...] = (
    "seatgate_adapter_info",
    "seatgate_check_connection",
    "seatgate_pull_users",
    "seatgate_install",
    "seatgate_uninstall",
)
# An adapter may leave install/uninstall out when the CRM side needs no preparation.
REQUIRED_ADAPTER_HOOKS: tuple[str, ...] = ADAPTER_HOOKS[:3]
LISTENER_HOOKS: tuple[str, ...] = (
    "seatgate_seats_changed",
    "seatgate_activation_reported",
    "seatgate_installed",
    "seatgate_uninstalled",
    "seatgate_plan_changed",
    "seatgate_event",
    "seatgate_events",
    "seatgate_agents_written",
    "seatgate_sync_finished",
)


class PluginLoadError(SeatgateError):
    """A plugin could not be loaded (raised in strict mode; otherwise reported and skipped)."""

    code = "plugin_load_error"

    def __init__(self, name: str, origin: str, reason: str) -> None:
        self.name = name
        self.origin = origin
        self.reason = reason
        super().__init__(f"plugin {name!r} ({origin}) was not loaded: {reason}")


@attrs.frozen
class LoadProblem:
    """A plugin that was skipped, and why."""

    name: str
    origin: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name} ({self.origin}): {self.reason}"


@attrs.frozen
class RegisteredAdapter:
    """One loaded adapter, as ``seatgate adapters list`` shows it."""

    plugin_name: str
    info: AdapterInfo
    origin: str  # "builtin", "local" (registered in code) or the distribution name
    plugin: Any = attrs.field(eq=False, repr=False)

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def products(self) -> tuple[str, ...]:
        return self.info.products

    def as_dict(self) -> dict[str, Any]:
        schema = self.info.config_schema
        return {
            "name": self.info.name,
            "products": list(self.info.products),
            "version": self.info.version,
            "features": {p: list(f) for p, f in self.info.features.items()},
            "config_schema": schema.as_dict() if isinstance(schema, ConfigSchema) else schema,
            "origin": self.origin,
            "supports_cursor": self.info.supports_cursor,
            "page_size": self.info.page_size,
        }


class AdapterRegistry:
    """product -> the adapter serving it."""

    def __init__(self) -> None:
        self._by_product: dict[str, RegisteredAdapter] = {}
        self._adapters: list[RegisteredAdapter] = []

    def add(self, adapter: RegisteredAdapter) -> None:
        self._adapters.append(adapter)
        for product in adapter.products:
            self._by_product[product] = adapter

    def owner_of(self, product: str) -> RegisteredAdapter | None:
        return self._by_product.get(product)

    def get(self, product: str) -> RegisteredAdapter:
        try:
            return self._by_product[product]
        except KeyError:
            known = ", ".join(sorted(self._by_product)) or "none loaded"
            raise NotFound("product", product, f"no adapter serves it (loaded: {known})") from None

    def __iter__(self) -> Iterator[RegisteredAdapter]:
        return iter(self._adapters)

    def __len__(self) -> int:
        return len(self._adapters)

    def __contains__(self, product: object) -> bool:
        return product in self._by_product

    @property
    def products(self) -> tuple[str, ...]:
        return tuple(sorted(self._by_product))


def validate_adapter_info(info: object, taken: Mapping[str, str] | None = None) -> AdapterInfo:
    """Check what ``seatgate_adapter_info`` returned; raise ValueError saying what is wrong.

    :param taken: product -> name of the adapter that already serves it.
    """
    if not isinstance(info, AdapterInfo):
        raise ValueError(f"seatgate_adapter_info returned {type(info).__name__}, not AdapterInfo")
    if not isinstance(info.name, str) or not info.name.isidentifier():
        raise ValueError(f"adapter name {info.name!r} is not an identifier")
    if not isinstance(info.version, str) or not info.version:
        raise ValueError("adapter version must be a non-empty string")
    products = info.products
    if (
        not isinstance(products, tuple)
        or not products
        or not all(isinstance(p, str) and p.isidentifier() for p in products)
        or len(set(products)) != len(products)
    ):
        raise ValueError(f"products must be a non-empty tuple of distinct names, got {products!r}")
    if not isinstance(info.features, Mapping):
        raise ValueError("features must map each product to its gated features")
    for product, features in info.features.items():
        if product not in products:
            raise ValueError(f"features name product {product!r}, which the adapter does not serve")
        unknown = sorted(set(features) - set(FEATURES))
        if unknown:
            raise ValueError(f"unknown gated feature {unknown[0]!r}: expected one of {FEATURES}")
    if not isinstance(info.config_schema, ConfigSchema):
        raise ValueError("config_schema must be a seatgate.core.config.ConfigSchema")
    try:
        info.config_schema.validate(info.example_config, resolve_env=False)
    except SeatgateError as exc:
        raise ValueError(f"example_config does not pass the schema: {exc}") from None
    if not isinstance(info.page_size, int) or info.page_size < 1:
        raise ValueError(f"page_size must be a positive integer, got {info.page_size!r}")
    for product in products:
        owner = (taken or {}).get(product)
        if owner is not None:
            raise ValueError(f"product {product!r} is already served by adapter {owner!r}")
    return info


def _check_no_defaults(pm: pluggy.PluginManager, plugin: object) -> None:
    # pluggy never passes an argument that has a default in the hookimpl (it is not in argnames):
    # the implementation would silently run on its default. Refuse it at registration instead.
    for caller in pm.get_hookcallers(plugin) or ():
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin and impl.kwargnames:
                raise ValueError(
                    f"hookimpl {caller.name} gives defaults to {', '.join(impl.kwargnames)}; "
                    "pluggy never passes such arguments: remove the defaults"
                )


def _implemented(pm: pluggy.PluginManager, plugin: object) -> set[str]:
    return {caller.name for caller in pm.get_hookcallers(plugin) or ()}


def _references_shown(pages: Iterator[UserPage], settings: Mapping[str, Any]) -> Iterator[UserPage]:
    with references_shown(settings):
        yield from pages


@final
class AdapterHooks:
    """Typed calls to one adapter's plugin, and to no other (``pm.subset_hook_caller``)."""

    def __init__(self, pm: pluggy.PluginManager, adapter: RegisteredAdapter) -> None:
        self.adapter = adapter
        others = [p for p in pm.get_plugins() if p is not adapter.plugin]
        self._callers = {name: pm.subset_hook_caller(name, others) for name in ADAPTER_HOOKS}

    def __repr__(self) -> str:
        return f"AdapterHooks({self.adapter.name!r})"

    def _missing(self, hook: str) -> SeatgateError:
        return SeatgateError(f"adapter {self.adapter.name!r} does not implement {hook}")

    def adapter_info(self) -> AdapterInfo:
        info = self._callers["seatgate_adapter_info"]()
        if info is None:
            raise self._missing("seatgate_adapter_info")
        return cast(AdapterInfo, info)

    def check_connection(
        self, product: str, settings: Mapping[str, Any], ctx: RequestStats
    ) -> bool:
        with references_shown(settings):
            ok = self._callers["seatgate_check_connection"](
                product=product, settings=settings, ctx=ctx
            )
        if ok is None:
            raise self._missing("seatgate_check_connection")
        return bool(ok)

    def pull_users(
        self,
        product: str,
        settings: Mapping[str, Any],
        since: dt.datetime | None,
        ctx: RequestStats,
        activated_roles: Iterable[str] = (),
    ) -> Iterator[UserPage]:
        with references_shown(settings):
            pages = self._callers["seatgate_pull_users"](
                product=product,
                settings=settings,
                since=since,
                ctx=ctx,
                activated_roles=frozenset(activated_roles),
            )
        if pages is None:
            raise self._missing("seatgate_pull_users")
        return _references_shown(cast(Iterator[UserPage], iter(pages)), settings)

    def install(self, account: str, product: str, settings: Mapping[str, Any]) -> bool:
        with references_shown(settings):
            done = self._callers["seatgate_install"](
                account=account, product=product, settings=settings
            )
        # No implementation means the CRM side needs no preparation.
        return True if done is None else bool(done)

    def uninstall(self, account: str, product: str, settings: Mapping[str, Any]) -> bool:
        with references_shown(settings):
            done = self._callers["seatgate_uninstall"](
                account=account, product=product, settings=settings
            )
        return True if done is None else bool(done)


@attrs.frozen
class ListenerFailure:
    """A listener that raised; the others still ran."""

    hook: str
    plugin_name: str
    error: BaseException


@final
class Listeners:
    """Typed broadcast calls; each listener is called on its own so one failure stops no other."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._pm = pm

    def _broadcast(self, hook: str, **kwargs: Any) -> list[ListenerFailure]:
        pm = self._pm
        caller: pluggy.HookCaller = getattr(pm.hook, hook)
        # Implementations in call order (pluggy calls the list from the end), one plugin at a time.
        plugins = []
        for impl in reversed(caller.get_hookimpls()):
            if impl.plugin not in plugins:
                plugins.append(impl.plugin)
        failures = []
        for plugin in plugins:
            name = pm.get_name(plugin) or repr(plugin)
            others = [p for p in pm.get_plugins() if p is not plugin]
            try:
                pm.subset_hook_caller(hook, others)(**kwargs)
            except Exception as exc:
                logger.exception(
                    "listener %s failed in %s; the other listeners still ran", name, hook
                )
                failures.append(ListenerFailure(hook, name, exc))
        return failures

    def seats_changed(
        self,
        account: str,
        product: str,
        assigned: Sequence[str],
        unassigned: Sequence[str],
        at: dt.datetime,
    ) -> list[ListenerFailure]:
        return self._broadcast(
            "seatgate_seats_changed",
            account=account,
            product=product,
            assigned=assigned,
            unassigned=unassigned,
            at=at,
        )

    def activation_reported(
        self, account: str, product: str, emails: Sequence[str], at: dt.datetime
    ) -> list[ListenerFailure]:
        return self._broadcast(
            "seatgate_activation_reported", account=account, product=product, emails=emails, at=at
        )

    def installed(
        self, account: str, product: str, actor: str, at: dt.datetime
    ) -> list[ListenerFailure]:
        return self._broadcast(
            "seatgate_installed", account=account, product=product, actor=actor, at=at
        )

    def uninstalled(
        self, account: str, product: str, actor: str, at: dt.datetime, effective: dt.date
    ) -> list[ListenerFailure]:
        return self._broadcast(
            "seatgate_uninstalled",
            account=account,
            product=product,
            actor=actor,
            at=at,
            effective=effective,
        )

    def agents_written(
        self, account: str, product: str, agents: Sequence[AgentRecord], at: dt.datetime
    ) -> list[ListenerFailure]:
        return self._broadcast(
            "seatgate_agents_written", account=account, product=product, agents=agents, at=at
        )

    def sync_finished(self, summary: SyncSummary) -> list[ListenerFailure]:
        return self._broadcast("seatgate_sync_finished", summary=summary)

    def plan_changed(
        self, account: str, product: str, actor: str, at: dt.datetime, from_plan: str, to_plan: str
    ) -> list[ListenerFailure]:
        return self._broadcast(
            "seatgate_plan_changed",
            account=account,
            product=product,
            actor=actor,
            at=at,
            from_plan=from_plan,
            to_plan=to_plan,
        )

    def event(self, event: Event) -> list[ListenerFailure]:
        return self._broadcast("seatgate_event", event=event)

    def publish(self, events: Sequence[Event]) -> None:
        """The publisher port: each event to the hook of its kind, then to ``seatgate_event``;
        then the whole batch to ``seatgate_events``."""
        for event in events:
            self._specific(event)
            self.event(event)
        if events:
            self._broadcast("seatgate_events", events=list(events))

    def _specific(self, e: Event) -> None:
        if isinstance(e, SeatsAssigned):
            self.seats_changed(e.account, e.product, e.emails, (), e.at)
        elif isinstance(e, SeatsUnassigned):
            self.seats_changed(e.account, e.product, (), e.emails, e.at)
        elif isinstance(e, UsersActivated):
            self.activation_reported(e.account, e.product, e.emails, e.at)
        elif isinstance(e, Installed):
            self.installed(e.account, e.product, e.actor, e.at)
        elif isinstance(e, Uninstalled):
            self.uninstalled(e.account, e.product, e.actor, e.at, e.effective)
        elif isinstance(e, PlanChanged):
            self.plan_changed(e.account, e.product, e.actor, e.at, e.from_plan, e.to_plan)
        elif isinstance(e, SyncFinished):
            self.sync_finished(
                SyncSummary(
                    account=e.account,
                    product=e.product,
                    outcome=e.outcome,
                    full=e.full,
                    started_at=e.at,
                    seconds=e.seconds,
                    pulled=e.pulled,
                    created=e.created,
                    updated=e.updated,
                    deactivated=e.deactivated,
                    quarantined=e.quarantined,
                    seated=e.seated,
                    gated=e.gated,
                    agents_synced=e.agents_synced,
                    requests=e.requests,
                    retries=e.retries,
                    message=e.message,
                )
            )


@final
class Plugins:
    """The loaded plugin manager, its adapter registry and what was skipped."""

    def __init__(self, pm: pluggy.PluginManager, *, strict: bool) -> None:
        self.pm = pm
        self.strict = strict
        self._registry = AdapterRegistry()
        self.problems: list[LoadProblem] = []
        self.listeners = Listeners(pm)
        self._hooks: dict[str, AdapterHooks] = {}
        # Built-in adapters registered on first need (their client libraries are slow to import;
        # a check or a listener call needs none of them).
        self._pending: list[str] = []

    @property
    def registry(self) -> AdapterRegistry:
        """The loaded adapters (loading the built-in ones still pending)."""
        while self._pending:
            self.load_builtin(self._pending.pop(0))
        return self._registry

    def adapter(self, product: str) -> AdapterHooks:
        """The hooks of the adapter serving ``product`` (raises NotFound when none does)."""
        registered = self.registry.get(product)
        hooks = self._hooks.get(registered.plugin_name)
        if hooks is None:
            hooks = self._hooks[registered.plugin_name] = AdapterHooks(self.pm, registered)
        return hooks

    def register(
        self, plugin: object, name: str, origin: str = "local"
    ) -> RegisteredAdapter | None:
        """Register one plugin and validate it; on failure unregister it and report or raise.

        Returns the adapter it registered, or None for a listener-only plugin or a skipped one.
        """
        try:
            return self._register(plugin, name, origin)
        except Exception as exc:
            self._skip(name, origin, _reason(exc))
            return None

    def _register(self, plugin: object, name: str, origin: str) -> RegisteredAdapter | None:
        pm = self.pm
        pm.register(plugin, name=name)
        self._hooks.clear()  # subset callers list "the other plugins"; rebuild them lazily
        try:
            pm.check_pending()  # a hookimpl for a hook that does not exist
            _check_no_defaults(pm, plugin)
            implemented = _implemented(pm, plugin)
            if not implemented & set(ADAPTER_HOOKS):
                return None  # a listener
            missing = [h for h in REQUIRED_ADAPTER_HOOKS if h not in implemented]
            if missing:
                raise ValueError(f"an adapter must implement {', '.join(missing)}")
            others = [p for p in pm.get_plugins() if p is not plugin]
            raw = pm.subset_hook_caller("seatgate_adapter_info", others)()
            taken = {p: a.name for a in self._registry for p in a.products}
            info = validate_adapter_info(raw, taken)
        except BaseException:
            pm.unregister(plugin)
            raise
        adapter = RegisteredAdapter(plugin_name=name, info=info, origin=origin, plugin=plugin)
        self._registry.add(adapter)
        return adapter

    def _skip(self, name: str, origin: str, reason: str) -> None:
        if self.strict:
            raise PluginLoadError(name, origin, reason)
        problem = LoadProblem(name, origin, reason)
        self.problems.append(problem)
        logger.warning("plugin %s skipped; fix it or uninstall it", problem)

    def load_builtin(self, module_name: str) -> None:
        short = module_name.rsplit(".", 1)[-1]
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            self._skip(short, "builtin", _reason(exc))
            return
        plugin = getattr(module, "plugin", None)
        if plugin is None:
            self._skip(short, "builtin", f"{module_name} has no module-level `plugin`")
            return
        self.register(plugin, short, "builtin")

    def load_entry_point(self, ep: importlib.metadata.EntryPoint) -> None:
        dist = ep.dist.name if ep.dist is not None else ep.value
        try:
            loaded = ep.load()
        except Exception as exc:
            self._skip(ep.name, dist, _reason(exc))
            return
        # The entry point may name the plugin object or a module that exposes one as `plugin`.
        if isinstance(loaded, types.ModuleType) and hasattr(loaded, "plugin"):
            loaded = loaded.plugin
        self.register(loaded, ep.name, dist)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _selected() -> set[str] | None:
    raw = os.environ.get(ENV_LOAD)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _enable_trace(pm: pluggy.PluginManager) -> None:
    def before(hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
        # Arguments are logged by name only: settings carry credentials (wrapped, but still).
        trace_logger.info(
            "%s(%s) -> %s", hook_name, ", ".join(kwargs), ", ".join(i.plugin_name for i in impls)
        )

    def after(
        outcome: pluggy.Result[Any],
        hook_name: str,
        impls: Sequence[pluggy.HookImpl],
        kwargs: Mapping[str, Any],
    ) -> None:
        error = outcome.exception
        if error is not None:
            trace_logger.info("%s raised %s", hook_name, type(error).__name__)
        else:
            trace_logger.info("%s returned %s", hook_name, type(outcome.get_result()).__name__)

    pm.add_hookcall_monitoring(before, after)


def build_plugin_manager(
    *,
    builtins: Iterable[str] = BUILTIN_ADAPTERS,
    entry_points: bool = True,
    plugins: Iterable[tuple[str, object]] = (),
    strict: bool | None = None,
    trace: bool | None = None,
    lazy: bool = False,
) -> Plugins:
    """Make a plugin manager with the hookspecs, the built-in adapters and the installed ones.

    :param builtins: module names of the built-in adapters (each has a module-level ``plugin``).
    :param entry_points: load third-party adapters from :data:`ENTRY_POINT_GROUP`.
    :param plugins: more ``(name, plugin)`` pairs registered in code (origin ``"local"``).
    :param strict: raise on the first broken plugin; default from ``SEATGATE_STRICT_PLUGINS``.
    :param trace: log every hook call; default from ``SEATGATE_TRACE_PLUGINS``.
    :param lazy: register the built-in adapters on first need (``registry``, ``adapter()``).
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    loaded = Plugins(pm, strict=_env_flag(ENV_STRICT) if strict is None else strict)
    if _env_flag(ENV_TRACE) if trace is None else trace:
        _enable_trace(pm)
    selected = _selected()
    for module_name in builtins:
        if selected is None or module_name.rsplit(".", 1)[-1] in selected:
            if lazy:
                loaded._pending.append(module_name)
            else:
                loaded.load_builtin(module_name)
    if entry_points:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist is not None else ""
            if selected is None or ep.name in selected or dist in selected:
                loaded.load_entry_point(ep)
    for name, plugin in plugins:
        loaded.register(plugin, name, "local")
    return loaded
