"""The sync engine's SQL (:class:`~seatgate.core.services.ports.sync.SyncStore`): runs and their
leases, cursors, links and their records' state, quarantine, the auto-install waiting list and the
agent directory.

A run writes a row per pulled user, so the hot paths go through :mod:`..bulk` (statements sent
straight to the driver). Rows are looked up, updated and deleted by key with ``= ANY(array)`` on
PostgreSQL (one parameter, planned for its value each time: :func:`..bulk.select_any`) and
chunked ``IN`` lists on SQLite; on PostgreSQL a batch's inserts and updates are one statement per table over
array parameters (``unnest``), a round trip each whatever the batch holds (issue 12 item 9).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from ...domain.sync import Known, LinkState, Quarantined, Staged
from ...services.ports.sync import AgentRow, CursorState, RunCounts, RunLease
from ..bulk import BulkInsert, bind, chunks, execute_any, mark, rows, select_any, unnest
from ..dialects import dialect_insert
from ..stamps import sqlite_change_stamp
from ..tables import (
    agent_directory,
    auto_install_waiting,
    external_ids,
    installations,
    integration_users,
    sync_cursors,
    sync_quarantine,
    sync_runs,
)

# Autovacuum's defaults (autovacuum_analyze_threshold, autovacuum_analyze_scale_factor): a run
# re-analyzes a table when it wrote more than this many rows plus this share of the table.
ANALYZE_BASE = 50
ANALYZE_SHARE = 0.1

__all__ = ["SqlSyncStore"]

#: The account's condition in a lookup of ``external_ids`` by ``user_id``. The ``+ 0`` keeps
#: SQLite from answering it with the primary key's prefix (account_id[, product]), which its
#: planner prefers to ``ix_external_ids_user_id`` without statistics: each chunk of 500 users
#: then scanned every link of the account (a 100,000-user resync spent 4.6 s in its pages'
#: lookups of the other connectors' roles). On both databases such a lookup goes by ``user_id``,
#: whatever the statistics say.
BY_USER = "account_id + 0"


def _by_user(links: sa.Table) -> sa.ColumnElement[int]:
    """:data:`BY_USER` for a query built with SQLAlchemy."""
    return links.c.account_id + 0


_RUN_COLUMNS = (
    "id",
    "product",
    "started_at",
    "outcome",
    "full",
    "forced",
    "pulled",
    "created",
    "updated",
    "deactivated",
    "quarantined",
    "seated",
    "waiting",
    "gated",
    "agents_synced",
    "requests",
    "retries",
    "seconds",
    "message",
    "owner",
    "heartbeat_at",
    "lease_expires_at",
)


class SqlSyncStore:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.pg = conn.dialect.name == "postgresql"
        self._next_id: int | None = None
        self._roles_text: dict[Any, tuple[str, ...]] = {}
        self._roles_json: dict[tuple[str, ...], Any] = {}
        self._bulk: dict[str, BulkInsert] = {}

    # -- helpers -----------------------------------------------------------------------------------
    def _roles(self, text: Any) -> tuple[str, ...]:
        """Stored roles (JSON text as the driver returns it), parsed once per distinct text."""
        out = self._roles_text.get(text)
        if out is None:
            out = self._roles_text[text] = tuple(json.loads(text)) if text else ()
        return out

    def _select_many(
        self, sql: str, params: Sequence[Any], values: Sequence[Any]
    ) -> Iterator[Sequence[Any]]:
        """Rows of ``sql`` (ending in ``... <column>``) for every value (:func:`select_any`)."""
        return select_any(self.conn, sql, params, values)

    def _execute_many(self, sql: str, params: Sequence[Any], values: Sequence[Any]) -> None:
        """Run ``sql`` (an UPDATE or DELETE ending in ``... <column>``) for every value
        (:func:`execute_any`)."""
        execute_any(self.conn, sql, params, values)

    def _roles_value(self, roles: tuple[str, ...]) -> Any:
        """A role list as the driver receives it for a ``roles`` column, converted once per set."""
        out = self._roles_json.get(roles)
        if out is None:
            out = self._roles_json[roles] = bind(self.conn, external_ids.c.roles, list(roles))
        return out

    def _any(self, query: sa.Select[Any]) -> bool:
        """Whether ``query`` finds a row (it reads one at most)."""
        return self.conn.execute(query.limit(1)).first() is not None

    def _bulk_of(self, key: str, table: sa.Table, columns: Sequence[str], **kw: Any) -> BulkInsert:
        bulk = self._bulk.get(key)
        if bulk is None:
            bulk = self._bulk[key] = BulkInsert(self.conn, table, columns, **kw)
        return bulk

    # -- runs and leases ---------------------------------------------------------------------------
    def cursor(self, account_id: int, product: str) -> CursorState | None:
        row = self.conn.execute(
            sa.select(
                sync_cursors.c.cursor, sync_cursors.c.runs_since_full, sync_cursors.c.last_full_at
            ).where(sync_cursors.c.account_id == account_id, sync_cursors.c.product == product)
        ).first()
        return None if row is None else CursorState(row[0], int(row[1]), row[2])

    def save_cursor(
        self, account_id: int, product: str, state: CursorState, at: dt.datetime
    ) -> None:
        values = {
            "cursor": state.cursor,
            "runs_since_full": state.runs_since_full,
            "last_full_at": state.last_full_at,
            "updated_at": at,
        }
        stmt = dialect_insert(self.conn)(sync_cursors)
        self.conn.execute(
            stmt.values(account_id=account_id, product=product, **values).on_conflict_do_update(
                index_elements=["account_id", "product"], set_=values
            )
        )

    def _running(self, account_id: int, product: str) -> list[RunLease]:
        r = sync_runs.c
        return [
            RunLease(row[0], row[1] or "", row[2], row[3], row[4])
            for row in self.conn.execute(
                sa.select(r.id, r.owner, r.started_at, r.heartbeat_at, r.lease_expires_at)
                .where(r.account_id == account_id, r.product == product, r.outcome == "running")
                .order_by(r.id)
            )
        ]

    def expire_leases(
        self, account_id: int, product: str, now: dt.datetime, *, owned_by: str | None = None
    ) -> list[RunLease]:
        dead = [
            lease
            for lease in self._running(account_id, product)
            if lease.expires_at is None
            or lease.expires_at <= now
            or (owned_by is not None and lease.owner.startswith(owned_by))
        ]
        for lease in dead:
            last = lease.heartbeat_at or lease.started_at
            self.conn.execute(
                sync_runs.update()
                .where(sync_runs.c.id == lease.run_id, sync_runs.c.outcome == "running")
                .values(
                    outcome="interrupted",
                    message=(
                        f"interrupted: its process ({lease.owner}) stopped renewing its lease; "
                        f"last heard of at {last.isoformat()}; the next run completes its work"
                    )[:500],
                )
            )
        return dead

    def live_run(self, account_id: int, product: str, now: dt.datetime) -> RunLease | None:
        for lease in self._running(account_id, product):
            if lease.expires_at is not None and lease.expires_at > now:
                return lease
        return None

    def start_run(
        self,
        account_id: int,
        product: str,
        *,
        started: dt.datetime,
        full: bool,
        forced: bool,
        owner: str,
        lease_until: dt.datetime,
        message: str = "",
    ) -> int:
        inserted = self.conn.execute(
            sync_runs.insert().values(
                account_id=account_id,
                product=product,
                started_at=started,
                outcome="running",
                full=full,
                forced=forced,
                owner=owner[:120],
                heartbeat_at=started,
                lease_expires_at=lease_until,
                message=message[:500],
            )
        ).inserted_primary_key
        assert inserted is not None
        return int(inserted[0])

    def renew_lease(self, run_id: int, owner: str, at: dt.datetime, until: dt.datetime) -> bool:
        r = sync_runs.c
        done = self.conn.execute(
            sync_runs.update()
            .where(r.id == run_id, r.owner == owner[:120], r.outcome == "running")
            .values(heartbeat_at=at, lease_expires_at=until)
        )
        return bool(done.rowcount)

    def finish_run(
        self,
        run_id: int,
        *,
        outcome: str,
        full: bool,
        counts: RunCounts,
        requests: int,
        retries: int,
        seconds: float,
        message: str,
        only_running: bool = False,
    ) -> None:
        c = counts
        where = [sync_runs.c.id == run_id]
        if only_running:
            where.append(sync_runs.c.outcome == "running")
        self.conn.execute(
            sync_runs.update()
            .where(*where)
            .values(
                outcome=outcome,
                full=full,
                pulled=c.pulled,
                created=c.created,
                updated=c.updated,
                deactivated=c.deactivated,
                quarantined=c.quarantined,
                seated=c.seated,
                waiting=c.waiting,
                gated=c.gated,
                agents_synced=c.agents_synced,
                requests=requests,
                retries=retries,
                seconds=seconds,
                message=message[:500],
                lease_expires_at=None,
            )
        )

    def runs(self, account_id: int, product: str | None, limit: int) -> list[dict[str, Any]]:
        query = (
            sa.select(*(sync_runs.c[c] for c in _RUN_COLUMNS))
            .where(sync_runs.c.account_id == account_id)
            .order_by(sync_runs.c.id.desc())
            .limit(limit)
        )
        if product is not None:
            query = query.where(sync_runs.c.product == product)
        return [dict(r._mapping) for r in self.conn.execute(query)]

    def last_starts(self) -> dict[tuple[int, str], dt.datetime]:
        return {
            (r[0], r[1]): r[2]
            for r in self.conn.execute(
                sa.select(
                    sync_runs.c.account_id,
                    sync_runs.c.product,
                    sa.func.max(sync_runs.c.started_at),
                ).group_by(sync_runs.c.account_id, sync_runs.c.product)
            )
        }

    # -- what is known -----------------------------------------------------------------------------
    def has_links(self, account_id: int, product: str) -> bool:
        return self._any(
            sa.select(external_ids.c.user_id).where(
                external_ids.c.account_id == account_id, external_ids.c.product == product
            )
        )

    def has_users(self, account_id: int) -> bool:
        return self._any(
            sa.select(integration_users.c.id).where(integration_users.c.account_id == account_id)
        )

    def count_active_linked(self, account_id: int, product: str) -> int:
        return int(
            self.conn.execute(
                sa.select(sa.func.count(sa.distinct(external_ids.c.user_id)))
                .join(integration_users, integration_users.c.id == external_ids.c.user_id)
                .where(
                    external_ids.c.account_id == account_id,
                    external_ids.c.product == product,
                    integration_users.c.active.is_(True),
                )
            ).scalar_one()
        )

    def linked(self, account_id: int, product: str, exts: Sequence[str]) -> dict[str, LinkState]:
        m = mark(self.conn)
        roles = self._roles
        out = list(
            self._select_many(
                "SELECT external_ids.external_id, integration_users.id, integration_users.email, "
                "integration_users.name, integration_users.active, external_ids.active, "
                "external_ids.roles, integration_users.roles FROM external_ids "
                "JOIN integration_users ON integration_users.id = external_ids.user_id "
                f"WHERE external_ids.account_id = {m} AND external_ids.product = {m} "
                "AND external_ids.external_id",
                (account_id, product),
                exts,
            )
        )
        others = self._other_roles(account_id, product, sorted({r[1] for r in out}))
        return {
            ext: LinkState(
                uid,
                email,
                name,
                bool(active),
                bool(link_active),
                roles(link_roles),
                roles=roles(user_roles),
                others=others.get(uid, ()),
            )
            for ext, uid, email, name, active, link_active, link_roles, user_roles in out
        }

    def _other_roles(
        self, account_id: int, product: str, user_ids: Sequence[int]
    ) -> dict[int, tuple[str, ...]]:
        """The roles of these users' records in the account's other connectors, by user (what
        their user rows show besides this connector's record: ``user_roles``). No row, and one
        index lookup, on an account with one connector."""
        if not user_ids:
            return {}
        m = mark(self.conn)
        found: dict[int, set[str]] = {}
        for uid, link_roles in self._select_many(
            f"SELECT user_id, roles FROM external_ids WHERE {BY_USER} = {m} AND product <> {m} "
            "AND user_id",
            (account_id, product),
            user_ids,
        ):
            found.setdefault(uid, set()).update(self._roles(link_roles))
        return {uid: tuple(sorted(held)) for uid, held in found.items()}

    def known(self, account_id: int, product: str, emails: Sequence[str]) -> dict[str, Known]:
        m = mark(self.conn)
        found: dict[str, tuple[int, str, bool, tuple[str, ...]]] = {}
        for email, uid, name, active, user_roles in self._select_many(
            f"SELECT email, id, name, active, roles FROM integration_users WHERE account_id = {m} "
            "AND email",
            (account_id,),
            emails,
        ):
            found[email] = (uid, name, bool(active), self._roles(user_roles))
        links: dict[int, tuple[str, bool, tuple[str, ...]]] = {}
        others: dict[int, set[str]] = {}
        by_id = sorted(uid for uid, _, _, _ in found.values())
        # Every connector's links of these users: this one's is the user's link, the others'
        # roles are what the user row shows besides it (``user_roles``).
        for uid, link_product, ext, active, link_roles in self._select_many(
            "SELECT user_id, product, external_id, active, roles FROM external_ids "
            f"WHERE {BY_USER} = {m} AND user_id",
            (account_id,),
            by_id,
        ):
            if link_product != product:
                others.setdefault(uid, set()).update(self._roles(link_roles))
            # Two links of one user (older data): the active one stands for it.
            elif uid not in links or (active and not links[uid][1]):
                links[uid] = (ext, bool(active), self._roles(link_roles))
        return {
            email: Known(
                uid,
                name,
                active,
                links.get(uid),
                roles=user_roles,
                others=tuple(sorted(others.get(uid, ()))),
            )
            for email, (uid, name, active, user_roles) in found.items()
        }

    # -- writes of the reconcile -------------------------------------------------------------------
    def insert_users(
        self, account_id: int, product: str, records: Sequence[Staged], at: dt.datetime
    ) -> list[int]:
        if not records:
            return []
        # Another connector of the account (another worker, another process) may have created
        # some of these emails since the run read what is known: link to those users instead of
        # failing on the account's unique email (the fleet syncs an account's CRMs at once).
        taken = self._insert_new_users(account_id, records, at)
        ids = [taken[r.email] for r in records]
        self.link(
            account_id,
            product,
            [(r.ext, uid, r.active, r.roles) for uid, r in zip(ids, records, strict=True)],
        )
        return ids

    def _insert_new_users(
        self, account_id: int, records: Sequence[Staged], at: dt.datetime
    ) -> dict[str, int]:
        """The id of every email of ``records``: its user's, inserted now unless the account
        already has one (the first record of an email gives the new user its name and state)."""
        if self.pg:
            return self._insert_new_users_pg(account_id, records, at)
        # SQLite: the run holds the write lock (BEGIN IMMEDIATE), so what is there now stays
        # there, and the run hands out ids itself, skipping RETURNING, the costliest part of a
        # bulk insert.
        # The rows carry their change stamp (migration core_0005: the insert trigger then leaves
        # them alone, one write per row instead of two), read in this transaction as the trigger
        # reads it.
        bulk = self._bulk_of(
            "users",
            integration_users,
            (
                "id",
                "account_id",
                "email",
                "name",
                "active",
                "roles",
                "created_at",
                "updated_at",
                "change_seq",
            ),
        )
        stamp = sqlite_change_stamp(self.conn, account_id)
        taken = self._ids_by_email(account_id, [r.email for r in records])
        if self._next_id is None:
            iu = integration_users
            self._next_id = int(self.conn.execute(sa.select(sa.func.max(iu.c.id))).scalar() or 0)
        uid = self._next_id
        at_value = bulk.value("created_at", at)
        values: list[Any] = []
        add = values.extend
        for r in records:
            if r.email in taken:
                continue
            uid += 1
            taken[r.email] = uid
            add(
                (
                    uid,
                    account_id,
                    r.email,
                    r.name,
                    r.active,
                    bulk.roles(r.roles),
                    at_value,
                    at_value,
                    stamp,
                )
            )
        self._next_id = uid
        bulk.run(values)
        return taken

    def _insert_new_users_pg(
        self, account_id: int, records: Sequence[Staged], at: dt.datetime
    ) -> dict[str, int]:
        # One INSERT ... ON CONFLICT DO NOTHING RETURNING and no lookup before it (issue 12 item
        # 9): the emails it skipped (there already, or inserted meanwhile by a concurrent run
        # under READ COMMITTED) are read back after, usually none.
        bulk = self._bulk_of(
            "users",
            integration_users,
            ("account_id", "email", "name", "active", "roles", "created_at", "updated_at"),
            conflict=("account_id", "email"),
            update=(),  # DO NOTHING: a user there already stays as it is
            returning=("email", "id"),
            fixed=("account_id", "created_at", "updated_at"),
        )
        at_value = bulk.value("created_at", at)
        values: list[Any] = []
        add = values.extend
        for r in records:
            add((account_id, r.email, r.name, r.active, bulk.roles(r.roles), at_value, at_value))
        taken: dict[str, int] = dict(bulk.run(values))
        late = [r.email for r in records if r.email not in taken]
        if late:
            taken.update(self._ids_by_email(account_id, late))
        return taken

    def _ids_by_email(self, account_id: int, emails: Sequence[str]) -> dict[str, int]:
        """The ids of the account's users among ``emails``."""
        m = mark(self.conn)
        return {
            email: uid
            for email, uid in self._select_many(
                f"SELECT email, id FROM integration_users WHERE account_id = {m} AND email",
                (account_id,),
                emails,
            )
        }

    def link(
        self, account_id: int, product: str, links: Sequence[tuple[str, int, bool, Any]]
    ) -> None:
        if not links:
            return
        bulk = self._bulk_of(
            "links",
            external_ids,
            ("account_id", "product", "external_id", "user_id", "active", "roles"),
            fixed=("account_id", "product"),
        )
        values: list[Any] = []
        add = values.extend
        for ext, uid, active, roles in links:
            add((account_id, product, ext, uid, active, bulk.roles(tuple(roles))))
        bulk.run(values)

    def unlink(self, account_id: int, product: str, exts: Sequence[str]) -> None:
        m = mark(self.conn)
        self._execute_many(
            f"DELETE FROM external_ids WHERE account_id = {m} AND product = {m} AND external_id",
            (account_id, product),
            exts,
        )

    def update_users(self, updates: Sequence[tuple[int, Staged]], at: dt.datetime) -> None:
        if not updates:
            return
        iu = integration_users
        if self.pg:
            # One UPDATE ... FROM unnest(arrays) per batch (see ..bulk); a user given twice
            # takes its last values, as one statement per row would leave it.
            last = dict(updates)
            roles = self._roles_value
            self.conn.exec_driver_sql(
                "UPDATE integration_users AS t SET email = v.email, name = v.name, "
                "active = v.active, roles = v.roles, updated_at = %s "
                f"FROM {unnest(self.conn, iu, ('id', 'email', 'name', 'active', 'roles'))} "
                "WHERE t.id = v.id",
                (
                    bind(self.conn, iu.c.updated_at, at),
                    list(last),
                    [r.email for r in last.values()],
                    [r.name for r in last.values()],
                    [r.active for r in last.values()],
                    [roles(r.roles) for r in last.values()],
                ),
            )
            return
        self.conn.execute(
            iu.update()
            .where(iu.c.id == sa.bindparam("b_id"))
            .values(
                email=sa.bindparam("b_email"),
                name=sa.bindparam("b_name"),
                active=sa.bindparam("b_active"),
                roles=sa.bindparam("b_roles", type_=iu.c.roles.type),
                updated_at=sa.bindparam("b_at", type_=iu.c.updated_at.type),
            ),
            [
                {
                    "b_id": uid,
                    "b_email": r.email,
                    "b_name": r.name,
                    "b_active": r.active,
                    "b_roles": list(r.roles),
                    "b_at": at,
                }
                for uid, r in updates
            ],
        )

    def rename_users(self, updates: Sequence[tuple[int, Staged]], at: dt.datetime) -> None:
        # Each first takes a placeholder that is no address (no "@"), then its new email: users
        # trading emails in one pull (a swap, a chain) never meet the account's unique email.
        if not updates:
            return
        self._execute_many(
            "UPDATE integration_users SET email = '#' || CAST(id AS VARCHAR(20)) WHERE id",
            (),
            sorted({uid for uid, _ in updates}),
        )
        self.update_users(updates, at)

    def update_links(
        self,
        account_id: int,
        product: str,
        updates: Sequence[tuple[str, bool, tuple[str, ...]]],
    ) -> None:
        if not updates:
            return
        x = external_ids
        if self.pg:
            last = {ext: (active, roles) for ext, active, roles in updates}
            roles_value = self._roles_value
            self.conn.exec_driver_sql(
                "UPDATE external_ids AS t SET active = v.active, roles = v.roles "
                f"FROM {unnest(self.conn, x, ('external_id', 'active', 'roles'))} "
                "WHERE t.account_id = %s AND t.product = %s AND t.external_id = v.external_id",
                (
                    list(last),
                    [active for active, _ in last.values()],
                    [roles_value(roles) for _, roles in last.values()],
                    account_id,
                    product,
                ),
            )
            return
        self.conn.execute(
            x.update()
            .where(
                x.c.account_id == account_id,
                x.c.product == product,
                x.c.external_id == sa.bindparam("b_ext"),
            )
            .values(
                active=sa.bindparam("b_active"),
                roles=sa.bindparam("b_roles", type_=x.c.roles.type),
            ),
            [
                {"b_ext": ext, "b_active": active, "b_roles": list(roles)}
                for ext, active, roles in updates
            ],
        )

    def quarantine(
        self,
        run_id: int,
        account_id: int,
        product: str,
        rows: Sequence[Quarantined],
        at: dt.datetime,
    ) -> None:
        if not rows:
            return
        self.conn.execute(
            sync_quarantine.insert(),
            [
                {
                    "run_id": run_id,
                    "account_id": account_id,
                    "product": product,
                    "external_id": q.ext[:100],
                    "email": q.email[:254],
                    "reason": q.reason,
                    "at": at,
                }
                for q in rows
            ],
        )

    def active_links(self, account_id: int, product: str) -> list[tuple[str, int]]:
        m = mark(self.conn)
        return [
            (r[0], r[1])
            for r in rows(
                self.conn,
                "SELECT external_ids.external_id, external_ids.user_id "
                "FROM external_ids JOIN integration_users "
                "ON integration_users.id = external_ids.user_id "
                f"WHERE external_ids.account_id = {m} AND external_ids.product = {m} "
                f"AND integration_users.active = {m}",
                (account_id, product, True),
            )
        ]

    def linked_elsewhere(self, account_id: int, product: str, user_ids: Sequence[int]) -> set[int]:
        m = mark(self.conn)
        return {
            r[0]
            for r in self._select_many(
                f"SELECT user_id FROM external_ids WHERE {BY_USER} = {m} AND product <> {m} "
                "AND user_id",
                (account_id, product),
                user_ids,
            )
        }

    def deactivate(
        self,
        account_id: int,
        product: str,
        gone: Sequence[int],
        exclusive: Sequence[int],
        at: dt.datetime,
    ) -> None:
        m = mark(self.conn)
        self._execute_many(
            f"UPDATE integration_users SET active = {m}, updated_at = {m} WHERE id",
            (False, bind(self.conn, integration_users.c.updated_at, at)),
            exclusive,
        )
        self._execute_many(
            f"UPDATE external_ids SET active = {m} "
            f"WHERE {BY_USER} = {m} AND product = {m} AND user_id",
            (False, account_id, product),
            gone,
        )
        self.leave_waiting(account_id, product, gone)

    def analyze(self, *, users: bool = True, agents: bool = True, written: int) -> None:
        if not self.pg:
            return
        # A first sync bulk-loads these tables; the planner must not go on believing they are
        # empty (issue 12 item 9: lookups of 2-5 s per chunk on never-analyzed tables). A table
        # is analyzed when it never was, or when the run wrote more than autovacuum's own
        # threshold of it (50 rows + 10%): at a fleet's scale, re-analyzing tables of millions of
        # rows after each run of a thousand users kept a PostgreSQL core busy in ANALYZE.
        named = [
            *(("integration_users", "external_ids", "auto_install_waiting") if users else ()),
            *(("agent_directory", "seats") if agents else ()),
        ]
        if not named or written <= ANALYZE_BASE:
            return
        sizes = self.conn.exec_driver_sql(
            "SELECT relname, reltuples FROM pg_class WHERE oid = ANY(CAST(%s AS regclass[]))",
            (named,),
        ).all()
        stale = [
            name
            for name, rows in sizes
            if rows < 0 or written > ANALYZE_BASE + ANALYZE_SHARE * rows
        ]
        if stale:
            self.conn.exec_driver_sql(f"ANALYZE {', '.join(sorted(stale))}")

    def analyze_grown_users(self, inserted: int) -> bool:
        # PostgreSQL keeps, per session, the plan of each foreign key's check (the seats', the
        # links', the agents' rows name a user) and re-plans it only when the user table's
        # statistics change. A plan made while the table was a page long may find the account's
        # users by (account_id, change_seq) and filter them by id: measured in a first sync of
        # 100,000 users whose connection had checked a seat's key before it, 2-4 ms per row,
        # 1-4 s per batch of links or seats, more than ten minutes for the run
        # (tests/sync/test_key_check_plans.py). Analyzing each time the table doubles re-plans
        # every session's statements on it (PostgreSQL's documented rule for prepared
        # statements), some 9 times in such a run. SKIP_LOCKED: another session analyzing or
        # vacuuming the table (a fleet's other run, autovacuum) is never waited for, which could
        # outlast the connection's lock_timeout; the next batch tries again.
        if not self.pg or inserted <= ANALYZE_BASE:
            return False
        query = "SELECT reltuples FROM pg_class WHERE oid = CAST('integration_users' AS regclass)"
        rows = self.conn.exec_driver_sql(query).scalar_one()
        if rows >= 0 and inserted <= rows:
            return False
        self.conn.exec_driver_sql("ANALYZE (SKIP_LOCKED) integration_users")
        # Skipped, the table's count is unchanged (a table that grew by ``inserted`` rows).
        return bool(self.conn.exec_driver_sql(query).scalar_one() != rows)

    # -- auto install ------------------------------------------------------------------------------
    def anyone_waiting(self, account_id: int, product: str) -> bool:
        w = auto_install_waiting
        return self._any(
            sa.select(w.c.user_id).where(w.c.account_id == account_id, w.c.product == product)
        )

    def waiting(
        self, account_id: int, product: str
    ) -> list[tuple[int, str, bool, tuple[str, ...], dt.datetime, str]]:
        w, iu = auto_install_waiting, integration_users
        rows_ = self.conn.execute(
            sa.select(w.c.user_id, iu.c.email, iu.c.active, w.c.since, w.c.reason)
            .join(iu, iu.c.id == w.c.user_id)
            .where(w.c.account_id == account_id, w.c.product == product)
            .order_by(w.c.since, w.c.user_id)
        ).all()
        # The records' own state, by user id (one array parameter / chunked IN, on the index).
        m = mark(self.conn)
        links: dict[int, tuple[bool, tuple[str, ...]]] = {}
        for uid, active, roles in self._select_many(
            "SELECT user_id, active, roles FROM external_ids "
            f"WHERE {BY_USER} = {m} AND product = {m} AND user_id",
            (account_id, product),
            [r[0] for r in rows_],
        ):
            if uid not in links or (active and not links[uid][0]):
                links[uid] = (bool(active), self._roles(roles))
        out = []
        for uid, email, user_active, since, reason in rows_:
            link_active, roles = links.get(uid, (False, ()))
            out.append((uid, email, bool(user_active) and link_active, roles, since, reason))
        return out

    def leave_waiting(self, account_id: int, product: str, user_ids: Sequence[int]) -> None:
        m = mark(self.conn)
        self._execute_many(
            f"DELETE FROM auto_install_waiting WHERE account_id = {m} AND product = {m} "
            "AND user_id",
            (account_id, product),
            user_ids,
        )

    def join_waiting(
        self,
        account_id: int,
        product: str,
        rows: Sequence[tuple[int, dt.datetime, str]],
    ) -> None:
        if not rows:
            return
        # A user already waiting keeps the day they began to wait; the reason is the latest.
        bulk = self._bulk_of(
            "waiting",
            auto_install_waiting,
            ("account_id", "product", "user_id", "since", "reason"),
            conflict=("account_id", "product", "user_id"),
            update=("reason",),
            fixed=("account_id", "product", "since"),
        )
        since_of: dict[dt.datetime, Any] = {}
        values: list[Any] = []
        for uid, since, reason in rows:
            stamp = since_of.get(since)
            if stamp is None:
                stamp = since_of[since] = bulk.value("since", since)
            values.extend((account_id, product, uid, stamp, reason))
        bulk.run(values)

    # -- the gate and the agent directory ----------------------------------------------------------
    def agent_users(
        self, account_id: int, product: str, user_ids: Sequence[int]
    ) -> dict[int, AgentRow]:
        iu, x = integration_users, external_ids
        out: dict[int, AgentRow] = {}
        for chunk in chunks(sorted(user_ids)):
            for uid, email, name, active, link_active, ext in self.conn.execute(
                sa.select(iu.c.id, iu.c.email, iu.c.name, iu.c.active, x.c.active, x.c.external_id)
                .join(x, x.c.user_id == iu.c.id)
                .where(iu.c.id.in_(chunk), _by_user(x) == account_id, x.c.product == product)
                .order_by(iu.c.id, x.c.external_id)
            ):
                if uid not in out:
                    out[uid] = AgentRow(email, name, ext, bool(active) and bool(link_active))
        return out

    def enabled(self, account_id: int, product: str) -> bool | None:
        value = self.conn.execute(
            sa.select(installations.c.enabled).where(
                installations.c.account_id == account_id, installations.c.product == product
            )
        ).scalar()
        return None if value is None else bool(value)

    def seated_among(
        self, account_id: int, product: str, user_ids: Sequence[int], everyone: bool
    ) -> set[int]:
        m = mark(self.conn)
        sql = f"SELECT user_id FROM seats WHERE account_id = {m} AND product = {m}"
        if everyone:
            return {r[0] for r in rows(self.conn, sql, (account_id, product))}
        return {
            r[0] for r in self._select_many(f"{sql} AND user_id", (account_id, product), user_ids)
        }

    def agent_count(self, account_id: int, product: str) -> int:
        ad = agent_directory
        return int(
            self.conn.execute(
                sa.select(sa.func.count())
                .select_from(ad)
                .where(ad.c.account_id == account_id, ad.c.product == product)
            ).scalar_one()
        )

    def agents_among(
        self, account_id: int, product: str, user_ids: Sequence[int], everyone: bool
    ) -> dict[int, bool]:
        m = mark(self.conn)
        sql = (
            f"SELECT user_id, active FROM agent_directory WHERE account_id = {m} AND product = {m}"
        )
        if everyone:
            return {r[0]: bool(r[1]) for r in rows(self.conn, sql, (account_id, product))}
        return {
            r[0]: bool(r[1])
            for r in self._select_many(f"{sql} AND user_id", (account_id, product), user_ids)
        }

    def write_agents(
        self,
        account_id: int,
        product: str,
        rows: Sequence[tuple[int, AgentRow, bool]],
        at: dt.datetime,
        run_id: int,
    ) -> None:
        if not rows:
            return
        bulk = self._bulk_of(
            "agents",
            agent_directory,
            (
                "account_id",
                "product",
                "user_id",
                "external_id",
                "email",
                "name",
                "active",
                "updated_at",
                "run_id",
            ),
            conflict=("account_id", "product", "user_id"),
            fixed=("account_id", "product", "updated_at", "run_id"),
        )
        at_value = bulk.value("updated_at", at)
        values: list[Any] = []
        add = values.extend
        for uid, a, is_agent in rows:
            add((account_id, product, uid, a.ext, a.email, a.name, is_agent, at_value, run_id))
        bulk.run(values)

    def agents(self, account_id: int, product: str) -> list[dict[str, Any]]:
        ad = agent_directory
        return [
            dict(r._mapping)
            for r in self.conn.execute(
                sa.select(ad.c.email, ad.c.name, ad.c.external_id, ad.c.active)
                .where(ad.c.account_id == account_id, ad.c.product == product)
                .order_by(ad.c.email)
            )
        ]

    def agents_of_run(
        self, account_id: int, product: str, run_id: int, after: int, limit: int
    ) -> list[tuple[int, AgentRow]]:
        ad = agent_directory
        return [
            (r[0], AgentRow(r[1], r[2], r[3], bool(r[4])))
            for r in self.conn.execute(
                sa.select(ad.c.user_id, ad.c.email, ad.c.name, ad.c.external_id, ad.c.active)
                .where(
                    ad.c.account_id == account_id,
                    ad.c.product == product,
                    ad.c.run_id == run_id,
                    ad.c.user_id > after,
                )
                .order_by(ad.c.user_id)
                .limit(limit)
            )
        ]

    def quarantined(self, run_id: int) -> list[dict[str, Any]]:
        q = sync_quarantine
        return [
            dict(r._mapping)
            for r in self.conn.execute(
                sa.select(q.c.external_id, q.c.email, q.c.reason)
                .where(q.c.run_id == run_id)
                .order_by(q.c.id)
            )
        ]
