"""The one place where seatgate is wired: database, clock, timeline, plugins, entitlement cache.

Everything else takes what it needs as arguments; the CLI, the HTTP API, workers and tests build an
:class:`App` and call its use cases. Nothing here is built at import time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Sequence
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from . import accounts, audit, contracts, seats
from .clock import Clock, SystemClock
from .domain import PRODUCTS, check_choice
from .entitlement import Decision, Entitlements
from .errors import NotAuthorized
from .policy import Timeline
from .storage.db import Database

if TYPE_CHECKING:
    from .plugins import Plugins


class App:
    """seatgate, wired. ``clock`` decides "now" for every rule (``--as-of`` fixes it)."""

    def __init__(
        self,
        db: Database | str | None = None,
        *,
        clock: Clock | None = None,
        timeline: Timeline | None = None,
        policy_file: str | Path | None = None,
        plugins: Plugins | None = None,
        entitlement_max_age: float = 1.0,
        entitlement_audit_batch: int = 1,
    ) -> None:
        self.db = db if isinstance(db, Database) else Database(db)
        self.clock: Clock = clock or SystemClock()
        if timeline is None:
            timeline = Timeline.from_file(policy_file) if policy_file else Timeline.default()
        self.timeline = timeline
        self._plugins = plugins
        self._entitlement_max_age = entitlement_max_age
        # 1: every denied check commits its audit row before answering (the CLI's need). A server
        # answering CTI logins may batch them (see Entitlements' durability note) and must close().
        self._entitlement_audit_batch = entitlement_audit_batch

    def __repr__(self) -> str:
        return f"App({self.db!r}, clock={self.clock!r})"

    def now(self) -> dt.datetime:
        return self.clock.now()

    # -- wiring -------------------------------------------------------------------------------------
    @property
    def plugins(self) -> Plugins:
        if self._plugins is None:
            from .plugins import build_plugin_manager

            self._plugins = build_plugin_manager()
        from .billing_listener import PLUGIN_NAME, BillingListener

        if not self._plugins.pm.has_plugin(PLUGIN_NAME):
            # The billing core listens to activations on whichever manager this App uses.
            self._plugins.register(BillingListener(self), PLUGIN_NAME, "builtin")
        return self._plugins

    def products(self) -> frozenset[str]:
        """The seven products of seed 000 plus whatever the loaded adapters serve."""
        return self._products

    @cached_property
    def _products(self) -> frozenset[str]:
        return frozenset(PRODUCTS) | frozenset(self.plugins.registry.products)

    def gated_features(self, product: str) -> frozenset[str] | None:
        """The gated features the product's adapter declares, or None (all gated) without one."""
        return self._gated.get(product)

    @cached_property
    def _gated(self) -> dict[str, frozenset[str]]:
        out: dict[str, frozenset[str]] = {}
        for adapter in self.plugins.registry:
            for product, features in adapter.info.features.items():
                out[product] = frozenset(features)
        return out

    @cached_property
    def entitlements(self) -> Entitlements:
        return Entitlements(
            self.db,
            self.timeline,
            self.products,
            self.gated_features,
            max_age=self._entitlement_max_age,
            audit_batch=self._entitlement_audit_batch,
        )

    def close(self) -> None:
        """Write any buffered audit rows and release the database connections."""
        if "entitlements" in self.__dict__:
            self.entitlements.close()
        self.db.dispose()

    @contextlib.contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """A write transaction. A refusal for want of authority rolls the action back but keeps
        its audit row, written in a transaction of its own."""
        try:
            with self.db.write() as conn:
                yield conn
        except NotAuthorized as exc:
            if exc.audit_entry:
                with self.db.write() as conn:
                    audit.record(conn, **exc.audit_entry)  # type: ignore[arg-type]
            raise
        finally:
            # Seat, user and contract changes must show in this process's next check at once.
            if "entitlements" in self.__dict__:
                self.entitlements.invalidate()

    def list_price(self, product: str, plan: str) -> tuple[Decimal, str] | None:
        """The catalog's monthly list price and currency for a base plan now; None when the
        catalog does not list it as a base plan (the contract then needs --unit-price)."""
        from . import catalog

        found = catalog.load().find(product, plan, self.now().date())
        if found is None or found.addon:
            return None
        return found.monthly_price, found.currency

    # -- use cases ----------------------------------------------------------------------------------
    def check(
        self, account: str, product: str, email: str, feature: str, at: dt.datetime | None = None
    ) -> Decision:
        return self.entitlements.check(account, product, email, feature, at or self.now())

    def assign(
        self, account: str, product: str, emails: Sequence[str], actor: str | None
    ) -> seats.SeatResult:
        """Manage Seats, as an admin: the seats and the purchase commitment of the added users
        (seed 002: adding users is a purchase) commit together."""
        from . import purchases

        with self.write() as conn:
            self._check_product(product)
            at = self.now()
            result = seats.assign(conn, account, product, emails, actor=actor, at=at)
            if result.newly_assigned:
                acct = accounts.get_account(conn, account)
                purchases.record_added_users(
                    conn, acct, contracts.get_contract(conn, acct, product),
                    (actor or "").strip().lower(), at,
                    result.newly_assigned, result.assigned_count,
                )  # fmt: skip
            return result

    def unassign(
        self, account: str, product: str, emails: Sequence[str], actor: str | None
    ) -> seats.SeatResult:
        with self.write() as conn:
            self._check_product(product)
            return seats.unassign(conn, account, product, emails, actor=actor, at=self.now())

    def grandfather(self, account: str, product: str, actor: str | None) -> seats.SeatResult:
        with self.write() as conn:
            self._check_product(product)
            return seats.grandfather(conn, account, product, actor=actor, at=self.now())

    def _check_product(self, product: str) -> None:
        check_choice("product", product, tuple(sorted(self.products())))

    def create_account(self, name: str, region: str) -> accounts.Account:
        with self.write() as conn:
            return accounts.create_account(conn, name, region, self.now())

    def set_quantity(
        self, account: str, product: str, quantity: int, actor: str | None = None
    ) -> contracts.Contract:
        with self.write() as conn:
            return contracts.set_quantity(conn, account, product, quantity, self.now(), actor=actor)
