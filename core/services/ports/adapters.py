"""The adapter port: the CRM plugins, as the services see them (one product's adapter at a time)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

from ...domain.records import AdapterInfo, UserPage

__all__ = ["AdapterDirectory", "ConnectorAdapter", "RequestStats"]


class RequestStats(Protocol):
    """Counts of one run's calls to a CRM (the request context an adapter is handed)."""

    requests: int
    retries: int


class ConnectorAdapter(Protocol):
    """The adapter serving one product; every call reaches that adapter's plugin only."""

    def adapter_info(self) -> AdapterInfo: ...

    def check_connection(
        self, product: str, settings: Mapping[str, Any], ctx: RequestStats
    ) -> bool: ...

    def pull_users(
        self,
        product: str,
        settings: Mapping[str, Any],
        since: dt.datetime | None,
        ctx: RequestStats,
        activated_roles: Iterable[str] = (),
    ) -> Iterator[UserPage]: ...

    def install(self, account: str, product: str, settings: Mapping[str, Any]) -> bool: ...

    def uninstall(self, account: str, product: str, settings: Mapping[str, Any]) -> bool: ...


class AdapterDirectory(Protocol):
    """Which products have an adapter, what each gates, and the settings machinery."""

    def products(self) -> frozenset[str]:
        """The seven products of seed 000 plus whatever the loaded adapters serve."""
        ...

    def gated_features(self, product: str) -> frozenset[str] | None:
        """The features the product's adapter declares gated; None (all gated) without one."""
        ...

    def adapter(self, product: str) -> ConnectorAdapter:
        """The adapter serving ``product``; raises :class:`NotFound` naming those that exist."""
        ...

    def request_context(self, retry: Any = None) -> RequestStats:
        """A fresh request context (retry policy ``retry``, or the default) for one run."""
        ...

    def validate_settings(
        self, product: str, raw: Mapping[str, Any], *, resolve_env: bool = True
    ) -> dict[str, Any]:
        """The adapter's settings checked against its schema, ``${ENV}`` resolved, secrets
        wrapped. Raises :class:`BadInput` naming the field (never a secret's value)."""
        ...

    def secret_fields(self, product: str) -> tuple[str, ...]:
        """The names of the settings the adapter's schema marks secret."""
        ...

    def redact(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """Settings safe to show: secrets as ``***``."""
        ...

    def scrub(self, text: str, settings: Mapping[str, Any]) -> str:
        """``text`` (one line) with every secret standing in a known place masked as ``***``: a
        URL's credentials, an authorization header, a ``name=value`` pair named like a secret or
        like one of the secret fields of ``settings``; never a substring of free text."""
        ...
