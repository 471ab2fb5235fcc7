"""Purchase commitments (seed 002, "Purchasing Authority"): "by clicking to Install and Manage an
App ... you are committing to a Purchase equivalent to a Signed Customer Order Form". Every such act
is recorded: who, when, what, and the indicative price shown."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ..domain.model import Account
from .ports import UnitOfWork

__all__ = ["AUTO_INSTALL_ACTOR", "record_commitment"]

# Who commits to users added by a sync's auto install: the account's standing auto-install choice.
AUTO_INSTALL_ACTOR = "auto_install"


def record_commitment(
    uow: UnitOfWork,
    account: Account,
    product: str,
    actor: str,
    at: dt.datetime,
    action: str,
    detail: Mapping[str, Any],
    price_shown: Decimal | None,
    currency: str | None,
    *,
    event_id: str | None = None,
) -> bool:
    """One commitment in ``uow``'s transaction (install, self_serve_purchase, add_users,
    plan_change, seats_buy, uninstall). With ``event_id`` at most one per event. True when
    written."""
    return uow.billing.record_commitment(
        account_id=account.id,
        product=product,
        actor=actor,
        at=at,
        action=action,
        detail=detail,
        price_shown=price_shown,
        currency=currency,
        event_id=event_id,
    )
