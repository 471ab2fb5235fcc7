"""JSON answers of the API: what the services return, as the CLI's ``--json`` prints it."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from starlette.responses import Response

from ...clock import isoformat

__all__ = ["json_default", "json_response"]


def json_default(value: Any) -> Any:
    """JSON for what the services return besides JSON's own types (as the CLI's ``--json``)."""
    if isinstance(value, dt.datetime):
        return isoformat(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


# One encoder for every answer: json.dumps builds one per call when given ``default``.
_ENCODER = json.JSONEncoder(default=json_default)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``data`` as an ``application/json`` answer."""
    return Response(
        _ENCODER.encode(data),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )
