"""What every service shares: the write transaction with its after-commit step, and purchasing
authority (seed 002).

:func:`transaction` is the one way a service writes:

- a refusal for want of authority (:class:`NotAuthorized`) rolls the action back but keeps its
  audit row, written in a transaction of its own;
- the events the unit of work recorded are delivered to the listeners after the commit (they were
  written to the outbox in the transaction, so a crash before delivery loses none of them:
  :func:`deliver_pending` delivers what is left).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator, Mapping

from ..domain.model import Account
from ..domain.vocabulary import Permission
from ..errors import NotAuthorized
from .ports import Ports, UnitOfWork

__all__ = [
    "deliver_pending",
    "read",
    "require_manage",
    "require_purchasing_authority",
    "transaction",
]

logger = logging.getLogger("seatgate.services")


@contextlib.contextmanager
def transaction(ports: Ports) -> Iterator[UnitOfWork]:
    """A write unit of work; see the module docstring for what happens around it."""
    try:
        with ports.db.write() as uow:
            yield uow
    except NotAuthorized as exc:
        if exc.audit_entry:
            with ports.db.write() as audit_uow:
                audit_uow.audit.record(**exc.audit_entry)  # type: ignore[arg-type]
        raise
    if uow.events:
        deliver_pending(ports)


@contextlib.contextmanager
def read(ports: Ports) -> Iterator[UnitOfWork]:
    """A read-only unit of work."""
    with ports.db.read() as uow:
        yield uow


def deliver_pending(ports: Ports, limit: int = 1000) -> int:
    """Deliver the outbox's undelivered events to the listeners, oldest first; returns how many.

    Listeners are called one by one and their failures logged by the publisher, so an event is
    marked delivered once every listener was called. Listeners must be idempotent on the event id:
    an event whose delivery was cut short by a crash is delivered again.
    """
    done = 0
    while True:
        pending = ports.db.pending_events(limit)
        if not pending:
            return done
        ports.publisher.publish([event for _, event in pending])
        ports.db.mark_delivered([oid for oid, _ in pending], ports.now())
        done += len(pending)
        if len(pending) < limit:
            return done


def require_purchasing_authority(
    uow: UnitOfWork,
    account: Account,
    actor: str | None,
    action: str,
    at: dt.datetime,
    detail: Mapping[str, object] | None = None,
) -> str:
    """Seed 002, "Purchasing Authority": only users holding the Install or Manage permission may
    install, change plans, add users or buy. Returns the actor, normalised.

    Raises :class:`NotAuthorized` carrying the audit entry of the refusal (``field`` = actor,
    ``remedy`` = ``grant_permission``); :func:`transaction` commits that entry on its own.
    """
    return _require(uow, account, actor, action, at, detail, set(Permission), "install or manage")


def require_manage(
    uow: UnitOfWork,
    account: Account,
    actor: str | None,
    action: str,
    at: dt.datetime,
    detail: Mapping[str, object] | None = None,
) -> str:
    """Only a holder of ``manage`` grants or revokes purchasing authority (seed 002: the "Roles
    and Permissions" section defines "the users that can install and manage apps"). Returns the
    actor, normalised; raises :class:`NotAuthorized` like :func:`require_purchasing_authority`."""
    return _require(uow, account, actor, action, at, detail, {Permission.MANAGE}, "manage")


def _require(
    uow: UnitOfWork,
    account: Account,
    actor: str | None,
    action: str,
    at: dt.datetime,
    detail: Mapping[str, object] | None,
    needed: set[Permission],
    names: str,
) -> str:
    held = uow.accounts.permissions_of(account.id, actor)
    if held & needed:
        return (actor or "").strip().lower()
    who = repr(actor) if actor else "no actor"
    raise NotAuthorized(
        f"{who} does not hold the {names} permission in account {account.name!r}",
        audit_entry={
            "at": at,
            "action": action,
            "outcome": "not_authorized",
            "account": account.name,
            "actor": actor,
            "detail": dict(detail or {}),
        },
        field="actor",
        remedy="grant_permission" if actor else "name_actor",
        context={"account": account.name},
    )
