"""Issue 18 in SQL: install links and the mail outbox, add-on activations, webhook endpoints,
deliveries and attempts."""

from __future__ import annotations

import builtins
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from ...errors import NotFound
from ...services.ports.orders import (
    AddOnRow,
    ClaimedDelivery,
    DeliveryRow,
    EndpointRow,
    LinkRow,
    MailRow,
    PostResult,
)
from ..dialects import dialect_insert
from ..tables import (
    accounts,
    addons,
    contracts,
    install_links,
    mail_outbox,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
)

__all__ = ["SqlAddOnStore", "SqlInstallLinkStore", "SqlWebhookStore"]

_ERROR_MAX = 300


def _locked(q: sa.Select[Any], conn: sa.Connection, lock: bool) -> sa.Select[Any]:
    # PostgreSQL: a row lock; SQLite's write transaction already holds the database.
    return q.with_for_update() if lock and conn.dialect.name == "postgresql" else q


class SqlInstallLinkStore:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def _query(self) -> sa.Select[Any]:
        last_mail = (
            sa.select(mail_outbox.c.status)
            .where(mail_outbox.c.link_id == install_links.c.id)
            .order_by(mail_outbox.c.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        return sa.select(
            install_links, accounts.c.name.label("account"), last_mail.label("mail_status")
        ).join(accounts, accounts.c.id == install_links.c.account_id)

    @staticmethod
    def _row(r: Any) -> LinkRow:
        return LinkRow(
            id=r.id,
            account=r.account,
            product=r.product,
            contract_id=r.contract_id,
            email=r.email,
            created_at=r.created_at,
            created_by=r.created_by,
            expires_at=r.expires_at,
            used_at=r.used_at,
            used_by=r.used_by,
            revoked_at=r.revoked_at,
            revoked_by=r.revoked_by,
            mail_status=r.mail_status or "",
        )

    def add(self, row: LinkRow, account_id: int) -> None:
        self.conn.execute(
            install_links.insert().values(
                id=row.id,
                account_id=account_id,
                product=row.product,
                contract_id=row.contract_id,
                email=row.email,
                created_at=row.created_at,
                created_by=row.created_by,
                expires_at=row.expires_at,
            )
        )

    def get(self, link_id: str, *, lock: bool = False) -> LinkRow | None:
        if lock and self.conn.dialect.name == "postgresql":
            self.conn.execute(
                sa.select(install_links.c.id).where(install_links.c.id == link_id).with_for_update()
            )
        found = self.conn.execute(self._query().where(install_links.c.id == link_id)).first()
        return None if found is None else self._row(found)

    def list(
        self,
        account_id: int,
        created_by: dt.datetime,
        *,
        after: tuple[dt.datetime, str] | None = None,
        limit: int | None = None,
    ) -> list[LinkRow]:
        q = (
            self._query()
            .where(
                install_links.c.account_id == account_id,
                install_links.c.created_at <= created_by,
            )
            .order_by(install_links.c.created_at.desc(), install_links.c.id)
            .limit(limit)
        )
        if after is not None:  # the keyset of (created_at desc, id)
            made, link_id = after
            q = q.where(
                sa.or_(
                    install_links.c.created_at < made,
                    sa.and_(install_links.c.created_at == made, install_links.c.id > link_id),
                )
            )
        return [self._row(r) for r in self.conn.execute(q)]

    def mark_used(self, link_id: str, at: dt.datetime, actor: str) -> None:
        self.conn.execute(
            install_links.update()
            .where(install_links.c.id == link_id)
            .values(used_at=at, used_by=actor)
        )

    def revoke(self, link_id: str, at: dt.datetime, actor: str | None) -> None:
        self.conn.execute(
            install_links.update()
            .where(install_links.c.id == link_id)
            .values(revoked_at=at, revoked_by=actor)
        )

    def queue_mail(
        self, recipient: str, subject: str, body: str, link_id: str | None, at: dt.datetime
    ) -> int:
        return int(
            self.conn.execute(  # type: ignore[index]
                mail_outbox.insert().values(
                    recipient=recipient,
                    subject=subject,
                    body=body,
                    link_id=link_id,
                    created_at=at,
                    status="queued",
                    error="",
                )
            ).inserted_primary_key[0]
        )

    def mail(self, mail_id: int) -> MailRow:
        r = self.conn.execute(sa.select(mail_outbox).where(mail_outbox.c.id == mail_id)).one()
        return MailRow(r.id, r.recipient, r.subject, r.body, r.link_id, r.status, r.error)

    def mark_mail(self, mail_id: int, status: str, at: dt.datetime, error: str = "") -> None:
        self.conn.execute(
            mail_outbox.update()
            .where(mail_outbox.c.id == mail_id)
            .values(
                status=status,
                sent_at=at if status == "sent" else None,
                error=error[:_ERROR_MAX],
            )
        )


class SqlAddOnStore:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def _query(self) -> sa.Select[Any]:
        return (
            sa.select(addons, accounts.c.name.label("account"), contracts.c.product)
            .join(contracts, contracts.c.id == addons.c.contract_id)
            .join(accounts, accounts.c.id == contracts.c.account_id)
        )

    @staticmethod
    def _row(r: Any, at: dt.datetime | None = None) -> AddOnRow:
        seen = r.deactivated_at is not None and (at is None or r.deactivated_at <= at)
        return AddOnRow(
            id=r.id,
            account=r.account,
            product=r.product,
            contract_id=r.contract_id,
            plan=r.plan,
            charge_model=r.charge_model,
            quantity=r.quantity,
            unit_price=r.unit_price,
            currency=r.currency,
            effective=r.effective,
            at=r.at,
            partner=r.partner,
            actor=r.actor,
            ends=r.ends if seen else None,
            deactivated_at=r.deactivated_at if seen else None,
            deactivated_by=r.deactivated_by if seen else None,
        )

    def add(self, contract_id: int, values: Mapping[str, Any]) -> int:
        return int(
            self.conn.execute(  # type: ignore[index]
                addons.insert().values(contract_id=contract_id, **values)
            ).inserted_primary_key[0]
        )

    def latest(self, contract_id: int, plan: str) -> AddOnRow | None:
        found = self.conn.execute(
            self._query()
            .where(addons.c.contract_id == contract_id, addons.c.plan == plan)
            .order_by(addons.c.id.desc())
            .limit(1)
        ).first()
        return None if found is None else self._row(found)

    def list(
        self,
        account: str,
        at: dt.datetime,
        product: str | None = None,
        *,
        products: Sequence[str] | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> list[AddOnRow]:
        q = self._query().where(accounts.c.name == account, addons.c.at <= at)
        if product is not None:
            q = q.where(contracts.c.product == product)
        if products is not None:
            q = q.where(contracts.c.product.in_(list(products)))
        if after is not None:
            q = q.where(addons.c.id > after)
        q = q.order_by(addons.c.id).limit(limit)
        return [self._row(r, at) for r in self.conn.execute(q)]

    def for_contracts(
        self, contract_ids: Sequence[int], at: dt.datetime
    ) -> builtins.list[AddOnRow]:
        """Activations of these contracts as known at ``at`` (billing's histories)."""
        if not contract_ids:
            return []
        q = self._query().where(addons.c.contract_id.in_(list(contract_ids)), addons.c.at <= at)
        return [self._row(r, at) for r in self.conn.execute(q.order_by(addons.c.id))]

    def deactivate(self, addon_id: int, ends: dt.date, at: dt.datetime, actor: str) -> None:
        self.conn.execute(
            addons.update()
            .where(addons.c.id == addon_id)
            .values(ends=ends, deactivated_at=at, deactivated_by=actor)
        )


def _endpoint(r: Any) -> EndpointRow:
    return EndpointRow(
        id=r.id,
        account=r.account,
        url=r.url,
        events=tuple(r.events or ()),
        enabled=bool(r.enabled),
        created_at=r.created_at,
        created_by=r.created_by,
        secret_sealed=r.secret_sealed,
        removed_at=r.removed_at,
        disabled_at=r.disabled_at,
        disabled_reason=r.disabled_reason or "",
        failing_since=r.failing_since,
        failures=r.failures or 0,
    )


def _delivery(r: Any) -> DeliveryRow:
    return DeliveryRow(
        id=r.id,
        endpoint_id=r.endpoint_id,
        account=r.account,
        url=r.url,
        event_id=r.event_id,
        event=r.event,
        status=r.status,
        attempts=r.attempts,
        created_at=r.created_at,
        next_attempt_at=r.next_attempt_at,
        retry_until=r.retry_until,
        last_attempt_at=r.last_attempt_at,
        last_status=r.last_status,
        last_error=r.last_error or "",
        delivered_at=r.delivered_at,
    )


class SqlWebhookStore:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def _endpoints(self) -> sa.Select[Any]:
        return sa.select(webhook_endpoints, accounts.c.name.label("account")).join(
            accounts, accounts.c.id == webhook_endpoints.c.account_id
        )

    def _deliveries(self) -> sa.Select[Any]:
        return (
            sa.select(
                webhook_deliveries,
                accounts.c.name.label("account"),
                webhook_endpoints.c.url,
                webhook_endpoints.c.account_id,
            )
            .join(webhook_endpoints, webhook_endpoints.c.id == webhook_deliveries.c.endpoint_id)
            .join(accounts, accounts.c.id == webhook_endpoints.c.account_id)
        )

    def add_endpoint(
        self,
        account_id: int,
        url: str,
        events: Sequence[str],
        secret_sealed: str,
        at: dt.datetime,
        actor: str | None,
    ) -> int:
        return int(
            self.conn.execute(  # type: ignore[index]
                webhook_endpoints.insert().values(
                    account_id=account_id,
                    url=url,
                    events=list(events),
                    secret_sealed=secret_sealed,
                    enabled=True,
                    created_at=at,
                    created_by=actor,
                    disabled_reason="",
                    failures=0,
                )
            ).inserted_primary_key[0]
        )

    def endpoint(self, account_id: int, endpoint_id: int, *, lock: bool = False) -> EndpointRow:
        q = self._endpoints().where(
            webhook_endpoints.c.id == endpoint_id,
            webhook_endpoints.c.account_id == account_id,
            webhook_endpoints.c.removed_at.is_(None),
        )
        if lock and self.conn.dialect.name == "postgresql":
            q = q.with_for_update(of=webhook_endpoints)
        found = self.conn.execute(q).first()
        if found is None:
            raise NotFound("webhook endpoint", endpoint_id, "see `webhook list ACCOUNT`")
        return _endpoint(found)

    def endpoint_by_id(self, endpoint_id: int, *, lock: bool = False) -> EndpointRow:
        q = self._endpoints().where(webhook_endpoints.c.id == endpoint_id)
        if lock and self.conn.dialect.name == "postgresql":
            q = q.with_for_update(of=webhook_endpoints)
        return _endpoint(self.conn.execute(q).one())

    def endpoints(
        self, account_id: int, *, after: int | None = None, limit: int | None = None
    ) -> list[EndpointRow]:
        q = self._endpoints().where(
            webhook_endpoints.c.account_id == account_id, webhook_endpoints.c.removed_at.is_(None)
        )
        if after is not None:
            q = q.where(webhook_endpoints.c.id > after)
        q = q.order_by(webhook_endpoints.c.id).limit(limit)
        return [_endpoint(r) for r in self.conn.execute(q)]

    def subscribed(self, account: str, event: str | None = None) -> list[EndpointRow]:
        q = self._endpoints().where(
            accounts.c.name == account, webhook_endpoints.c.removed_at.is_(None)
        )
        return [
            e
            for e in (_endpoint(r) for r in self.conn.execute(q.order_by(webhook_endpoints.c.id)))
            if event is None or event in e.events
        ]

    def set_endpoint(self, endpoint_id: int, **values: Any) -> None:
        self.conn.execute(
            webhook_endpoints.update().where(webhook_endpoints.c.id == endpoint_id).values(**values)
        )

    def add_deliveries(self, rows: Sequence[Mapping[str, Any]]) -> int:
        if not rows:
            return 0
        insert = dialect_insert(self.conn)
        # The rows RETURNING gives are the new ones (a row count is not reliable on every driver).
        stmt = (
            insert(webhook_deliveries)
            .values([dict(r) for r in rows])
            .on_conflict_do_nothing(index_elements=["endpoint_id", "event_id"])
            .returning(webhook_deliveries.c.id)
        )
        return len(self.conn.execute(stmt).all())

    @staticmethod
    def _due(now: dt.datetime) -> tuple[sa.ColumnElement[bool], ...]:
        return (
            webhook_deliveries.c.status == "pending",
            webhook_deliveries.c.next_attempt_at <= now,
            sa.or_(
                webhook_deliveries.c.leased_until.is_(None),
                webhook_deliveries.c.leased_until <= now,
            ),
            webhook_endpoints.c.enabled.is_(True),
            webhook_endpoints.c.removed_at.is_(None),
        )

    def any_due(self, now: dt.datetime, account_id: int | None) -> bool:
        q = (
            sa.select(webhook_deliveries.c.id)
            .join(webhook_endpoints, webhook_endpoints.c.id == webhook_deliveries.c.endpoint_id)
            .where(*self._due(now))
            .limit(1)
        )
        if account_id is not None:
            q = q.where(webhook_endpoints.c.account_id == account_id)
        return self.conn.execute(q).first() is not None

    def claim_due(
        self, now: dt.datetime, lease_until: dt.datetime, account_id: int | None, limit: int
    ) -> list[ClaimedDelivery]:
        q = (
            sa.select(
                webhook_deliveries.c.id,
                webhook_deliveries.c.endpoint_id,
                webhook_deliveries.c.event_id,
                webhook_deliveries.c.payload,
                webhook_deliveries.c.attempts,
                webhook_deliveries.c.retry_until,
                webhook_endpoints.c.url,
                webhook_endpoints.c.secret_sealed,
            )
            .join(webhook_endpoints, webhook_endpoints.c.id == webhook_deliveries.c.endpoint_id)
            .where(*self._due(now))
            .order_by(webhook_deliveries.c.id)
            .limit(limit)
        )
        if account_id is not None:
            q = q.where(webhook_endpoints.c.account_id == account_id)
        if self.conn.dialect.name == "postgresql":
            # Two senders never take the same delivery: the second skips what the first holds.
            q = q.with_for_update(of=webhook_deliveries, skip_locked=True)
        rows = self.conn.execute(q).all()
        if rows:
            self.conn.execute(
                webhook_deliveries.update()
                .where(webhook_deliveries.c.id.in_([r.id for r in rows]))
                .values(leased_until=lease_until)
            )
        return [
            ClaimedDelivery(
                id=r.id,
                endpoint_id=r.endpoint_id,
                url=r.url,
                secret_sealed=r.secret_sealed,
                event_id=r.event_id,
                payload=r.payload,
                attempts=r.attempts,
                retry_until=r.retry_until,
            )
            for r in rows
        ]

    def record_attempt(
        self, delivery_id: int, at: dt.datetime, result: PostResult, **values: Any
    ) -> None:
        self.conn.execute(
            webhook_attempts.insert().values(
                delivery_id=delivery_id,
                at=at,
                status_code=result.status,
                error=result.error[:_ERROR_MAX],
                seconds=result.seconds,
            )
        )
        self.conn.execute(
            webhook_deliveries.update()
            .where(webhook_deliveries.c.id == delivery_id)
            .values(
                leased_until=None,
                last_attempt_at=at,
                last_status=result.status,
                last_error=result.error[:_ERROR_MAX],
                **values,
            )
        )

    def deliveries(
        self,
        account_id: int,
        endpoint_id: int | None,
        status: str | None,
        limit: int,
        *,
        before: int | None = None,
    ) -> list[DeliveryRow]:
        q = self._deliveries().where(webhook_endpoints.c.account_id == account_id)
        if before is not None:
            q = q.where(webhook_deliveries.c.id < before)
        if endpoint_id is not None:
            q = q.where(webhook_deliveries.c.endpoint_id == endpoint_id)
        if status is not None:
            q = q.where(webhook_deliveries.c.status == status)
        q = q.order_by(webhook_deliveries.c.id.desc()).limit(limit)
        return [_delivery(r) for r in self.conn.execute(q)]

    def delivery(self, account_id: int, delivery_id: int) -> DeliveryRow:
        found = self.conn.execute(
            self._deliveries().where(
                webhook_deliveries.c.id == delivery_id,
                webhook_endpoints.c.account_id == account_id,
            )
        ).first()
        if found is None:
            raise NotFound("webhook delivery", delivery_id, "see `webhook deliveries ACCOUNT`")
        return _delivery(found)

    def attempts(self, delivery_id: int) -> list[dict[str, Any]]:
        q = (
            sa.select(webhook_attempts)
            .where(webhook_attempts.c.delivery_id == delivery_id)
            .order_by(webhook_attempts.c.id)
        )
        return [
            {
                "at": r.at,
                "status_code": r.status_code,
                "error": r.error,
                "seconds": round(r.seconds, 3),
            }
            for r in self.conn.execute(q)
        ]

    def set_delivery(self, delivery_id: int, **values: Any) -> None:
        self.conn.execute(
            webhook_deliveries.update()
            .where(webhook_deliveries.c.id == delivery_id)
            .values(**values)
        )

    def end_pending(self, endpoint_id: int, reason: str) -> int:
        result = self.conn.execute(
            webhook_deliveries.update()
            .where(
                webhook_deliveries.c.endpoint_id == endpoint_id,
                webhook_deliveries.c.status == "pending",
            )
            .values(status="failed", last_error=reason[:_ERROR_MAX], leased_until=None)
        )
        return max(0, result.rowcount)

    def reschedule_held(self, endpoint_id: int, now: dt.datetime) -> int:
        result = self.conn.execute(
            webhook_deliveries.update()
            .where(
                webhook_deliveries.c.endpoint_id == endpoint_id,
                webhook_deliveries.c.status == "pending",
            )
            .values(next_attempt_at=now, retry_until=None, leased_until=None)
        )
        return max(0, result.rowcount)
