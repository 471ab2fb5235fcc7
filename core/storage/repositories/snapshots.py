"""What an entitlement decision needs about one (account, product), read in one transaction."""

from __future__ import annotations

import sqlalchemy as sa

from ...domain.entitlement import Snapshot
from ...errors import NotFound
from ..tables import accounts, contracts, installations, integration_users, seats

__all__ = ["SqlSnapshotStore"]


class SqlSnapshotStore:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def load(self, account: str, product: str) -> Snapshot:
        conn = self.conn
        acct = conn.execute(
            sa.select(accounts.c.id, accounts.c.region).where(accounts.c.name == account)
        ).first()
        if acct is None:
            raise NotFound(
                "account", account, remedy="create_account", context={"account": account}
            )
        contract = conn.execute(
            sa.select(contracts.c.quantity, contracts.c.entitlement_version).where(
                contracts.c.account_id == acct.id, contracts.c.product == product
            )
        ).first()
        enabled = conn.execute(
            sa.select(installations.c.enabled).where(
                installations.c.account_id == acct.id, installations.c.product == product
            )
        ).scalar()
        seated = sa.exists().where(
            seats.c.account_id == acct.id,
            seats.c.product == product,
            seats.c.user_id == integration_users.c.id,
        )
        rows = conn.execute(
            sa.select(
                integration_users.c.email, integration_users.c.active, seated.label("seated")
            ).where(integration_users.c.account_id == acct.id)
        )
        users = {r.email: (bool(r.active), bool(r.seated)) for r in rows}
        return Snapshot(
            account=account,
            region=acct.region,
            version=-1 if contract is None else contract.entitlement_version,
            has_contract=contract is not None,
            contracted=0 if contract is None else contract.quantity,
            enabled=enabled is None or bool(enabled),  # no installation row: nothing disabled it
            users=users,
            assigned=sum(1 for _, s in users.values() if s),
        )

    def version(self, account: str, product: str) -> int:
        version = self.conn.execute(
            sa.select(contracts.c.entitlement_version)
            .join(accounts, accounts.c.id == contracts.c.account_id)
            .where(accounts.c.name == account, contracts.c.product == product)
        ).scalar()
        return -1 if version is None else int(version)
