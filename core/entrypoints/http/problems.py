"""Errors as ``application/problem+json`` (RFC 9457): a service error's ``code``, ``field`` and
``remedy`` become members of the document; nothing else of the exception does — no stack trace,
no SQL, no secret (adapter errors are scrubbed by the services before they are raised)."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from ...errors import (
    AdapterError,
    BadInput,
    Conflict,
    NotAuthorized,
    NotFound,
    PolicyError,
    SeatgateError,
)

__all__ = ["PROBLEM", "problem", "problem_of", "status_of"]

PROBLEM = "application/problem+json"

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
}


# Codes of errors that say the database is away or busy, not the request wrong (the storage layer
# translates driver errors into them where it does).
_UNAVAILABLE = {"database", "database_busy", "unavailable"}


def status_of(exc: SeatgateError) -> int:
    if exc.code in _UNAVAILABLE:
        return 503
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, NotAuthorized):
        return 403
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, AdapterError):
        return 502  # the CRM failed, not the caller
    if isinstance(exc, PolicyError):
        return 500
    if isinstance(exc, BadInput):
        return 400
    return 400


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    request_id: str | None = None,
    headers: dict[str, str] | None = None,
    **members: Any,
) -> Response:
    """A problem document; ``members`` with a None value are left out."""
    body: dict[str, Any] = {
        "type": f"urn:seatgate:problem:{code}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "code": code,
        "detail": detail,
    }
    body.update({k: v for k, v in members.items() if v is not None})
    if request_id:
        body["request_id"] = request_id
    return Response(
        json.dumps(body, default=str), status_code=status, media_type=PROBLEM, headers=headers
    )


def problem_of(exc: SeatgateError, request_id: str | None, **members: Any) -> Response:
    """The problem document of a service error (``members``: more of them, e.g. ``result``)."""
    status = status_of(exc)
    return problem(
        status,
        exc.code,
        str(exc).replace("\n", " "),
        request_id=request_id,
        field=exc.field,
        remedy=exc.remedy,
        context={k: str(v) for k, v in exc.context.items()} or None,
        headers={"Retry-After": "1"} if status == 503 else None,
        **members,
    )
