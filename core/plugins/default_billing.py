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

from decimal import Decimal

from ..domain.events import Event, UsersActivated
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
    def seatgate_event(self, event: Event) -> None:
        if not isinstance(event, UsersActivated):
            return
        with transaction(self._ports) as uow:
            acct = uow.accounts.get(event.account)
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
