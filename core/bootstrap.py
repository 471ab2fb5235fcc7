"""The composition root: the one place where seatgate is wired.

:class:`App` builds the database (migrated only when it is behind), the clock, the enforcement
timeline, the catalog, the plugins and the services over them, and hands each service its
:class:`~seatgate.core.services.ports.Ports`. Nothing imports this module but the entrypoints
(CLI, HTTP API, worker, demo) and :mod:`seatgate.core.testing`. Nothing is built at import time.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from .clock import Clock, SystemClock
from .domain.catalog import Catalog
from .domain.entitlement import Decision
from .domain.model import Account, Contract
from .domain.records import AgentRecord
from .domain.timeline import Timeline
from .domain.vocabulary import check_choice
from .plugins.directory import Declarations, PluginDirectory
from .services.ports import Ports
from .services.ports.orders import Mailer, OrdersIO, PostResult, WebhookPoster
from .storage import datafiles
from .storage.db import Database
from .storage.unit_of_work import SqlUnitOfWorkFactory

if TYPE_CHECKING:
    from .domain.events import Event
    from .plugins.keys import ServerKeys
    from .plugins.manager import Plugins
    from .services.accounts import AccountService
    from .services.addons import AddOnService
    from .services.billing import BillingService
    from .services.contracts import ContractService
    from .services.entitlement import Entitlements
    from .services.fleet import FleetService
    from .services.install_links import InstallLinkService
    from .services.installs import InstallService
    from .services.listings import ListingService
    from .services.purchases import PurchaseService
    from .services.seats import SeatResult, SeatService
    from .services.sync import SyncService
    from .services.tokens import TokenService
    from .services.webhooks import WebhookService

__all__ = ["CATALOG_ENV", "App", "catalog_from_env"]

CATALOG_ENV = "SEATGATE_CATALOG"
SECRET_KEY_ENV = "SEATGATE_SECRET_KEY"  # signs install links, seals webhook secrets (issue 18)
SMTP_URL_ENV = "SEATGATE_SMTP_URL"  # mail for install links; unset: they stay in the outbox
CONSOLE_URL_ENV = "SEATGATE_CONSOLE_URL"  # where /install/{token} is served
# "1": webhook endpoints may be at private addresses (10/8, 192.168/16...; tests, internal
# receivers); link-local and metadata addresses stay refused.
WEBHOOK_PRIVATE_ENV = "SEATGATE_WEBHOOK_ALLOW_PRIVATE"

_catalogs: dict[str, Catalog] = {}


def catalog_from_env() -> Catalog:
    """The catalog in force: the file named by ``SEATGATE_CATALOG``, else the built-in one (read
    once per file)."""
    key = os.environ.get(CATALOG_ENV, "")
    if key not in _catalogs:
        _catalogs[key] = datafiles.load_catalog(key or None)
    return _catalogs[key]


def _orders_io(
    secret_key: str | None,
    smtp_url: str | None,
    console_url: str | None,
    poster: WebhookPoster | None,
) -> OrdersIO:
    """The server secret, SMTP and the webhook HTTP client, from the arguments or the environment
    (``SEATGATE_SECRET_KEY``, ``SEATGATE_SMTP_URL``, ``SEATGATE_CONSOLE_URL``). Each is built
    when first used, so a check never loads cryptography, smtplib or httpx."""
    key = secret_key if secret_key is not None else os.environ.get(SECRET_KEY_ENV)
    smtp = smtp_url if smtp_url is not None else os.environ.get(SMTP_URL_ENV)
    console = console_url or os.environ.get(CONSOLE_URL_ENV) or "http://localhost:8000"
    private = os.environ.get(WEBHOOK_PRIVATE_ENV, "").strip().lower() in {"1", "true", "yes"}
    return OrdersIO(
        keys=_LazyKeys(key) if key else None,
        mailer=_LazyMailer(smtp) if smtp else None,
        poster=poster or _LazyPoster(private),
        console_url=console,
        webhook_private=private,
    )


class _LazyKeys:
    """The server secret's operations, built on first use (never shown)."""

    def __init__(self, secret: str) -> None:
        self._secret = secret
        self._keys: ServerKeys | None = None

    def __repr__(self) -> str:
        return "ServerKeys(***)"

    def _get(self) -> ServerKeys:
        if self._keys is None:
            from .plugins.keys import ServerKeys

            self._keys = ServerKeys(self._secret)
        return self._keys

    def check(self) -> None:
        self._get().check()

    def sign(self, purpose: str, data: bytes) -> bytes:
        return self._get().sign(purpose, data)

    def seal(self, text: str) -> str:
        return self._get().seal(text)

    def unseal(self, sealed: str) -> str:
        return self._get().unseal(sealed)


class _LazyMailer:
    def __init__(self, url: str) -> None:
        from .plugins.mail import sender_of

        sender_of(url)  # a bad from= is refused at startup, not at the first mail
        self._url = url
        self._mailer: Mailer | None = None

    def __repr__(self) -> str:
        return "SmtpMailer(SEATGATE_SMTP_URL)"

    def check(self) -> None:
        self._get().check()

    def _get(self) -> Mailer:
        if self._mailer is None:
            from .plugins.mail import SmtpMailer

            self._mailer = SmtpMailer(self._url)
        return self._mailer

    def send(self, recipient: str, subject: str, body: str) -> None:
        self._get().send(recipient, subject, body)


class _LazyPoster:
    def __init__(self, allow_private: bool = False) -> None:
        self._poster: WebhookPoster | None = None
        self._allow_private = allow_private

    def __repr__(self) -> str:
        return "HttpxPoster()"

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> PostResult:
        if self._poster is None:
            from .plugins.webhooks import HttpxPoster

            self._poster = HttpxPoster(allow_private=self._allow_private)
        return self._poster.post(url, body, headers)


class _Publisher:
    """The publisher port over the plugin manager's listeners, built on first publish."""

    def __init__(self, plugins: Callable[[], Plugins]) -> None:
        self._plugins = plugins

    def publish(self, events: Sequence[Event]) -> None:
        self._plugins().listeners.publish(events)

    def wants_agents(self) -> bool:
        return bool(self._plugins().pm.hook.seatgate_agents_written.get_hookimpls())

    def agents_written(
        self, account: str, product: str, agents: Sequence[AgentRecord], at: dt.datetime
    ) -> None:
        self._plugins().listeners.agents_written(account, product, agents, at)


class App:
    """seatgate, wired. ``clock`` decides "now" for every rule (``--as-of`` fixes it).

    :param db: a :class:`Database` or its URL (default: ``SEATGATE_DATABASE_URL`` or
        ``sqlite:///seatgate.db``).
    :param timeline: the enforcement timeline (default: ``policy_file`` or the built-in one).
    :param catalog: the catalog, or a function giving the one in force (default: the built-in one
        or ``SEATGATE_CATALOG``).
    :param plugins: a plugin manager (default: built-ins and entry points, loaded on first use).
    :param entitlement_max_age: seconds a cached entitlement snapshot is trusted unchecked.
    :param entitlement_audit_batch: denied-check audit rows written per transaction (1: each
        before the answer).
    :param entitlement_audit_async: write denied-check audit rows from a background thread: a
        decision never waits for a write (flushed by ``close`` and at exit).
    """

    def __init__(
        self,
        db: Database | str | None = None,
        *,
        clock: Clock | None = None,
        timeline: Timeline | None = None,
        policy_file: str | Path | None = None,
        catalog: Catalog | Callable[[], Catalog] | None = None,
        plugins: Plugins | None = None,
        entitlement_max_age: float = 1.0,
        entitlement_audit_batch: int = 1,
        entitlement_audit_async: bool = False,
        secret_key: str | None = None,
        smtp_url: str | None = None,
        console_url: str | None = None,
        webhook_poster: WebhookPoster | None = None,
    ) -> None:
        if timeline is None:  # first: a bad policy file leaves no database connection open
            timeline = datafiles.load_timeline(policy_file)
        self.db = db if isinstance(db, Database) else Database(db)
        self.clock: Clock = clock or SystemClock()
        self.timeline = timeline
        if catalog is None:
            self._catalog: Callable[[], Catalog] = catalog_from_env
        elif isinstance(catalog, Catalog):
            fixed = catalog
            self._catalog = lambda: fixed
        else:
            self._catalog = catalog
        self._plugins = plugins
        self._entitlement_max_age = entitlement_max_age
        self._entitlement_audit_batch = entitlement_audit_batch
        self._entitlement_audit_async = entitlement_audit_async
        self.uow = SqlUnitOfWorkFactory(self.db)
        orders = _orders_io(secret_key, smtp_url, console_url, webhook_poster)
        self.directory = PluginDirectory(
            lambda: self.plugins,
            # A manager built in code may hold adapters no declaration names: ask it instead.
            None if plugins is not None else Declarations.load,
        )
        self.ports = Ports(
            db=self.uow,
            clock=self.clock,
            timeline=self.timeline,
            catalog=self._catalog,
            publisher=_Publisher(lambda: self.plugins),
            adapters=self.directory,
            orders=orders,
        )

    # -- the services, each built (and its modules imported) on first use: `seatgate check` needs
    # one of them, and loads no other (issue 10) ---------------------------------------------------
    @cached_property
    def accounts(self) -> AccountService:
        from .services.accounts import AccountService

        return AccountService(self.ports)

    @cached_property
    def contracts(self) -> ContractService:
        from .services.contracts import ContractService

        return ContractService(self.ports)

    @cached_property
    def seats(self) -> SeatService:
        from .services.seats import SeatService

        return SeatService(self.ports)

    @cached_property
    def installs(self) -> InstallService:
        from .services.installs import InstallService

        return InstallService(self.ports)

    @cached_property
    def purchases(self) -> PurchaseService:
        from .services.purchases import PurchaseService

        return PurchaseService(self.ports)

    @cached_property
    def billing(self) -> BillingService:
        from .services.billing import BillingService

        return BillingService(self.ports)

    @cached_property
    def sync(self) -> SyncService:
        from .services.sync import SyncService

        return SyncService(self.ports)

    @cached_property
    def tokens(self) -> TokenService:
        from .services.tokens import TokenService

        return TokenService(self.ports)

    @cached_property
    def listings(self) -> ListingService:
        from .services.listings import ListingService

        return ListingService(self.ports)

    @cached_property
    def install_links(self) -> InstallLinkService:
        from .services.install_links import InstallLinkService

        return InstallLinkService(self.ports)

    @cached_property
    def addons(self) -> AddOnService:
        from .services.addons import AddOnService

        return AddOnService(self.ports)

    @cached_property
    def webhooks(self) -> WebhookService:
        from .services.webhooks import WebhookService

        return WebhookService(self.ports)

    def __repr__(self) -> str:
        return f"App({self.db!r}, clock={self.clock!r})"

    def now(self) -> dt.datetime:
        return self.clock.now()

    # -- wiring -------------------------------------------------------------------------------------
    @property
    def plugins(self) -> Plugins:
        """The plugin manager: built on first use (built-in adapters load when one is needed),
        with the billing listener registered as a default plugin."""
        # Imported here: pluggy and the listeners are needed only once something is published or
        # an adapter is used, never by a check.
        from .plugins import webhooks
        from .plugins.default_billing import PLUGIN_NAME, BillingListener
        from .plugins.manager import build_plugin_manager

        if self._plugins is None:
            self._plugins = build_plugin_manager(lazy=True)
        if not self._plugins.pm.has_plugin(PLUGIN_NAME):
            self._plugins.register(BillingListener(self.ports), PLUGIN_NAME, "builtin")
        if not self._plugins.pm.has_plugin(webhooks.PLUGIN_NAME):
            listener = webhooks.WebhookListener(self.ports)
            self._plugins.register(listener, webhooks.PLUGIN_NAME, "builtin")
        return self._plugins

    def catalog(self) -> Catalog:
        return self._catalog()

    def products(self) -> frozenset[str]:
        """The seven products of seed 000 plus whatever the loaded adapters serve."""
        return self.directory.products()

    def gated_features(self, product: str) -> frozenset[str] | None:
        """The gated features the product's adapter declares, or None (all gated) without one."""
        return self.directory.gated_features(product)

    @cached_property
    def entitlements(self) -> Entitlements:
        from .services.entitlement import Entitlements

        return Entitlements(
            self.ports,
            max_age=self._entitlement_max_age,
            audit_batch=self._entitlement_audit_batch,
            audit_async=self._entitlement_audit_async,
        )

    @cached_property
    def fleet(self) -> FleetService:
        """The worker fleet's use cases (issue 17): the ledger of enqueued runs and the connector
        locks on this database, around :attr:`sync`."""
        from .services.fleet import DEFAULT_STALE_AFTER, FLEET_OWNER, FleetService
        from .services.sync import SyncService, default_owner
        from .storage.fleet import ConnectorLocks, SqlFleetLedger

        return FleetService(
            self.ports,
            SqlFleetLedger(self.db),
            ConnectorLocks(self.db),
            # Its own leases' owner: a worker holding a connector's lock may take them over.
            SyncService(self.ports, owner=FLEET_OWNER + default_owner()),
            stale_after=DEFAULT_STALE_AFTER,
        )

    def close(self) -> None:
        """Write any buffered audit rows and release the database connections."""
        if "entitlements" in self.__dict__:
            self.entitlements.close()
        self.db.dispose()

    def list_price(self, product: str, plan: str) -> tuple[Decimal, str] | None:
        """The catalog's monthly list price and currency for a base plan now; None when the
        catalog does not list it as a base plan."""
        found = self.catalog().list_price(product, plan, self.now().date())
        return None if found is None else (found.monthly_price, found.currency)

    # -- the use cases most callers want, by their short names --------------------------------------
    def check(
        self, account: str, product: str, email: str, feature: str, at: dt.datetime | None = None
    ) -> Decision:
        """The entitlement check (seed 000): may ``email`` use ``feature`` of ``product`` now?"""
        return self.entitlements.check(account, product, email, feature, at or self.now())

    def assign(
        self, account: str, product: str, emails: Sequence[str], actor: str | None
    ) -> SeatResult:
        return self.seats.assign(account, product, emails, actor)

    def unassign(
        self, account: str, product: str, emails: Sequence[str], actor: str | None
    ) -> SeatResult:
        return self.seats.unassign(account, product, emails, actor)

    def grandfather(self, account: str, product: str, actor: str | None) -> SeatResult:
        return self.seats.grandfather(account, product, actor)

    def create_account(self, name: str, region: str) -> Account:
        return self.accounts.create(name, region)

    def set_quantity(
        self, account: str, product: str, quantity: int, actor: str | None = None
    ) -> Contract:
        return self.contracts.set_quantity(account, product, quantity, actor)

    def check_product(self, product: str) -> None:
        check_choice("product", product, tuple(sorted(self.products())))
