"""Seats and the append-only seat ledger, in SQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa

from ...domain.seats import LedgerRow, seats_held
from ...services.ports.stores import SeatRow
from ..bulk import BulkInsert, bind, chunks, mark, select_any, select_in
from ..tables import contracts, external_ids, integration_users, seat_ledger, seats

__all__ = ["SqlSeatStore"]

_LEDGER_COLUMNS = (
    "account_id",
    "product",
    "user_id",
    "email",
    "action",
    "actor",
    "at",
    "reason",
    "assigned_after",
)


class SqlSeatStore:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def count_assigned(self, account_id: int, product: str) -> int:
        return int(
            self.conn.execute(
                sa.select(sa.func.count())
                .select_from(seats)
                .where(seats.c.account_id == account_id, seats.c.product == product)
            ).scalar_one()
        )

    def users_by_email(self, account_id: int, emails: Sequence[str]) -> dict[str, tuple[int, bool]]:
        rows = select_in(
            self.conn,
            "SELECT email, id, active FROM integration_users WHERE account_id = "
            f"{mark(self.conn)} AND email IN",
            (account_id,),
            emails,
        )
        return {email: (uid, bool(active)) for email, uid, active in rows}

    def seated_ids(self, account_id: int, product: str, user_ids: Sequence[int]) -> set[int]:
        # On PostgreSQL a probe of the key per user (bulk.PROBE), whatever the planner believes of
        # ``seats``: an auto install fills it before any ANALYZE, and with ``= ANY(array)`` every
        # batch of a first sync had read all the seats written so far (1.4 s of 100,000 users).
        m = mark(self.conn)
        found = select_any(
            self.conn,
            f"SELECT user_id FROM seats WHERE account_id = {m} AND product = {m} AND user_id",
            (account_id, product),
            user_ids,
        )
        return {r[0] for r in found}

    def tally(self, account_id: int, product: str) -> tuple[int, int] | None:
        held = (
            sa.select(sa.func.count())
            .select_from(seats)
            .where(seats.c.account_id == account_id, seats.c.product == product)
            .scalar_subquery()
        )
        row = self.conn.execute(
            sa.select(contracts.c.entitlement_version, held).where(
                contracts.c.account_id == account_id, contracts.c.product == product
            )
        ).first()
        return None if row is None else (int(row[0]), int(row[1]))

    def users_by_id(
        self, account_id: int, product: str, user_ids: Sequence[int]
    ) -> dict[int, tuple[str, bool, bool]]:
        m = mark(self.conn)
        found = select_any(
            self.conn,
            "SELECT u.id, u.email, u.active, EXISTS (SELECT 1 FROM seats AS s "
            f"WHERE s.account_id = {m} AND s.product = {m} AND s.user_id = u.id) "
            f"FROM integration_users AS u WHERE u.account_id = {m} AND u.id",
            (account_id, product, account_id),
            user_ids,
        )
        return {uid: (email, bool(active), bool(seated)) for uid, email, active, seated in found}

    def add(
        self,
        account_id: int,
        product: str,
        rows: Sequence[tuple[int, str, int]],
        *,
        action: str,
        actor: str,
        at: dt.datetime,
        reason: str,
        grandfathered: bool,
    ) -> None:
        if not rows:
            return
        conn = self.conn
        at_value = bind(conn, seats.c.assigned_at, at)
        flag = bind(conn, seats.c.grandfathered, grandfathered)
        BulkInsert(
            conn, seats, ("account_id", "product", "user_id", "assigned_at", "grandfathered")
        ).rows([(account_id, product, uid, at_value, flag) for uid, _, _ in rows])
        self._ledger(account_id, product, rows, action, actor, at, reason)

    def remove(
        self,
        account_id: int,
        product: str,
        rows: Sequence[tuple[int, str, int]],
        *,
        actor: str,
        at: dt.datetime,
        reason: str,
    ) -> None:
        if not rows:
            return
        for chunk in chunks([r[0] for r in rows]):
            self.conn.execute(
                seats.delete().where(
                    seats.c.account_id == account_id,
                    seats.c.product == product,
                    seats.c.user_id.in_(chunk),
                )
            )
        self._ledger(account_id, product, rows, "unassign", actor, at, reason)

    def _ledger(
        self,
        account_id: int,
        product: str,
        rows: Sequence[tuple[int, str, int]],
        action: str,
        actor: str,
        at: dt.datetime,
        reason: str,
    ) -> None:
        at_value = bind(self.conn, seat_ledger.c.at, at)
        BulkInsert(self.conn, seat_ledger, _LEDGER_COLUMNS).rows(
            [
                (account_id, product, uid, email, action, actor, at_value, reason, after)
                for uid, email, after in rows
            ]
        )

    def grandfather_candidates(
        self, account_id: int, product: str, existed_by: dt.datetime
    ) -> list[tuple[int, str]]:
        linked = sa.select(external_ids.c.user_id).where(external_ids.c.account_id == account_id)
        linked_here = linked.where(external_ids.c.product == product)
        iu = integration_users
        rows = self.conn.execute(
            sa.select(iu.c.id, iu.c.email)
            .where(
                iu.c.account_id == account_id,
                iu.c.active.is_(True),
                iu.c.created_at <= existed_by,
                sa.or_(iu.c.id.in_(linked_here), iu.c.id.not_in(linked)),
                iu.c.id.not_in(
                    sa.select(seats.c.user_id).where(
                        seats.c.account_id == account_id, seats.c.product == product
                    )
                ),
            )
            .order_by(iu.c.id)
        ).all()
        return [(r[0], r[1]) for r in rows]

    def seated_emails(self, account_id: int, product: str) -> list[str]:
        rows = self.conn.execute(
            sa.select(integration_users.c.email)
            .join(seats, seats.c.user_id == integration_users.c.id)
            .where(seats.c.account_id == account_id, seats.c.product == product)
            .order_by(integration_users.c.email)
        )
        return [r[0] for r in rows]

    def held(
        self, account_id: int, product: str | None, at: dt.datetime
    ) -> dict[tuple[str, int], tuple[dt.datetime, bool]]:
        """(product, user id) -> (since, grandfathered) of each seat held as of ``at``: what the
        ledger rows stamped by then made, in write order
        (:func:`~seatgate.core.domain.seats.seats_held`)."""
        q = sa.select(
            seat_ledger.c.product, seat_ledger.c.at, seat_ledger.c.user_id, seat_ledger.c.action
        ).where(seat_ledger.c.account_id == account_id, seat_ledger.c.at <= at)
        if product is not None:
            q = q.where(seat_ledger.c.product == product)
        by_product: dict[str, list[LedgerRow]] = {}
        for prod, when, user, action in self.conn.execute(q.order_by(seat_ledger.c.id)):
            by_product.setdefault(prod, []).append((when, user, action))
        out: dict[tuple[str, int], tuple[dt.datetime, bool]] = {}
        for prod, rows in by_product.items():
            held = seats_held(rows, at)
            last: dict[int, LedgerRow] = {}
            for row in rows:
                last[row[1]] = row
            for user in held:
                when, _, action = last[user]
                out[(prod, user)] = (when, action == "grandfather")
        return out

    def count_held(self, account_id: int, product: str, at: dt.datetime) -> int:
        """Seats of ``product`` held as of ``at`` (:meth:`held`). When no ledger row is stamped
        after ``at`` — a read as of now, the usual case — the ledger replayed up to ``at`` is the
        whole ledger, whose result the seats table holds: counted there (an index seek and a
        count), not by replaying every row (a Manage Seats page of 50,000 seats, issue 16)."""
        later = self.conn.execute(
            sa.select(seat_ledger.c.id)
            .where(
                seat_ledger.c.account_id == account_id,
                seat_ledger.c.product == product,
                seat_ledger.c.at > at,
            )
            .limit(1)
        ).first()
        if later is None:
            return self.count_assigned(account_id, product)
        return len(self.held(account_id, product, at))

    def list(
        self, account_id: int, product: str | None = None, at: dt.datetime | None = None
    ) -> list[SeatRow]:
        """Seat holders; with ``at``, as of that instant (only what existed then)."""
        if at is not None:
            return _list_at(self.conn, self.held(account_id, product, at), account_id)
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
        )
        if product is not None:
            query = query.where(seats.c.product == product)
        return [
            SeatRow(r.product, r.email, bool(r.active), r.assigned_at, bool(r.grandfathered))
            for r in self.conn.execute(query)
        ]


def _list_at(
    conn: sa.Connection,
    held: dict[tuple[str, int], tuple[dt.datetime, bool]],
    account_id: int,
) -> list[SeatRow]:
    """The seats of :meth:`SqlSeatStore.held` as rows of ``seats list``, by product and email."""
    if not held:
        return []
    users = {
        uid: (email, bool(active))
        for uid, email, active in select_in(
            conn,
            f"SELECT id, email, active FROM integration_users WHERE account_id = {mark(conn)} "
            "AND id IN",
            (account_id,),
            sorted({uid for _, uid in held}),
        )
    }
    rows = [
        SeatRow(prod, users[uid][0], users[uid][1], since, grandfathered)
        for (prod, uid), (since, grandfathered) in held.items()
        if uid in users
    ]
    return sorted(rows, key=lambda r: (r.product, r.email))
