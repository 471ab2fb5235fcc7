"""Admin listings, paged: users, seats, installations, sync runs, quarantined records, billing
tickets and invoices of one account, and issue 18's install links, add-ons, webhook endpoints and
deliveries. Each read is one unit of work; each page holds at most
``limit`` items (1 to :data:`~.paging.MAX_LIMIT`) and a ``next_cursor`` for the page after it.

Raises :class:`NotFound` for an unknown account (remedy ``create_account``) or sync run, and
:class:`BadInput` for a bad limit, cursor, status or product.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from ..domain import bounds
from ..domain.model import Account
from ..domain.sync import interrupted_message, run_outcome
from ..domain.vocabulary import UserStatus, check_choice
from ..errors import BadInput, NotFound
from .addons import AddOnInfo
from .base import read
from .billing import BillingService
from .install_links import LinkInfo
from .paging import DEFAULT_LIMIT, Page, check_limit, decode_cursor, page
from .ports import Ports, UnitOfWork
from .ports.stores import Installation, SeatRow
from .seats import seat_count
from .webhooks import DELIVERY_STATUSES, DeliveryInfo, EndpointInfo

__all__ = ["USER_STATUSES", "ListingService"]

USER_STATUSES = tuple(UserStatus)


def _is_str(key: Any) -> bool:
    return isinstance(key, str)


def _is_int(key: Any) -> bool:
    return isinstance(key, int) and not isinstance(key, bool) and key >= 0


def _is_pair(key: Any) -> bool:
    return isinstance(key, list) and len(key) == 2 and all(isinstance(k, str) for k in key)


def _is_instant_and_id(key: Any) -> bool:
    if not _is_pair(key):
        return False
    return dt.datetime.fromisoformat(key[0]).tzinfo is not None  # ValueError: not a cursor


def _seat(r: SeatRow) -> dict[str, Any]:
    return {
        "product": r.product,
        "email": r.email,
        "active": r.active,
        "assigned_at": r.assigned_at,
        "grandfathered": r.grandfathered,
    }


def _without_id(row: dict[str, Any]) -> dict[str, Any]:
    # The row id is the keyset only: a record is named by its CRM id.
    return {k: v for k, v in row.items() if k != "id"}


def _shown_run(row: dict[str, Any], now: Any) -> dict[str, Any]:
    out = dict(row)
    out["outcome"] = run_outcome(out["outcome"], out.pop("lease_expires_at", None), now)
    if out["outcome"] == "interrupted" and not out["message"]:
        out["message"] = interrupted_message(out["started_at"])
    return out


class ListingService:
    def __init__(self, ports: Ports) -> None:
        self.ports = ports

    def _paged(
        self,
        account: str,
        cursor: str | None,
        limit: int,
        valid: Callable[[Any], bool],
        rows: Callable[[UnitOfWork, Account, Any], Sequence[Any]],
        key: Callable[[Any], Any],
        item: Callable[[Any], dict[str, Any]],
        **extra: Any,
    ) -> Page:
        """The page every listing makes: the limit checked, the cursor decoded (``valid``: the
        listing's key shape), ``rows(uow, account, key)`` read in one unit of work (they ask for
        ``limit + 1``: the extra row says a next page exists), each shown by ``item``, the next
        cursor made by ``key`` of the last one shown."""
        check_limit(limit)
        after = decode_cursor(cursor, valid)
        with read(self.ports) as uow:
            found = rows(uow, uow.accounts.get(account), after)
        return page(found, limit, key, item, {"account": account, **extra})

    def _product(self, product: str | None) -> None:
        if product is not None:
            check_choice("product", product, tuple(sorted(self.ports.adapters.products())))

    def users(
        self,
        account: str,
        *,
        product: str | None = None,
        status: str | None = None,
        search: str | None = None,
        cursor: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> Page:
        """Integration users by email; ``status`` active or inactive; ``search`` keeps the emails
        that start with it (case-insensitive, as emails are kept: a range of the email index, so
        a search costs a page whatever the account's size)."""
        self._product(product)
        if status is not None:
            check_choice("status", status, USER_STATUSES)
        prefix = None
        if search is not None and search.strip():
            prefix = search.strip().lower()
            if len(prefix) > bounds.EMAIL_MAX:
                raise BadInput("search", prefix[:40], f"at most {bounds.EMAIL_MAX} characters")
        active = None if status is None else status == "active"
        return self._paged(
            account,
            cursor,
            limit,
            _is_str,
            lambda uow, acct, after: uow.listings.users(
                acct.id,
                product=product,
                active=active,
                prefix=prefix,
                after=after,
                limit=limit + 1,
                at=self.ports.now(),
            ),
            lambda r: r["email"],
            dict,
        )

    def seats(
        self,
        account: str,
        *,
        product: str | None = None,
        cursor: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> Page:
        """Seat holders by (product, email), with each product's counts against its contract
        (``products``, as ``seats list`` shows them)."""
        check_limit(limit)
        self._product(product)
        after = decode_cursor(cursor, _is_pair)
        with read(self.ports) as uow:
            acct = uow.accounts.get(account)
            rows = uow.listings.seats(
                acct.id,
                product=product,
                after=None if after is None else (after[0], after[1]),
                limit=limit + 1,
            )
            counts = [
                {
                    "product": c.product,
                    "contracted": n.contracted,
                    "assigned": n.assigned,
                    "in_overage": n.in_overage,
                    "mode": c.mode,
                }
                for c in uow.contracts.list(account)
                if product is None or c.product == product
                for n in [seat_count(uow, acct, c, self.ports.now(), written=False)]
            ]
        extra = {"account": account, "products": counts}
        return page(rows, limit, lambda r: [r.product, r.email], _seat, extra)

    def installs(
        self, account: str, *, cursor: str | None = None, limit: int = DEFAULT_LIMIT
    ) -> Page:
        """The account's installations by product (settings as stored: references only)."""

        def item(i: Installation) -> dict[str, Any]:
            return {**i.as_dict(), "uninstalled_at": i.uninstalled_at}

        return self._paged(
            account,
            cursor,
            limit,
            _is_str,
            lambda uow, acct, after: uow.listings.installs(
                acct.id, after=after, limit=limit + 1, at=self.ports.now()
            ),
            lambda i: i.product,
            item,
        )

    def runs(
        self,
        account: str,
        *,
        product: str | None = None,
        cursor: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> Page:
        """Sync runs, newest first: a ``running`` run whose lease expired shows as
        ``interrupted`` (its process died)."""
        self._product(product)
        now = self.ports.now()
        return self._paged(
            account,
            cursor,
            limit,
            _is_int,
            lambda uow, acct, before: uow.listings.runs(
                acct.id, product=product, before=before, limit=limit + 1, at=now
            ),
            lambda r: r["id"],
            lambda r: _shown_run(r, now),
        )

    def run(self, account: str | None, run_id: int) -> dict[str, Any]:
        """One sync run of ``account`` (of any account for None, the operator's view):
        ``id``, ``account``, ``product``, ``started_at``, ``outcome``, ``full``, the counts,
        ``requests``, ``retries``, ``seconds``, ``message``. Raises :class:`NotFound` when the
        run is unknown or another account's."""
        with read(self.ports) as uow:
            account_id = None if account is None else uow.accounts.get(account).id
            found = uow.listings.run(account_id, run_id, self.ports.now())
        if found is None:
            whose = "" if account is None else f" of account {account!r}"
            raise NotFound("sync run", run_id, f"no sync run{whose} has that id")
        return _shown_run(found, self.ports.now())

    def quarantine(
        self,
        account: str,
        *,
        product: str | None = None,
        run_id: int | None = None,
        cursor: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> Page:
        """Records a sync could not use (record id, email, reason, since), oldest first."""
        self._product(product)
        at = self.ports.now()

        def rows(uow: UnitOfWork, acct: Account, after: Any) -> Sequence[Any]:
            if run_id is not None and uow.listings.run(acct.id, run_id, at) is None:
                raise NotFound("sync run", run_id, f"no sync run of account {account!r}")
            return uow.listings.quarantine(
                acct.id, product=product, run_id=run_id, after=after, limit=limit + 1, at=at
            )

        return self._paged(account, cursor, limit, _is_int, rows, lambda r: r["id"], dict)

    def quarantined(
        self,
        account: str,
        product: str,
        *,
        cursor: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> Page:
        """The records of ``product``'s CRM quarantined now (as of the latest full pull and the
        runs after it), once each: ``external_id``, ``email``, ``reason``, ``since`` (first
        quarantined), ``last_seen``, ``run_id`` (the latest run that saw it); oldest first."""
        self._product(product)
        return self._paged(
            account,
            cursor,
            limit,
            _is_int,
            lambda uow, acct, after: uow.listings.quarantined(
                acct.id, product=product, after=after, limit=limit + 1, at=self.ports.now()
            ),
            lambda r: r["id"],
            _without_id,
            product=product,
        )

    def agents(
        self,
        account: str,
        product: str,
        *,
        cursor: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> Page:
        """The agent directory a sync of ``product`` wrote (the users the CTI may sign in as
        agents): ``email``, ``name``, ``external_id``, ``active``, ``updated_at``, ``run_id``;
        by email."""
        self._product(product)
        return self._paged(
            account,
            cursor,
            limit,
            _is_str,
            lambda uow, acct, after: uow.listings.agents(
                acct.id, product=product, after=after, limit=limit + 1
            ),
            lambda r: r["email"],
            dict,
            product=product,
        )

    def tickets(
        self, account: str, *, cursor: str | None = None, limit: int = DEFAULT_LIMIT
    ) -> Page:
        """Billing tickets opened for the account, oldest first."""
        return self._paged(
            account,
            cursor,
            limit,
            _is_int,
            lambda uow, acct, after: uow.listings.tickets(
                acct.id, after=after, limit=limit + 1, at=self.ports.now()
            ),
            lambda r: r["id"],
            dict,
        )

    def invoices(
        self, account: str, *, cursor: str | None = None, limit: int = DEFAULT_LIMIT
    ) -> Page:
        """Issued invoices, oldest first (one a month per contract: an account's list is short,
        so it is read whole by :meth:`BillingService.invoices` and cut here)."""
        check_limit(limit)
        # Invoices are append-only and listed in issue order: a position is a stable key.
        start = decode_cursor(cursor, _is_int) or 0
        issued = BillingService(self.ports).invoices(account)["invoices"]
        rows = list(enumerate(issued))[start : start + limit + 1]
        return page(rows, limit, lambda r: r[0] + 1, lambda r: r[1], {"account": account})

    # -- issue 18 --------------------------------------------------------------------------------
    def install_links(
        self, account: str, *, cursor: str | None = None, limit: int = DEFAULT_LIMIT
    ) -> Page:
        """The account's install links as of now, newest first, never their tokens (``state``:
        active, used, revoked, expired; ``mail``: queued, sent, failed)."""
        at = self.ports.now()
        return self._paged(
            account,
            cursor,
            limit,
            _is_instant_and_id,
            lambda uow, acct, key: uow.links.list(
                acct.id,
                at,
                after=None if key is None else (dt.datetime.fromisoformat(key[0]), key[1]),
                limit=limit + 1,
            ),
            lambda r: [r.created_at.isoformat(), r.id],
            lambda r: LinkInfo.of(r, at).as_dict(),
        )

    def addons(
        self,
        account: str,
        *,
        product: str | None = None,
        partner: str | None = None,
        cursor: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> Page:
        """The account's add-on activations as of now (ended ones included), oldest first.
        ``partner``: only the add-ons of the products that partner publishes in the catalog in
        force (what a partner token may see of the account)."""
        self._product(product)
        at = self.ports.now()
        products = None
        if partner is not None:
            products = self.ports.catalog().partners(at.date()).get(partner, [])
        return self._paged(
            account,
            cursor,
            limit,
            _is_int,
            lambda uow, acct, after: uow.addons.list(
                account, at, product, products=products, after=after, limit=limit + 1
            ),
            lambda r: r.id,
            lambda r: AddOnInfo.of(r, at.date()).as_dict(),
        )

    def webhooks(
        self, account: str, *, cursor: str | None = None, limit: int = DEFAULT_LIMIT
    ) -> Page:
        """The account's webhook endpoints by id (never their signing secrets)."""
        return self._paged(
            account,
            cursor,
            limit,
            _is_int,
            lambda uow, acct, after: uow.webhooks.endpoints(acct.id, after=after, limit=limit + 1),
            lambda r: r.id,
            lambda r: EndpointInfo.of(r).as_dict(),
        )

    def deliveries(
        self,
        account: str,
        *,
        endpoint: int | None = None,
        status: str | None = None,
        cursor: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> Page:
        """The account's webhook deliveries, newest first (``status``: pending, delivered,
        failed; ``endpoint``: one endpoint's)."""
        if status is not None:
            check_choice("status", status, DELIVERY_STATUSES)
        return self._paged(
            account,
            cursor,
            limit,
            _is_int,
            lambda uow, acct, before: uow.webhooks.deliveries(
                acct.id, endpoint, status, limit + 1, before=before
            ),
            lambda r: r.id,
            lambda r: DeliveryInfo.of(r).as_dict(),
        )
