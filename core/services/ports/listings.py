"""Paged reads for admin listings (the HTTP API's lists): keyset pages, so page 1,000 of a
100,000-user account costs what page 1 does. Storage implements it over SQL."""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

from .stores import Installation, SeatRow

__all__ = ["Listings"]


class Listings(Protocol):
    def users(
        self,
        account_id: int,
        *,
        product: str | None,
        active: bool | None,
        after: str | None,
        limit: int,
        prefix: str | None = None,
        at: dt.datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Integration users by email after ``after``; ``at``: only those created by then (every
        listing's ``at``: what existed at that instant, DESIGN "every read sees only what existed
        at that instant"): ``email``, ``name``, ``active``, ``roles``,
        ``seats`` (the products they hold a seat of). ``product`` keeps the users linked to that
        product's CRM or seated on it; ``prefix`` the emails starting with it."""
        ...

    def seats(
        self, account_id: int, *, product: str | None, after: tuple[str, str] | None, limit: int
    ) -> list[SeatRow]:
        """Seats by (product, email) after ``after``."""
        ...

    def installs(
        self, account_id: int, *, after: str | None, limit: int, at: dt.datetime | None = None
    ) -> list[Installation]:
        """The account's installations by product after ``after``."""
        ...

    def runs(
        self,
        account_id: int,
        *,
        product: str | None,
        before: int | None,
        limit: int,
        at: dt.datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Sync runs, newest first, with ids below ``before``, started by ``at``
        (``lease_expires_at`` included)."""
        ...

    def run(
        self, account_id: int | None, run_id: int, at: dt.datetime | None = None
    ) -> dict[str, Any] | None:
        """One sync run of the account, or of any account for None (None when the id is
        another account's or unknown)."""
        ...

    def quarantine(
        self,
        account_id: int,
        *,
        product: str | None,
        run_id: int | None,
        after: int | None,
        limit: int,
        at: dt.datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Quarantined records (``id``, ``run_id``, ``product``, ``external_id``, ``email``,
        ``reason``, ``at``) by id after ``after``."""
        ...

    def quarantined(
        self,
        account_id: int,
        *,
        product: str,
        after: int | None,
        limit: int,
        at: dt.datetime | None = None,
    ) -> list[dict[str, Any]]:
        """The records of ``product``'s CRM that are quarantined now: each (``external_id``,
        ``reason``) seen by the latest full run or any run after it, once, with ``email``,
        ``since`` (its first quarantine), ``last_seen``, ``run_id`` (the latest run that saw it)
        and ``id`` (the keyset: its first quarantine row's id), by ``id`` after ``after``."""
        ...

    def agents(
        self, account_id: int, *, product: str, after: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """The agent directory of ``product`` by email after ``after``: ``email``, ``name``,
        ``external_id``, ``active``, ``updated_at``, ``run_id`` (the run that wrote it)."""
        ...

    def tickets(
        self, account_id: int, *, after: int | None, limit: int, at: dt.datetime | None = None
    ) -> list[dict[str, Any]]:
        """Billing tickets (``id``, ``product``, ``kind``, ``opened_at``, ``actor``) by id."""
        ...
