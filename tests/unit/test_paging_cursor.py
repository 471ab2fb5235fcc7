"""A listing's ``--cursor`` is user input: whatever JSON it decodes to, the listing either reads
with it or refuses it as bad input (exit 2, one line) — never an internal error from the database
driver (an integer beyond 64 bits, a string with a lone surrogate)."""

from __future__ import annotations

import base64
import json
import sqlite3
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seatgate.core.errors import BadInput
from seatgate.core.services.paging import decode_cursor, encode_cursor

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.text()
    | st.sampled_from(["\ud800", "a\udfffb"]),
    lambda inner: st.lists(inner, max_size=3),
    max_leaves=6,
)


def raw_cursor(value: Any) -> str:
    text = json.dumps(value)  # ensure_ascii: a lone surrogate goes as \ud800
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def scalars(value: Any) -> list[Any]:
    return [s for v in value for s in scalars(v)] if isinstance(value, list) else [value]


@given(JSON)
def test_a_cursor_is_read_or_refused_never_handed_to_the_driver_broken(value: Any) -> None:
    try:
        key = decode_cursor(raw_cursor(value), lambda k: True)
    except BadInput as exc:
        assert "cursor" in str(exc)
        return
    db = sqlite3.connect(":memory:")
    for scalar in scalars(key):
        db.execute("SELECT ?", (scalar,))  # raises OverflowError / UnicodeEncodeError if broken


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 10**22, "\ud800", ["a", "\udfff"]])
def test_the_keys_no_database_takes_are_refused(value: Any) -> None:
    with pytest.raises(BadInput, match="cursor"):
        decode_cursor(raw_cursor(value), lambda k: True)


@pytest.mark.parametrize("value", [0, 2**63 - 1, "user@example.com", ["a", "b"]])
def test_the_cursors_listings_make_are_read(value: Any) -> None:
    assert decode_cursor(encode_cursor(value), lambda k: True) == value
