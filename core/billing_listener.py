"""The billing core as a listener plugin (DESIGN: cross-cutting listeners are plugins on the
broadcast hooks).

Seed 002, "Auto Install": "whenever new users are added to the activated Roles, those additional
users will be added to your existing contract for billing purposes, in case their quantity isn't
covered already". A sync reports the users its auto install seated through
``seatgate_activation_reported``; this listener records that addition as a purchase commitment of
the account's standing auto-install choice (actor ``auto_install``), with the indicative price of
the users the contract does not cover. Invoices themselves are computed from the seat ledger, so a
listener that failed (it is isolated and logged) never changes what is billed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

from . import purchases
from .accounts import get_account
from .contracts import find_contract
from .hookspecs import hookimpl
from .seats import count_assigned

if TYPE_CHECKING:
    from .app import App

PLUGIN_NAME = "seatgate.billing"
AUTO_INSTALL_ACTOR = "auto_install"


class BillingListener:
    """Registered on every App's plugin manager as ``seatgate.billing``."""

    def __init__(self, app: App) -> None:
        self._app = app

    def __repr__(self) -> str:
        return "BillingListener()"

    @hookimpl
    def seatgate_activation_reported(
        self, account: str, product: str, emails: Sequence[str], at: dt.datetime
    ) -> None:
        with self._app.write() as conn:
            acct = get_account(conn, account)
            contract = find_contract(conn, acct, product)
            if contract is None:
                return
            purchases.record_added_users(
                conn, acct, contract, AUTO_INSTALL_ACTOR, at, emails,
                count_assigned(conn, acct.id, product),
            )  # fmt: skip
