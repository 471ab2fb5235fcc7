"""Paged reads for admin listings, in SQL: keyset pages on an index-backed order (see
:class:`~...services.ports.listings.Listings`)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import sqlalchemy as sa

from ...services.ports.stores import Installation, SeatRow
from ..tables import (
    accounts,
    agent_directory,
    contracts,
    external_ids,
    installations,
    integration_users,
    seats,
    sync_quarantine,
    sync_runs,
    tickets,
)
from .installs import _query as _install_query
from .installs import _to_installation

__all__ = ["SqlListings"]


class SqlListings:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def users(
        self,
        account_id: int,
        *,
        product: str | None,
        active: bool | None,
        after: str | None,
        limit: int,
        prefix: str | None = None,
        at: dt.datetime | None = None,
    ) -> list[dict[str, Any]]:
        iu = integration_users
        query = (
            sa.select(iu.c.id, iu.c.email, iu.c.name, iu.c.active, iu.c.roles)
            .where(iu.c.account_id == account_id)
            .order_by(iu.c.email)
            .limit(limit)
        )
        if after is not None:
            query = query.where(iu.c.email > after)
        if at is not None:
            query = query.where(iu.c.created_at <= at)
        if active is not None:
            query = query.where(iu.c.active == active)
        if prefix:
            # LIKE decides (escaped: % and _ are literal); the range lets both databases seek the
            # email index to the first candidate instead of scanning from the start (a string
            # sorts at or after its own prefix in the binary and the linguistic collations).
            query = query.where(
                iu.c.email >= prefix, iu.c.email.startswith(prefix, autoescape=True)
            )
        if product is not None:
            linked = sa.exists().where(
                external_ids.c.account_id == account_id,
                external_ids.c.product == product,
                external_ids.c.user_id == iu.c.id,
            )
            seated = sa.exists().where(
                seats.c.account_id == account_id,
                seats.c.product == product,
                seats.c.user_id == iu.c.id,
            )
            query = query.where(sa.or_(linked, seated))
        rows = self.conn.execute(query).all()
        held: dict[int, list[str]] = defaultdict(list)
        if rows:
            for user_id, seat_product in self.conn.execute(
                sa.select(seats.c.user_id, seats.c.product)
                .where(seats.c.user_id.in_([r.id for r in rows]))
                .order_by(seats.c.product)
            ):
                held[user_id].append(seat_product)
        return [
            {
                "email": r.email,
                "name": r.name,
                "active": bool(r.active),
                "roles": list(r.roles or ()),
                "seats": held[r.id],
            }
            for r in rows
        ]

    def seats(
        self, account_id: int, *, product: str | None, after: tuple[str, str] | None, limit: int
    ) -> list[SeatRow]:
        query = (
            sa.select(
                seats.c.product,
                integration_users.c.email,
                integration_users.c.active,
                seats.c.assigned_at,
                seats.c.grandfathered,
            )
            .join(integration_users, seats.c.user_id == integration_users.c.id)
            .where(seats.c.account_id == account_id)
            .order_by(seats.c.product, integration_users.c.email)
            .limit(limit)
        )
        if product is not None:
            query = query.where(seats.c.product == product)
        if after is not None:
            query = query.where(
                sa.tuple_(seats.c.product, integration_users.c.email) > sa.tuple_(*after)
            )
        return [
            SeatRow(r.product, r.email, bool(r.active), r.assigned_at, bool(r.grandfathered))
            for r in self.conn.execute(query)
        ]

    def installs(
        self, account_id: int, *, after: str | None, limit: int, at: dt.datetime | None = None
    ) -> list[Installation]:
        query = (
            _install_query()
            .where(installations.c.account_id == account_id)
            .order_by(installations.c.product)
            .limit(limit)
        )
        if after is not None:
            query = query.where(installations.c.product > after)
        if at is not None:
            query = query.where(installations.c.installed_at <= at)
        return [_to_installation(r) for r in self.conn.execute(query)]

    def _run_rows(self, account_id: int | None, at: dt.datetime | None = None) -> sa.Select[Any]:
        # Running runs too (the service shows one whose lease expired as interrupted); who holds
        # the lease and its heartbeat are the worker's business, not the admin's.
        shown = [c for c in sync_runs.c if c.name not in ("owner", "heartbeat_at")]
        query = sa.select(*shown, accounts.c.name.label("account")).join(
            accounts, accounts.c.id == sync_runs.c.account_id
        )
        if at is not None:
            query = query.where(sync_runs.c.started_at <= at)
        return query if account_id is None else query.where(sync_runs.c.account_id == account_id)

    @staticmethod
    def _run(row: Any) -> dict[str, Any]:
        out = dict(row._mapping)
        out.pop("account_id")
        return out

    def runs(
        self,
        account_id: int,
        *,
        product: str | None,
        before: int | None,
        limit: int,
        at: dt.datetime | None = None,
    ) -> list[dict[str, Any]]:
        query = self._run_rows(account_id, at).order_by(sync_runs.c.id.desc()).limit(limit)
        if product is not None:
            query = query.where(sync_runs.c.product == product)
        if before is not None:
            query = query.where(sync_runs.c.id < before)
        return [self._run(r) for r in self.conn.execute(query)]

    def run(
        self, account_id: int | None, run_id: int, at: dt.datetime | None = None
    ) -> dict[str, Any] | None:
        row = self.conn.execute(
            self._run_rows(account_id, at).where(sync_runs.c.id == run_id)
        ).first()
        return None if row is None else self._run(row)

    def quarantine(
        self,
        account_id: int,
        *,
        product: str | None,
        run_id: int | None,
        after: int | None,
        limit: int,
        at: dt.datetime | None = None,
    ) -> list[dict[str, Any]]:
        q = sync_quarantine
        query = (
            sa.select(
                q.c.id, q.c.run_id, q.c.product, q.c.external_id, q.c.email, q.c.reason, q.c.at
            )
            .where(q.c.account_id == account_id)
            .order_by(q.c.id)
            .limit(limit)
        )
        if product is not None:
            query = query.where(q.c.product == product)
        if run_id is not None:
            query = query.where(q.c.run_id == run_id)
        if after is not None:
            query = query.where(q.c.id > after)
        if at is not None:
            query = query.where(q.c.at <= at)
        return [dict(r._mapping) for r in self.conn.execute(query)]

    def quarantined(
        self,
        account_id: int,
        *,
        product: str,
        after: int | None,
        limit: int,
        at: dt.datetime | None = None,
    ) -> list[dict[str, Any]]:
        q, r = sync_quarantine, sync_runs
        upto = sa.true() if at is None else r.c.started_at <= at
        seen = sa.true() if at is None else q.c.at <= at
        # A full pull is the only run that sees every record: what it (or a later run) quarantined
        # is quarantined now; what only older runs saw has since been fixed or superseded.
        last_full = (
            sa.select(sa.func.max(r.c.id))
            .where(r.c.account_id == account_id, r.c.product == product, r.c.full.is_(True), upto)
            .scalar_subquery()
        )
        current = sa.select(q.c.external_id, q.c.reason).where(
            q.c.account_id == account_id,
            q.c.product == product,
            q.c.run_id >= sa.func.coalesce(last_full, 0),
            seen,
        )
        first = sa.func.min(q.c.id)
        query = (
            sa.select(
                first.label("id"),
                q.c.external_id,
                q.c.reason,
                sa.func.max(q.c.email).label("email"),
                sa.func.min(q.c.at).label("since"),
                sa.func.max(q.c.at).label("last_seen"),
                sa.func.max(q.c.run_id).label("run_id"),
            )
            .where(
                q.c.account_id == account_id,
                q.c.product == product,
                sa.tuple_(q.c.external_id, q.c.reason).in_(current),
                seen,
            )
            .group_by(q.c.external_id, q.c.reason)
            .order_by(first)
            .limit(limit)
        )
        if after is not None:
            query = query.having(first > after)
        return [dict(row._mapping) for row in self.conn.execute(query)]

    def agents(
        self, account_id: int, *, product: str, after: str | None, limit: int
    ) -> list[dict[str, Any]]:
        ad = agent_directory
        query = (
            sa.select(ad.c.email, ad.c.name, ad.c.external_id, ad.c.active, ad.c.updated_at)
            .add_columns(ad.c.run_id)
            .where(ad.c.account_id == account_id, ad.c.product == product)
            .order_by(ad.c.email)
            .limit(limit)
        )
        if after is not None:
            query = query.where(ad.c.email > after)
        return [{**row._mapping, "active": bool(row.active)} for row in self.conn.execute(query)]

    def tickets(
        self, account_id: int, *, after: int | None, limit: int, at: dt.datetime | None = None
    ) -> list[dict[str, Any]]:
        query = (
            sa.select(
                tickets.c.id,
                contracts.c.product,
                tickets.c.kind,
                tickets.c.opened_at,
                tickets.c.actor,
            )
            .join(contracts, contracts.c.id == tickets.c.contract_id)
            .where(contracts.c.account_id == account_id)
            .order_by(tickets.c.id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(tickets.c.id > after)
        if at is not None:
            query = query.where(tickets.c.opened_at <= at)
        return [dict(r._mapping) for r in self.conn.execute(query)]
