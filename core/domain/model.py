"""The nouns of seatgate: an account, a contract, an integration user (pure data, attrs).

The rules that use them live beside them in :mod:`seatgate.core.domain`, each under the seed's own
word: the term and period calendar in :mod:`.calendar`, seats in :mod:`.seats`, the entitlement
decision in :mod:`.entitlement`, billing in :mod:`.billing`.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import attrs

__all__ = ["Account", "Contract", "IntegrationUser"]


@attrs.frozen
class Account:
    """A customer account of the platform; its ``region`` places it on the enforcement timeline."""

    id: int
    name: str
    region: str


@attrs.frozen
class Contract:
    """What an account bought for one product (seed 002 terms, seed 000 seat cap).

    :param quantity: the contracted seats.
    :param unit_price: the monthly price of one seat (or of the account, per-account plans).
    :param frequency: a :class:`~.vocabulary.Frequency`.
    :param term_start: the day the first term starts (the contract's anchor).
    :param term_months: months of one term; terms renew back to back (see :mod:`.calendar`).
    :param channel: a :class:`~.vocabulary.Channel`; self-serve ones are month to month.
    :param mode: a :class:`~.vocabulary.SeatMode`.
    :param charge_model: the base plan's :class:`~.vocabulary.ChargeModel`, when the contract
        names it (order-form plans of their own); else the catalog's.
    """

    id: int
    account: str
    product: str
    plan: str
    quantity: int
    unit_price: Decimal
    currency: str
    frequency: str
    term_start: dt.date
    term_months: int
    channel: str
    mode: str
    grandfathered_at: dt.datetime | None = None
    charge_model: str | None = None


@attrs.frozen
class IntegrationUser:
    """A user known to an account by email (case-insensitive), linked to its CRMs' ids."""

    id: int
    account: str
    email: str
    name: str
    active: bool
    roles: tuple[str, ...]
