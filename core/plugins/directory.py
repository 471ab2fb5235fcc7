"""The adapter directory the services work through (:class:`~seatgate.core.services.ports.
AdapterDirectory`), over the plugin manager — and the products and gated features each adapter
declares, known without importing any CRM client library.

Importing an adapter imports its vendor client (simple-salesforce, pysnow, the HubSpot client):
about a second of a CLI command that needs none of them. So products and gated features come from
*declarations*, small modules of constants:

- a built-in adapter has ``seatgate.adapters.<name>.declaration`` (``NAME``, ``PRODUCTS``,
  ``FEATURES``);
- a third-party adapter may publish the same in the entry-point group :data:`DECLARATION_GROUP`
  (``name = "package.declaration"``); one that does not is loaded in full to learn them.

The full plugin manager is built the first time an adapter is used (a sync, an install).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..domain.vocabulary import PRODUCTS
from .config import ConfigSchema, Secret, mask_secrets, redact
from .names import BUILTIN_ADAPTERS, ENTRY_POINT_GROUP, ENV_LOAD

if TYPE_CHECKING:
    from .manager import AdapterHooks, Plugins
    from .retry import RequestContext

__all__ = ["DECLARATION_GROUP", "Declarations", "PluginDirectory"]

DECLARATION_GROUP = "seatgate.declarations"


class Declarations:
    """Products and gated features of the adapters, from their declaration modules."""

    def __init__(self, features: Mapping[str, frozenset[str]], complete: bool) -> None:
        self.features = dict(features)
        # False when an installed third-party adapter declares nothing: only loading it tells.
        self.complete = complete

    @classmethod
    def load(cls, builtins: Iterable[str] = BUILTIN_ADAPTERS) -> Declarations:
        raw = os.environ.get(ENV_LOAD)
        selected = None if raw is None else {p.strip() for p in raw.split(",") if p.strip()}
        features: dict[str, frozenset[str]] = {}
        for module_name in builtins:
            if selected is not None and module_name.rsplit(".", 1)[-1] not in selected:
                continue
            try:
                module = importlib.import_module(f"{module_name}.declaration")
            except ImportError:
                return cls({}, complete=False)
            features.update(_features_of(module))
        declared = {ep.name: ep for ep in importlib.metadata.entry_points(group=DECLARATION_GROUP)}
        complete = True
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if selected is not None and ep.name not in selected:
                continue
            dep = declared.get(ep.name)
            if dep is None:
                complete = False
                continue
            try:
                features.update(_features_of(dep.load()))
            except Exception:  # a broken declaration: the full load reports the adapter
                complete = False
        return cls(features, complete)


def _features_of(module: Any) -> dict[str, frozenset[str]]:
    declared = getattr(module, "FEATURES", {})
    return {str(p): frozenset(f) for p, f in dict(declared).items()}


class PluginDirectory:
    """:class:`~seatgate.core.services.ports.AdapterDirectory` over pluggy. The manager is built
    by ``plugins`` on first use; products and features come from the declarations when they are
    complete (``declarations=None``: from the loaded adapters, for a manager built in code)."""

    def __init__(
        self,
        plugins: Callable[[], Plugins],
        declarations: Callable[[], Declarations] | None = Declarations.load,
    ) -> None:
        self._plugins_factory = plugins
        self._declarations_factory = declarations
        self._declarations: Declarations | None = None
        self._features: dict[str, frozenset[str]] | None = None
        self._products: frozenset[str] | None = None

    @property
    def plugins(self) -> Plugins:
        return self._plugins_factory()

    def _declared(self) -> dict[str, frozenset[str]]:
        if self._features is None:
            if self._declarations is None:
                factory = self._declarations_factory
                self._declarations = factory() if factory else Declarations({}, complete=False)
            if self._declarations.complete:
                self._features = self._declarations.features
            else:
                self._features = {}
                for adapter in self.plugins.registry:
                    for product, features in adapter.info.features.items():
                        self._features[product] = frozenset(features)
        return self._features

    def products(self) -> frozenset[str]:
        if self._products is None:
            self._products = frozenset(PRODUCTS) | frozenset(self._declared())
        return self._products

    def gated_features(self, product: str) -> frozenset[str] | None:
        return self._declared().get(product)

    def adapter(self, product: str) -> AdapterHooks:
        return self.plugins.adapter(product)

    def request_context(self, retry: Any = None) -> RequestContext:
        from .retry import RequestContext, RetryPolicy

        return RequestContext(policy=retry if isinstance(retry, RetryPolicy) else RetryPolicy())

    def _schema(self, product: str) -> ConfigSchema:
        schema = self.adapter(product).adapter_info().config_schema
        assert isinstance(schema, ConfigSchema)
        return schema

    def validate_settings(
        self, product: str, raw: Mapping[str, Any], *, resolve_env: bool = True
    ) -> dict[str, Any]:
        return self._schema(product).validate(raw, resolve_env=resolve_env)

    def secret_fields(self, product: str) -> tuple[str, ...]:
        return tuple(f.name for f in self._schema(product).fields if f.secret)

    def redact(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        return redact(settings)

    def scrub(self, text: str, settings: Mapping[str, Any]) -> str:
        secret_names = [k for k, v in settings.items() if isinstance(v, Secret)]
        return mask_secrets(text, secret_names).replace("\n", " ")[:500]
