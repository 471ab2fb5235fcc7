"""The billing core's listener, a default plugin that bootstrap registers (DESIGN: cross-cutting
listeners are plugins on the broadcast hooks).

Seed 002, "Adding Users above Contracted Quantities will trigger billing for the additional
quantities", and "Auto Install": "whenever new users are added to the activated Roles, those
additional users will be added to your existing contract for billing purposes". Every
``UsersActivated`` event — an admin's assignment or a sync's auto install alike — is recorded as a
purchase commitment of its actor (``auto_install`` for a sync: the account's standing auto-install
choice), with the indicative price of the users the contract does not cover, which the event
carries (computed in the transaction, by the pricing function invoices use).

The event was written to the outbox with the change, so a crash before this listener ran loses
nothing: the event is delivered again, and the commitment is recorded once per event id. Invoices
themselves are computed from the seat ledger, so what is billed never depends on this listener.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from ..domain.events import Event, UsersActivated
from ..domain.model import Account
from ..services.base import transaction
from ..services.commitments import record_commitment
from ..services.ports import Ports
from .hookspecs import hookimpl

__all__ = ["PLUGIN_NAME", "BillingListener"]

PLUGIN_NAME = "seatgate.billing"


class BillingListener:
    """Records the purchase commitment of every activation (``add_users``)."""

    def __init__(self, ports: Ports) -> None:
        self._ports = ports

    def __repr__(self) -> str:
        return "BillingListener()"

    @hookimpl
    def seatgate_events(self, events: Sequence[Event]) -> None:
        """The batch's commitments in one transaction (a sync's auto install delivers one
        ``UsersActivated`` per batch of users: some 70 at 100,000 users, each a transaction of
        its own before). Should that transaction fail, each event is tried in one of its own, so
        that one event the store refuses costs no other its commitment; the first failure is
        raised on (the publisher logs it)."""
        activated = [e for e in events if isinstance(e, UsersActivated)]
        if not activated:
            return
        try:
            self._record(activated)
        except Exception:
            if len(activated) == 1:
                raise
            failed: Exception | None = None
            for event in activated:
                try:
                    self._record([event])
                except Exception as exc:
                    failed = failed or exc
            if failed is not None:
                raise failed from None

    def _record(self, events: Sequence[UsersActivated]) -> None:
        with transaction(self._ports) as uow:
            accounts: dict[str, Account] = {}
            for event in events:
                acct = accounts.get(event.account)
                if acct is None:
                    acct = accounts[event.account] = uow.accounts.get(event.account)
                record_commitment(
                    uow,
                    acct,
                    event.product,
                    event.actor,
                    event.at,
                    "add_users",
                    {
                        "added": len(event.emails),
                        "above_contract": event.above_contract,
                        "emails": list(event.emails[:20]),
                    },
                    Decimal(event.price_shown),
                    event.currency,
                    event_id=event.id,
                )
