"""The kinds of value the HTTP API takes, read through the same bounds as the CLI's parameters
(:mod:`seatgate.core.domain.bounds`, as :mod:`seatgate.core.entrypoints.cli.params`): a quantity,
a period, a run id, a page's limit out of range is a 400 problem naming the parameter, the value
and the accepted range — before a service sees it, so nothing is written, no database driver
overflows (a 500) and no request works for minutes on a 10²³-seat quantity.

Each kind is an ``Annotated`` type for a route's parameter or a body model's field: a
``BeforeValidator`` gets the value as received (text from a path or a query, any JSON value from a
body) and raises :class:`~seatgate.core.errors.BadInput`, which the app answers as a 400 problem.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BeforeValidator
from starlette.requests import Request

from ...domain import bounds
from ...errors import BadInput
from ...services.paging import MAX_LIMIT

__all__ = [
    "MAX_ID",
    "IdempotencyKey",
    "Label",
    "Limit",
    "Period",
    "Quantity",
    "RecordId",
    "checked",
    "printable_path",
]

MAX_ID = 2**31 - 1  # ids are PostgreSQL integers; the CLI's RUN_ID, TICKET take the same range


def checked(what: str, check: Callable[[Any, str], Any], accepted: str) -> BeforeValidator:
    """A validator calling ``check(value, what)`` on text or a whole number; any other JSON value
    (a float, a list, true) is refused naming ``what`` and ``accepted``."""

    def validate(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise BadInput(what, value, accepted)
        return check(value, what)

    return BeforeValidator(validate)


def _count(maximum: int, minimum: int = 1) -> Callable[[Any, str], int]:
    return lambda value, what: bounds.count(value, what, minimum=minimum, maximum=maximum)


def _whole(minimum: int, maximum: int) -> str:
    return f"a whole number from {minimum:,} to {maximum:,}"


# As the CLI's --quantity: at most 1,000,000 seats either way; that it must be 1 or more is the
# service's rule, which names the remedy (a renewal_adjustment ticket to lower seats).
Quantity = Annotated[
    int,
    checked("quantity", bounds.seat_change, f"a whole number of seats up to {bounds.MAX_SEATS:,}"),
]
RecordId = Annotated[int, checked("run id", _count(MAX_ID), _whole(1, MAX_ID))]
QuarantineRun = Annotated[int, checked("run", _count(MAX_ID), _whole(1, MAX_ID))]
Limit = Annotated[int, checked("limit", _count(MAX_LIMIT), _whole(1, MAX_LIMIT))]
Period = Annotated[str, checked("period", bounds.period, "a month as YYYY-MM")]
Label = Annotated[
    str,
    checked(
        "text",
        lambda value, what: bounds.text(value, what),
        f"1 to {bounds.LABEL_MAX} printable characters",
    ),
]
IdempotencyKey = Annotated[
    str,
    checked(
        "Idempotency-Key",
        lambda value, what: bounds.text(value, what),
        f"1 to {bounds.LABEL_MAX} printable characters",
    ),
]


async def printable_path(request: Request) -> None:
    """A router dependency: every path parameter is text without control characters (a NUL,
    which PostgreSQL cannot even compare), named as a 400, never a 500. Every router of the app
    takes it."""
    for name, value in request.path_params.items():
        if isinstance(value, str) and not value.isprintable():
            bounds.text(value, name, maximum=len(value) + 1)
