"""Installations (connectors) and their core settings, in SQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from ...domain.connectors import ConnectorSettings
from ...domain.model import Account
from ...services.ports.stores import Installation
from ..tables import accounts, installations, sync_connectors, sync_cursors

__all__ = ["SqlInstallStore"]


def _query() -> sa.Select[Any]:
    return (
        sa.select(
            installations,
            accounts.c.name.label("account_name"),
            sync_connectors.c.activated_roles,
            sync_connectors.c.interval_minutes,
            sync_connectors.c.full_every,
            sync_connectors.c.guard_share,
            sync_connectors.c.guard_min,
            sync_connectors.c.uninstalled_at,
        )
        .join(accounts, accounts.c.id == installations.c.account_id)
        .outerjoin(
            sync_connectors,
            sa.and_(
                sync_connectors.c.account_id == installations.c.account_id,
                sync_connectors.c.product == installations.c.product,
            ),
        )
    )


def _to_installation(row: Any) -> Installation:
    connector = (
        ConnectorSettings()
        if row.interval_minutes is None
        else ConnectorSettings(
            tuple(row.activated_roles or ()),
            row.interval_minutes,
            row.full_every,
            row.guard_share,
            row.guard_min,
        )
    )
    return Installation(
        account=row.account_name,
        account_id=row.account_id,
        product=row.product,
        adapter=row.adapter,
        enabled=bool(row.enabled),
        stored=row.settings or {},
        installed_at=row.installed_at,
        installed_by=row.installed_by,
        uninstall_effective=row.uninstall_effective,
        connector=connector,
        uninstalled_at=row.uninstalled_at,
    )


def _connector_values(connector: ConnectorSettings) -> dict[str, Any]:
    return {
        "activated_roles": list(connector.activated_roles),
        "interval_minutes": connector.interval_minutes,
        "full_every": connector.full_every,
        "guard_share": connector.guard_share,
        "guard_min": connector.guard_min,
    }


class SqlInstallStore:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def find(self, account: str, product: str) -> Installation | None:
        row = self.conn.execute(
            _query().where(accounts.c.name == account, installations.c.product == product)
        ).first()
        return None if row is None else _to_installation(row)

    def list(self) -> list[Installation]:
        query = _query().order_by(accounts.c.name, installations.c.product)
        return [_to_installation(r) for r in self.conn.execute(query)]

    def save(
        self,
        account: Account,
        product: str,
        *,
        adapter: str,
        settings: Mapping[str, Any],
        connector: ConnectorSettings,
        at: dt.datetime,
        actor: str,
    ) -> tuple[bool, tuple[str, ...] | None]:
        conn = self.conn
        where = (installations.c.account_id == account.id, installations.c.product == product)
        existed = conn.execute(sa.select(installations.c.product).where(*where)).first()
        values = {"adapter": adapter, "settings": dict(settings)}
        if existed is None:
            conn.execute(
                installations.insert().values(
                    account_id=account.id,
                    product=product,
                    enabled=True,
                    installed_at=at,
                    installed_by=actor,
                    **values,
                )
            )
        else:
            conn.execute(
                installations.update().where(*where).values(uninstall_effective=None, **values)
            )
        key = (sync_connectors.c.account_id == account.id, sync_connectors.c.product == product)
        before = conn.execute(sa.select(sync_connectors.c.activated_roles).where(*key)).scalar()
        connector_values = {**_connector_values(connector), "uninstalled_at": None}
        done = conn.execute(sync_connectors.update().where(*key).values(**connector_values))
        if not done.rowcount:
            conn.execute(
                sync_connectors.insert().values(
                    account_id=account.id, product=product, **connector_values
                )
            )
        return existed is not None, None if before is None else tuple(before)

    def drop_cursor(self, account_id: int, product: str) -> None:
        self.conn.execute(
            sync_cursors.delete().where(
                sync_cursors.c.account_id == account_id, sync_cursors.c.product == product
            )
        )

    def set_enabled(self, account_id: int, product: str, enabled: bool) -> None:
        self.conn.execute(
            installations.update()
            .where(installations.c.account_id == account_id, installations.c.product == product)
            .values(enabled=enabled)
        )

    def set_uninstall_effective(
        self, account_id: int, product: str, effective: dt.date | None
    ) -> None:
        self.conn.execute(
            installations.update()
            .where(installations.c.account_id == account_id, installations.c.product == product)
            .values(uninstall_effective=effective)
        )

    def mark_uninstalled(self, account_id: int, product: str, at: dt.datetime) -> None:
        conn = self.conn
        self.set_enabled(account_id, product, False)
        key = (sync_connectors.c.account_id == account_id, sync_connectors.c.product == product)
        done = conn.execute(sync_connectors.update().where(*key).values(uninstalled_at=at))
        if not done.rowcount:
            conn.execute(
                sync_connectors.insert().values(
                    account_id=account_id,
                    product=product,
                    **_connector_values(ConnectorSettings()),
                    uninstalled_at=at,
                )
            )
