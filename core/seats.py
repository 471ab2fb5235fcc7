"""Manage Seats (seed 000): assign seats to integration users under the contract's seat cap.

The rules, in the seed's words:

- **hard cap** — CRM integrations: an assignment that would take assigned seats above contracted
  seats is refused (``capacity_reached``).
- **overage** — an account whose integration users already exceed its contracted seats when
  Manage Seats is enabled keeps them (``grandfather``: they hold seats) and is *in overage*: "unable
  to add additional users until they reduce their user count to their contracted seats, or purchase
  additional seats" — by an admin, by auto install, or as a new agent in a sync (``in_overage``).
- **auto_expand** — marketplace apps (seed 002): users may be added above the contracted quantity;
  the extra quantity is billed under the contract.
- **purchasing authority** (seed 002) — only an actor holding Install or Manage may assign or
  unassign; other actors are refused (``not_authorized``) and the refusal is audited.

The capacity check and the write are one transaction: the contract row is locked (PostgreSQL) or
the write transaction holds the database (SQLite ``BEGIN IMMEDIATE``), so concurrent assignments
never over-assign. Every change goes to the append-only seat ledger.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import attrs
import sqlalchemy as sa

from . import audit
from .accounts import get_account, require_purchasing_authority
from .contracts import bump_version, find_contract
from .domain import Account, Contract, normalize_email
from .errors import NotAuthorized
from .storage.tables import contracts as contracts_table
from .storage.tables import external_ids, integration_users, seat_ledger, seats

REFUSAL_REASONS: tuple[str, ...] = (
    "capacity_reached",  # hard cap: assigned == contracted
    "in_overage",  # assigned > contracted (grandfathered above capacity): no user can be added
    "not_authorized",  # the actor lacks Install / Manage
    "no_contract",  # the account has no contract for the product
    "unknown_user",  # no integration user with that email in the account
    "inactive_user",  # the user is deactivated (in the CRM or by an admin)
    "not_assigned",  # unassign: the user holds no seat
)

_CHUNK = 500  # keeps IN (...) lists under every database's parameter limit


@attrs.frozen
class SeatCount:
    contracted: int
    assigned: int
    mode: str

    @property
    def in_overage(self) -> bool:
        """Seed 000: more users hold seats than the contract covers (only hard-cap accounts; an
        auto_expand account above its quantity is simply billed for the extra)."""
        return self.mode == "hard_cap" and self.assigned > self.contracted

    def refusal_for_one_more(self) -> str | None:
        """Why one more seat cannot be assigned now, or None if it can."""
        if self.mode == "auto_expand":
            return None
        if self.in_overage:
            return "in_overage"
        if self.assigned >= self.contracted:
            return "capacity_reached"
        return None


@attrs.define
class SeatResult:
    """What a seat command did. ``assigned`` lists users holding a seat because of (or already
    before) this command; ``refused`` lists ``{"email", "reason"}``."""

    account: str
    product: str
    assigned: list[str] = attrs.field(factory=list)
    unassigned: list[str] = attrs.field(factory=list)
    refused: list[dict[str, str]] = attrs.field(factory=list)
    newly_assigned: list[str] = attrs.field(factory=list)
    contracted: int = 0
    assigned_count: int = 0
    in_overage: bool = False

    def as_dict(self, kind: str = "assign") -> dict[str, object]:
        out: dict[str, object] = {"account": self.account, "product": self.product}
        if kind == "unassign":
            out["unassigned"] = self.unassigned
        else:
            out["assigned"] = self.assigned
        out.update(
            refused=self.refused,
            assigned_count=self.assigned_count,
            contracted=self.contracted,
            in_overage=self.in_overage,
        )
        return out


def count_assigned(conn: sa.Connection, account_id: int, product: str) -> int:
    return int(
        conn.execute(
            sa.select(sa.func.count())
            .select_from(seats)
            .where(seats.c.account_id == account_id, seats.c.product == product)
        ).scalar_one()
    )


def seat_count(conn: sa.Connection, acct: Account, contract: Contract) -> SeatCount:
    return SeatCount(
        contract.quantity, count_assigned(conn, acct.id, contract.product), contract.mode
    )


def _mark(conn: sa.Connection) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def _bind(conn: sa.Connection, column: sa.Column[Any], value: Any) -> Any:
    """``value`` as the driver must receive it for ``column`` (the column type's own processor)."""
    dialect = conn.dialect
    # The dialect's own type: a TypeDecorator's generic impl (DateTime) would hand SQLite a
    # datetime, which sqlite3's default adapter stores in another text form than SQLAlchemy.
    proc = column.type.dialect_impl(dialect).bind_processor(dialect)
    return value if proc is None else proc(value)


def _select_in(
    conn: sa.Connection, sql: str, params: Sequence[Any], values: Sequence[Any]
) -> Iterator[Sequence[Any]]:
    """Rows of ``sql`` (a SELECT ending in ``IN``) for ``values``, chunked, sent straight to the
    driver: SQLAlchemy's expanding IN re-renders the statement and processes every parameter, the
    bulk of a large assignment's lookups. Only plain columns (text, integers) are bound here."""
    mark = _mark(conn)
    for i in range(0, len(values), _CHUNK):
        chunk = values[i : i + _CHUNK]
        marks = ", ".join([mark] * len(chunk))
        yield from conn.exec_driver_sql(f"{sql} ({marks})", (*params, *chunk))


def _insert_many(
    conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """A plain INSERT of ``rows`` (values already in the driver's form) by the driver's
    ``executemany``, as ``core/sync.py`` writes its own rows: the same SQL on SQLite and
    PostgreSQL; table and column names are the schema's identifiers, never user input."""
    if not rows:
        return
    mark = _mark(conn)
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join([mark] * len(columns))})"
    )
    conn.exec_driver_sql(sql, list(rows))


def _users_by_email(
    conn: sa.Connection, account_id: int, emails: Sequence[str]
) -> dict[str, tuple[int, bool]]:
    rows = _select_in(
        conn,
        "SELECT email, id, active FROM integration_users WHERE account_id = "
        f"{_mark(conn)} AND email IN",
        (account_id,),
        emails,
    )
    return {email: (uid, bool(active)) for email, uid, active in rows}


def _seated_ids(conn: sa.Connection, account_id: int, product: str, ids: Sequence[int]) -> set[int]:
    mark = _mark(conn)
    rows = _select_in(
        conn,
        f"SELECT user_id FROM seats WHERE account_id = {mark} AND product = {mark} AND user_id IN",
        (account_id, product),
        ids,
    )
    return {r[0] for r in rows}


def _authorize(
    conn: sa.Connection,
    acct: Account,
    actor: str | None,
    action: str,
    at: dt.datetime,
    wanted: Sequence[str],
    result: SeatResult,
) -> str:
    """Purchasing authority for a seat command; a refusal answers every email ``not_authorized``
    in the command's usual shape (:class:`SeatsRefused`)."""
    detail: dict[str, object] = {"product": result.product}
    if wanted:
        detail["emails"] = len(wanted)
    try:
        return require_purchasing_authority(conn, acct, actor, action, at, detail)
    except NotAuthorized as exc:
        result.refused = [{"email": e, "reason": "not_authorized"} for e in wanted]
        _fill_counts(conn, acct, result.product, result)
        raise SeatsRefused(result, exc) from None


def assign(
    conn: sa.Connection,
    account: str,
    product: str,
    emails: Iterable[str],
    *,
    actor: str | None,
    at: dt.datetime,
    reason: str = "admin",
    authorize: bool = True,
) -> SeatResult:
    """Assign seats to users, in order, until the cap refuses. Runs in the caller's transaction.

    ``authorize=False`` is for the core's own callers that act on the account's standing purchase
    commitment (auto install in a sync); admins always go through the permission check.
    """
    acct = get_account(conn, account)
    wanted = list(dict.fromkeys(normalize_email(e) for e in emails))
    result = SeatResult(account, product)
    if authorize:
        actor = _authorize(conn, acct, actor, "seats.assign", at, wanted, result)
    contract = find_contract(conn, acct, product, lock=True)
    if contract is None:
        result.refused = [{"email": e, "reason": "no_contract"} for e in wanted]
        return result
    count = seat_count(conn, acct, contract)
    users = _users_by_email(conn, acct.id, wanted)
    held = _seated_ids(conn, acct.id, product, [uid for uid, _ in users.values()])
    assigned = count.assigned
    # The refusal depends on (mode, assigned, contracted) only, and assigned moves only up here:
    # below capacity it stays None, so it is asked again only once capacity is reached.
    why = count.refusal_for_one_more()
    new_rows: list[tuple[int, str, int]] = []  # user id, email, assigned_after
    refused, seated_now, newly = result.refused, result.assigned, result.newly_assigned
    for email in wanted:
        user = users.get(email)
        if user is None:
            refused.append({"email": email, "reason": "unknown_user"})
            continue
        uid, active = user
        if uid in held:
            seated_now.append(email)  # already seated: a rerun is a no-op, not a refusal
            continue
        if not active:
            refused.append({"email": email, "reason": "inactive_user"})
            continue
        if why:
            refused.append({"email": email, "reason": why})
            continue
        assigned += 1
        seated_now.append(email)
        newly.append(email)
        new_rows.append((uid, email, assigned))
        if assigned >= contract.quantity:
            why = SeatCount(contract.quantity, assigned, contract.mode).refusal_for_one_more()
    _write(
        conn, acct, product, new_rows, "assign", actor or "system", at, reason, grandfathered=False
    )
    if new_rows:
        bump_version(conn, contract.id)
    _set_counts(result, SeatCount(contract.quantity, assigned, contract.mode))
    audit.record(
        conn,
        at=at,
        action="seats.assign",
        outcome="ok" if not result.refused else "partial",
        account=account,
        actor=actor,
        detail={
            "product": product,
            "assigned": len(new_rows),
            "refused": len(result.refused),
            "reason": reason,
        },
    )
    return result


def unassign(
    conn: sa.Connection,
    account: str,
    product: str,
    emails: Iterable[str],
    *,
    actor: str | None,
    at: dt.datetime,
    reason: str = "admin",
) -> SeatResult:
    """Take seats back. Billing is not lowered by this within a term (seed 002)."""
    acct = get_account(conn, account)
    wanted = list(dict.fromkeys(normalize_email(e) for e in emails))
    result = SeatResult(account, product)
    actor = _authorize(conn, acct, actor, "seats.unassign", at, wanted, result)
    contract = find_contract(conn, acct, product, lock=True)
    if contract is None:
        result.refused = [{"email": e, "reason": "no_contract"} for e in wanted]
        return result
    users = _users_by_email(conn, acct.id, wanted)
    held = _seated_ids(conn, acct.id, product, [uid for uid, _ in users.values()])
    assigned = count_assigned(conn, acct.id, product)
    rows: list[tuple[int, str, int]] = []  # user id, email, assigned_after
    for email in wanted:
        user = users.get(email)
        if user is None:
            result.refused.append({"email": email, "reason": "unknown_user"})
        elif user[0] not in held:
            result.refused.append({"email": email, "reason": "not_assigned"})
        else:
            assigned -= 1
            rows.append((user[0], email, assigned))
            result.unassigned.append(email)
    if rows:
        ids = [r[0] for r in rows]
        for i in range(0, len(ids), _CHUNK):
            conn.execute(
                seats.delete().where(
                    seats.c.account_id == acct.id,
                    seats.c.product == product,
                    seats.c.user_id.in_(ids[i : i + _CHUNK]),
                )
            )
        _ledger(conn, acct, product, rows, "unassign", actor or "system", at, reason)
        bump_version(conn, contract.id)
    _set_counts(result, SeatCount(contract.quantity, assigned, contract.mode))
    audit.record(
        conn,
        at=at,
        action="seats.unassign",
        outcome="ok" if not result.refused else "partial",
        account=account,
        actor=actor,
        detail={"product": product, "unassigned": len(rows), "refused": len(result.refused)},
    )
    return result


def grandfather(
    conn: sa.Connection, account: str, product: str, *, actor: str | None, at: dt.datetime
) -> SeatResult:
    """The enablement step of seed 000: every active integration user of the product gets a seat,
    even above capacity. Runs once per contract; a second run changes nothing.

    "Integration users of the product": active users linked to the product's CRM (an external id
    for it), and users known to the account but not linked to any CRM yet (added by an admin).
    """
    acct = get_account(conn, account)
    result = SeatResult(account, product)
    actor = _authorize(conn, acct, actor, "seats.grandfather", at, [], result)
    contract = find_contract(conn, acct, product, lock=True)
    if contract is None:
        result.refused = [{"email": "*", "reason": "no_contract"}]
        return result
    if contract.grandfathered_at is None:
        linked = sa.select(external_ids.c.user_id).where(external_ids.c.account_id == acct.id)
        linked_here = linked.where(external_ids.c.product == product)
        candidates = conn.execute(
            sa.select(integration_users.c.id, integration_users.c.email)
            .where(
                integration_users.c.account_id == acct.id,
                integration_users.c.active.is_(True),
                sa.or_(
                    integration_users.c.id.in_(linked_here), integration_users.c.id.not_in(linked)
                ),
            )
            .where(
                integration_users.c.id.not_in(
                    sa.select(seats.c.user_id).where(
                        seats.c.account_id == acct.id, seats.c.product == product
                    )
                )
            )
            .order_by(integration_users.c.id)
        ).all()
        assigned = count_assigned(conn, acct.id, product)
        rows: list[tuple[int, str, int]] = []  # user id, email, assigned_after
        for uid, email in candidates:
            assigned += 1
            rows.append((uid, email, assigned))
            result.newly_assigned.append(email)
        _write(
            conn,
            acct,
            product,
            rows,
            "grandfather",
            actor or "system",
            at,
            "enablement",
            grandfathered=True,
        )
        conn.execute(
            contracts_table.update()
            .where(contracts_table.c.id == contract.id)
            .values(grandfathered_at=at)
        )
        bump_version(conn, contract.id)
        audit.record(
            conn,
            at=at,
            action="seats.grandfather",
            outcome="ok",
            account=account,
            actor=actor,
            detail={"product": product, "seated": len(rows)},
        )
    _fill_counts(conn, acct, product, result, contract)
    result.assigned = list_seated(conn, acct, product)
    return result


def _fill_counts(
    conn: sa.Connection,
    acct: Account,
    product: str,
    result: SeatResult,
    contract: Contract | None = None,
) -> None:
    contract = contract or find_contract(conn, acct, product)
    if contract is None:
        return
    _set_counts(result, seat_count(conn, acct, contract))


def _set_counts(result: SeatResult, count: SeatCount) -> None:
    result.contracted, result.assigned_count = count.contracted, count.assigned
    result.in_overage = count.in_overage


def _write(
    conn: sa.Connection,
    acct: Account,
    product: str,
    rows: Sequence[tuple[int, str, int]],
    action: str,
    actor: str,
    at: dt.datetime,
    reason: str,
    *,
    grandfathered: bool,
) -> None:
    """Seat rows and their ledger rows; ``rows`` are (user id, email, assigned_after)."""
    if not rows:
        return
    at_value = _bind(conn, seats.c.assigned_at, at)
    flag = _bind(conn, seats.c.grandfathered, grandfathered)
    acct_id = acct.id
    _insert_many(
        conn,
        seats,
        ("account_id", "product", "user_id", "assigned_at", "grandfathered"),
        [(acct_id, product, r[0], at_value, flag) for r in rows],
    )
    _ledger(conn, acct, product, rows, action, actor, at, reason)


def _ledger(
    conn: sa.Connection,
    acct: Account,
    product: str,
    rows: Sequence[tuple[int, str, int]],
    action: str,
    actor: str,
    at: dt.datetime,
    reason: str,
) -> None:
    at_value = _bind(conn, seat_ledger.c.at, at)
    acct_id = acct.id
    _insert_many(
        conn,
        seat_ledger,
        (
            "account_id",
            "product",
            "user_id",
            "email",
            "action",
            "actor",
            "at",
            "reason",
            "assigned_after",
        ),
        [
            (acct_id, product, uid, email, action, actor, at_value, reason, after)
            for uid, email, after in rows
        ],
    )


def list_seated(conn: sa.Connection, acct: Account, product: str) -> list[str]:
    rows = conn.execute(
        sa.select(integration_users.c.email)
        .join(seats, seats.c.user_id == integration_users.c.id)
        .where(seats.c.account_id == acct.id, seats.c.product == product)
        .order_by(integration_users.c.email)
    )
    return [r[0] for r in rows]


def list_seats(
    conn: sa.Connection, account: str, product: str | None = None
) -> list[dict[str, Any]]:
    acct = get_account(conn, account)
    query = (
        sa.select(
            seats.c.product,
            integration_users.c.email,
            integration_users.c.active,
            seats.c.assigned_at,
            seats.c.grandfathered,
        )
        .join(integration_users, seats.c.user_id == integration_users.c.id)
        .where(seats.c.account_id == acct.id)
        .order_by(seats.c.product, integration_users.c.email)
    )
    if product is not None:
        query = query.where(seats.c.product == product)
    return [dict(r._mapping) for r in conn.execute(query)]


class SeatsRefused(NotAuthorized):
    """The whole seat command was refused for want of purchasing authority; carries the result so
    the CLI can still answer in the documented shape. The refusal audit row must be committed."""

    def __init__(self, result: SeatResult, cause: NotAuthorized) -> None:
        self.result = result
        super().__init__(str(cause), audit_entry=cause.audit_entry)
