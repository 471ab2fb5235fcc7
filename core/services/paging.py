"""Pages of a listing: a bounded ``limit`` and an opaque ``cursor`` naming where the next page
starts (a keyset, never an offset: a page costs the same wherever it is)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from ..errors import BadInput

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "Page", "check_limit", "decode_cursor", "encode_cursor"]

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_CURSOR_MAX = 600  # characters: a cursor holds one key (an email, an id, a product)


@attrs.frozen
class Page:
    """One page: ``items`` (dicts, in the listing's order), ``next_cursor`` (None on the last
    page), and ``extra`` members of the listing's document (e.g. seat counts)."""

    items: list[dict[str, Any]]
    next_cursor: str | None
    extra: dict[str, Any] = attrs.field(factory=dict)

    def as_dict(self, name: str) -> dict[str, Any]:
        return {**self.extra, name: self.items, "next_cursor": self.next_cursor}


def check_limit(limit: int) -> int:
    """``limit`` as given when it is 1 to :data:`MAX_LIMIT`; raises :class:`BadInput`."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise BadInput("limit", limit, f"a whole number from 1 to {MAX_LIMIT}")
    return limit


def encode_cursor(key: Any) -> str:
    raw = json.dumps(key, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


#: The range of an integer a cursor may hold: a database's 64-bit integer.
_INT_RANGE = range(-(2**63), 2**63)


def _storable(key: Any) -> bool:
    """Whether every value of a decoded cursor can go to the database as a parameter: integers
    within 64 bits, text without lone surrogates (JSON's ``"\\ud800"`` decodes to one, which no
    driver can encode), no float (a key is never one)."""
    if isinstance(key, list):
        return all(_storable(k) for k in key)
    if isinstance(key, bool) or key is None:
        return True
    if isinstance(key, int):
        return key in _INT_RANGE
    if isinstance(key, str):
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    return isinstance(key, dict) and all(_storable(k) and _storable(v) for k, v in key.items())


def decode_cursor(cursor: str | None, valid: Callable[[Any], bool]) -> Any:
    """The key a cursor names (None for no cursor); :class:`BadInput` for one this listing did
    not make (``valid`` says whether a decoded key has the listing's shape)."""
    if cursor is None:
        return None
    try:
        if len(cursor) > _CURSOR_MAX:
            raise ValueError("too long")
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if _storable(key) and valid(key):
            return key
    except (ValueError, binascii.Error, UnicodeDecodeError):
        pass
    raise BadInput("cursor", cursor[:40], "the next_cursor of the previous page of this listing")


def page(
    rows: Sequence[Any],
    limit: int,
    key: Callable[[Any], Any],
    item: Callable[[Any], dict[str, Any]],
    extra: dict[str, Any] | None = None,
) -> Page:
    """A page of ``rows`` read with ``limit + 1``: the extra row only says a next page exists."""
    more = len(rows) > limit
    shown = list(rows[:limit])
    cursor = encode_cursor(key(shown[-1])) if more and shown else None
    return Page([item(r) for r in shown], cursor, dict(extra or {}))
