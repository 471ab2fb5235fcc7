"""Seats and the append-only seat ledger, in SQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa

from ...services.ports.stores import SeatRow
from ..bulk import BulkInsert, bind, chunks, mark, select_in
from ..tables import external_ids, integration_users, seat_ledger, seats

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
        m = mark(self.conn)
        rows = select_in(
            self.conn,
            f"SELECT user_id FROM seats WHERE account_id = {m} AND product = {m} AND user_id IN",
            (account_id, product),
            user_ids,
        )
        return {r[0] for r in rows}

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

    def grandfather_candidates(self, account_id: int, product: str) -> list[tuple[int, str]]:
        linked = sa.select(external_ids.c.user_id).where(external_ids.c.account_id == account_id)
        linked_here = linked.where(external_ids.c.product == product)
        iu = integration_users
        rows = self.conn.execute(
            sa.select(iu.c.id, iu.c.email)
            .where(
                iu.c.account_id == account_id,
                iu.c.active.is_(True),
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

    def list(self, account_id: int, product: str | None = None) -> list[SeatRow]:
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
