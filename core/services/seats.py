"""Manage Seats (seed 000) as a use case: assign, unassign, grandfather, list.

The rules are the domain's (:mod:`seatgate.core.domain.seats`); this module runs them in one
transaction: the contract row is locked (PostgreSQL) or the write transaction holds the database
(SQLite ``BEGIN IMMEDIATE``), so concurrent assignments never over-assign. Every change goes to the
append-only seat ledger, is audited, and is published after the commit (``SeatsAssigned``,
``SeatsUnassigned``, ``UsersActivated``).

Purchasing authority (seed 002): only an actor holding Install or Manage may assign or unassign;
other actors are refused (``not_authorized``) and the refusal is audited.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

import attrs

from ..clock import start_of
from ..domain.catalog import Catalog
from ..domain.events import SeatsAssigned, SeatsUnassigned, UsersActivated
from ..domain.events import SeatsRefused as SeatsRefusedEvent
from ..domain.model import Account, Contract
from ..domain.seats import SeatCount, plan_assignment, seats_above_contract
from ..domain.vocabulary import RefusalReason, check_choice, normalize_email
from ..errors import Conflict, NotAuthorized
from .base import read, require_purchasing_authority, transaction
from .overage import record_overage_change
from .ports import Ports, UnitOfWork
from .ports.stores import SeatRow
from .quotes import added_users_price

__all__ = [
    "SeatResult",
    "SeatService",
    "SeatTally",
    "SeatsRefused",
    "assign_seats",
    "seat_count",
]

SYSTEM = "system"


@attrs.frozen
class SeatTally:
    """The seats of a contract held as a writer's transaction left them (``held``), with the
    contract's ``entitlement_version`` then (``version``). Every seat change bumps that version
    in its transaction, under the contract's lock (:func:`assign_seats`, unassign, grandfather),
    so a writer that reads it under the lock again and finds ``version`` knows ``held`` still
    stands, and need not count the seats (a sync's auto install had counted them for every
    batch: the count reads every seat, so a run's counts grew with the square of its seats)."""

    version: int
    held: int

    def bumped(self) -> SeatTally:
        """The tally after its writer bumped the version once more itself, seats unchanged (the
        contract stores' ``bump_version`` and ``bump_versions`` add one)."""
        return SeatTally(self.version + 1, self.held)


@attrs.define
class SeatResult:
    """What a seat command did. ``assigned`` lists users holding a seat because of (or already
    before) this command; ``refused`` lists ``{"email", "reason"}``; ``tally`` the seats held as
    the command's write left them (None without a contract)."""

    account: str
    product: str
    assigned: list[str] = attrs.field(factory=list)
    unassigned: list[str] = attrs.field(factory=list)
    refused: list[dict[str, str]] = attrs.field(factory=list)
    newly_assigned: list[str] = attrs.field(factory=list)
    contracted: int = 0
    assigned_count: int = 0
    in_overage: bool = False
    tally: SeatTally | None = None

    def set_counts(self, count: SeatCount) -> None:
        self.contracted, self.assigned_count = count.contracted, count.assigned
        self.in_overage = count.in_overage

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


class SeatsRefused(NotAuthorized):
    """The whole seat command was refused for want of purchasing authority; carries the result so
    an entrypoint can still answer in the documented shape. The refusal audit row is committed."""

    def __init__(self, result: SeatResult, cause: NotAuthorized) -> None:
        self.result = result
        super().__init__(
            str(cause),
            audit_entry=cause.audit_entry,
            field=cause.field,
            remedy=cause.remedy,
            context=cause.context,
        )


def seat_count(
    uow: UnitOfWork,
    account: Account,
    contract: Contract,
    at: dt.datetime,
    *,
    written: bool,
    held: int | None = None,
) -> SeatCount:
    """The contract's seats at ``at``: the contracted quantity in force then (a renewal
    adjustment included), and the seats held — as written (``written``: what a write decides on,
    the seats table after every write) or as of ``at`` (a read: only what existed then).
    ``held``: the seats held as written, known to the caller (a :class:`SeatTally` that still
    stands), not counted again."""
    if held is None:
        held = (
            uow.seats.count_assigned(account.id, contract.product)
            if written
            else uow.seats.count_held(account.id, contract.product, at)
        )
    return SeatCount(uow.billing.contracted_on(contract, at), held, contract.mode)


def _authorize(
    uow: UnitOfWork,
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
        return require_purchasing_authority(uow, acct, actor, action, at, detail)
    except NotAuthorized as exc:
        result.refused = [{"email": e, "reason": RefusalReason.NOT_AUTHORIZED} for e in wanted]
        contract = uow.contracts.find(acct, result.product)
        if contract is not None:
            result.set_counts(seat_count(uow, acct, contract, at, written=True))
        raise SeatsRefused(result, exc) from None


def assign_seats(
    uow: UnitOfWork,
    acct: Account,
    product: str,
    wanted: Sequence[str],
    *,
    actor: str,
    at: dt.datetime,
    reason: str,
    catalog: Catalog,
    strict: bool = True,
    ids: Mapping[str, int] | None = None,
    tally: SeatTally | None = None,
    bumped: bool = False,
) -> SeatResult:
    """Assign seats in the caller's unit of work, in order, until the cap refuses; records
    ``SeatsAssigned`` and ``UsersActivated`` (with the indicative price of the users the contract
    does not cover). Used by admins (after the authority check) and by a sync's auto install
    (acting on the account's standing purchase commitment; ``strict`` False: a server's checks
    may follow it within their sync lag, as every other write of the sync).

    What a sync knows already, to spare lookups (the rule is the same either way):

    - ``ids``: the user id of each of ``wanted`` (email -> id) as the caller wrote it: the users
      and their seats are read by id in one lookup; an email whose user holds another email now
      is looked up by email, as without ``ids``;
    - ``tally``: the seats held as the caller's previous write left them (its result's
      ``tally``, :meth:`SeatTally.bumped` when the caller bumped the version again since):
      used when the contract's version read under the lock is still the tally's, else the seats
      are counted;
    - ``bumped``: the caller's transaction has bumped the contract's versions already as this
      call would (a sync's batch that wrote users bumps every contract of the account, not
      strict): the seats' own bump would repeat it (a statement more in a short transaction).
    """
    result = SeatResult(acct.name, product)
    locked = uow.contracts.find_locked(acct, product)
    if locked is None:
        result.refused = [{"email": e, "reason": RefusalReason.NO_CONTRACT} for e in wanted]
        return result
    contract, version = locked
    known = tally.held if tally is not None and tally.version == version else None
    count = seat_count(uow, acct, contract, at, written=True, held=known)
    contract = attrs.evolve(contract, quantity=count.contracted)
    users, held = _users_and_seats(uow, acct.id, product, wanted, ids)
    plan = plan_assignment(wanted, users, held, count)
    result.refused = [{"email": e, "reason": str(why)} for e, why in plan.refused]
    result.newly_assigned = [email for _, email, _ in plan.new]
    # Users holding a seat because of, or already before, this command, in the order asked.
    seated = set(plan.already) | set(result.newly_assigned)
    result.assigned = [e for e in wanted if e in seated]
    if plan.new:
        uow.seats.add(
            acct.id,
            product,
            plan.new,
            action="assign",
            actor=actor,
            at=at,
            reason=reason,
            grandfathered=False,
        )
        if not bumped:
            uow.contracts.bump_version(contract.id, strict=strict)
        emails = tuple(result.newly_assigned)
        uow.record(
            SeatsAssigned(
                account=acct.name, product=product, at=at, emails=emails, actor=actor, reason=reason
            )
        )
        above = seats_above_contract(contract.quantity, plan.assigned) - seats_above_contract(
            contract.quantity, count.assigned
        )
        change = uow.billing.plan_in_force(contract, at.date()) if above > 0 else None
        price = added_users_price(catalog, contract, change, above, at.date())
        uow.record(
            UsersActivated(
                account=acct.name,
                product=product,
                at=at,
                emails=emails,
                actor=actor,
                assigned_after=plan.assigned,
                above_contract=above,
                price_shown=str(price.amount),
                currency=price.currency,
            )
        )
    result.set_counts(SeatCount(contract.quantity, plan.assigned, contract.mode))
    result.tally = SeatTally(version + 1 if plan.new and not bumped else version, plan.assigned)
    return result


def _users_and_seats(
    uow: UnitOfWork,
    account_id: int,
    product: str,
    wanted: Sequence[str],
    ids: Mapping[str, int] | None,
) -> tuple[dict[str, tuple[int, bool]], set[int]]:
    """email -> (user id, active) of the account's users among ``wanted``, and the ids of those
    holding a seat of ``product``: by email, or by the ids the caller knows (:func:`assign_seats`)."""
    users: dict[str, tuple[int, bool]] = {}
    held: set[int] = set()
    asked = {} if ids is None else {ids[e]: e for e in wanted if e in ids}
    for uid, (email, active, seated) in uow.seats.users_by_id(
        account_id, product, list(asked)
    ).items():
        if asked[uid] == email:
            users[email] = (uid, active)
            if seated:
                held.add(uid)
    rest = [e for e in wanted if e not in users]
    if rest:
        found = uow.seats.users_by_email(account_id, rest)
        users.update(found)
        held.update(uow.seats.seated_ids(account_id, product, [uid for uid, _ in found.values()]))
    return users, held


class SeatService:
    def __init__(self, ports: Ports) -> None:
        self.ports = ports

    def _check_product(self, product: str) -> None:
        check_choice("product", product, tuple(sorted(self.ports.adapters.products())))

    def assign(
        self, account: str, product: str, emails: Iterable[str], actor: str | None
    ) -> SeatResult:
        """Manage Seats, as an admin: assign seats to ``emails`` in order until the cap refuses.

        Refusals (per user) are in the result; raises :class:`SeatsRefused` when the actor lacks
        purchasing authority (seed 002), :class:`BadInput` for a bad product or address.
        """
        self._check_product(product)
        wanted = list(dict.fromkeys(normalize_email(e) for e in emails))
        at = self.ports.now()
        with transaction(self.ports) as uow:
            acct = uow.accounts.get(account)
            who = _authorize(
                uow, acct, actor, "seats.assign", at, wanted, SeatResult(account, product)
            )
            result = assign_seats(
                uow,
                acct,
                product,
                wanted,
                actor=who,
                at=at,
                reason="admin",
                catalog=self.ports.catalog(),
            )
            if result.refused:
                # Seed 000: the hard cap and the overage lock refuse users; listeners hear it.
                uow.record(
                    SeatsRefusedEvent(
                        account=account,
                        product=product,
                        at=at,
                        emails=tuple(r["email"] for r in result.refused),
                        reasons=tuple(r["reason"] for r in result.refused),
                        actor=who,
                    )
                )
            uow.audit.record(
                at=at,
                action="seats.assign",
                outcome="ok" if not result.refused else "partial",
                account=account,
                actor=who,
                detail={
                    "product": product,
                    "assigned": len(result.newly_assigned),
                    "refused": len(result.refused),
                    "reason": "admin",
                },
            )
        return result

    def unassign(
        self, account: str, product: str, emails: Iterable[str], actor: str | None
    ) -> SeatResult:
        """Take seats back. Billing is not lowered by this within a term (seed 002)."""
        self._check_product(product)
        wanted = list(dict.fromkeys(normalize_email(e) for e in emails))
        at = self.ports.now()
        with transaction(self.ports) as uow:
            acct = uow.accounts.get(account)
            result = SeatResult(account, product)
            who = _authorize(uow, acct, actor, "seats.unassign", at, wanted, result)
            contract = uow.contracts.find(acct, product, lock=True)
            if contract is None:
                result.refused = [{"email": e, "reason": RefusalReason.NO_CONTRACT} for e in wanted]
                return result
            users = uow.seats.users_by_email(acct.id, wanted)
            held = uow.seats.seated_ids(acct.id, product, [uid for uid, _ in users.values()])
            count = seat_count(uow, acct, contract, at, written=True)
            assigned = count.assigned
            rows: list[tuple[int, str, int]] = []  # user id, email, assigned_after
            for email in wanted:
                user = users.get(email)
                if user is None:
                    result.refused.append({"email": email, "reason": RefusalReason.UNKNOWN_USER})
                elif user[0] not in held:
                    result.refused.append({"email": email, "reason": RefusalReason.NOT_ASSIGNED})
                else:
                    assigned -= 1
                    rows.append((user[0], email, assigned))
                    result.unassigned.append(email)
            if rows:
                uow.seats.remove(acct.id, product, rows, actor=who, at=at, reason="admin")
                uow.contracts.bump_version(contract.id)
                uow.record(
                    SeatsUnassigned(
                        account=account,
                        product=product,
                        at=at,
                        emails=tuple(result.unassigned),
                        actor=who,
                        reason="admin",
                    )
                )
            result.set_counts(SeatCount(count.contracted, assigned, contract.mode))
            record_overage_change(
                uow,
                account,
                product,
                count,
                SeatCount(count.contracted, assigned, contract.mode),
                at,
                who,
                "unassign",
            )
            uow.audit.record(
                at=at,
                action="seats.unassign",
                outcome="ok" if not result.refused else "partial",
                account=account,
                actor=who,
                detail={
                    "product": product,
                    "unassigned": len(rows),
                    "refused": len(result.refused),
                },
            )
        return result

    def grandfather(self, account: str, product: str, actor: str | None) -> SeatResult:
        """The enablement step of seed 000: the users who were integration users of the product
        when Manage Seats was enabled for the account's region keep working — each gets a seat,
        even above capacity ("an account whose integration users already exceed its contracted
        seats when Manage Seats is enabled keeps them"). Runs once per contract; a second run
        seats nobody new.

        Nobody else is grandfathered: not a user who joined after enablement, nor anyone on a
        contract whose term starts after enablement (it had no users then). "Integration users of
        the product": active users linked to the product's CRM (an external id for it), and users
        known to the account but not linked to any CRM yet. Raises :class:`Conflict` before the
        region's enablement date (who was a user then is not known yet).
        """
        self._check_product(product)
        at = self.ports.now()
        with transaction(self.ports) as uow:
            acct = uow.accounts.get(account)
            result = SeatResult(account, product)
            who = _authorize(uow, acct, actor, "seats.grandfather", at, [], result)
            contract = uow.contracts.find(acct, product, lock=True)
            if contract is None:
                result.refused = [{"email": "*", "reason": RefusalReason.NO_CONTRACT}]
                return result
            enabled = self._enablement(acct.region, at)
            before = seat_count(uow, acct, contract, at, written=True)
            if contract.grandfathered_at is None:
                candidates = (
                    uow.seats.grandfather_candidates(acct.id, product, start_of(enabled))
                    if contract.term_start <= enabled
                    else []
                )
                assigned = uow.seats.count_assigned(acct.id, product)
                rows: list[tuple[int, str, int]] = []
                for uid, email in candidates:
                    assigned += 1
                    rows.append((uid, email, assigned))
                    result.newly_assigned.append(email)
                uow.seats.add(
                    acct.id,
                    product,
                    rows,
                    action="grandfather",
                    actor=who or SYSTEM,
                    at=at,
                    reason="enablement",
                    grandfathered=True,
                )
                uow.contracts.mark_grandfathered(contract.id, at)
                uow.contracts.bump_version(contract.id)
                if rows:
                    uow.record(
                        SeatsAssigned(
                            account=account,
                            product=product,
                            at=at,
                            emails=tuple(result.newly_assigned),
                            actor=who,
                            reason="enablement",
                        )
                    )
                uow.audit.record(
                    at=at,
                    action="seats.grandfather",
                    outcome="ok",
                    account=account,
                    actor=who,
                    detail={
                        "product": product,
                        "seated": len(rows),
                        "enabled_on": enabled.isoformat(),
                    },
                )
            after = seat_count(uow, acct, contract, at, written=True)
            result.set_counts(after)
            record_overage_change(uow, account, product, before, after, at, who, "grandfather")
            result.assigned = uow.seats.seated_emails(acct.id, product)
        return result

    def _enablement(self, region: str, at: dt.datetime) -> dt.date:
        """The day Manage Seats was enabled for ``region`` (seed 000, by the policy revision in
        force); :class:`Conflict` before it."""
        revision = self.ports.timeline.revision_at(at)
        day = None if revision is None else revision.enablement_of(region)[0]
        if day is None or at < start_of(day):
            when = f"on {day}" if day is not None else "once a policy revision is published"
            raise Conflict(
                f"Manage Seats is not enabled in region {region} yet (it is {when}): "
                "grandfathering covers the users of that day, so it runs from then",
                field="as of",
            )
        return day

    def seated_emails(self, account: str, product: str) -> list[str]:
        with read(self.ports) as uow:
            acct = uow.accounts.get(account)
            return uow.seats.seated_emails(acct.id, product)

    def list(self, account: str, product: str | None = None) -> SeatListing:
        """Seat holders, and each product's counts against its contract, as of now: only the
        seats, users and contracts that existed then (issue 13, item 7)."""
        at = self.ports.now()
        with read(self.ports) as uow:
            acct = uow.accounts.get(account)
            rows = uow.seats.list(acct.id, product, at)
            counts = [
                (c, seat_count(uow, acct, c, at, written=False))
                for c in uow.contracts.list(account, created_by=at)
                if product is None or c.product == product
            ]
        return SeatListing(account, counts, rows)


@attrs.frozen
class SeatListing:
    account: str
    counts: list[tuple[Contract, SeatCount]]
    seats: list[SeatRow]

    def as_dict(self) -> dict[str, object]:
        return {
            "account": self.account,
            "products": [
                {
                    "product": c.product,
                    "contracted": n.contracted,
                    "assigned": n.assigned,
                    "in_overage": n.in_overage,
                    "mode": c.mode,
                }
                for c, n in self.counts
            ],
            "seats": [
                {
                    "product": r.product,
                    "email": r.email,
                    "active": r.active,
                    "assigned_at": r.assigned_at,
                    "grandfathered": r.grandfathered,
                }
                for r in self.seats
            ],
        }
