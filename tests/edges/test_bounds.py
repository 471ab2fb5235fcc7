"""The documented ranges of core/domain/bounds.py (issue 13, items 1-3), as properties: a value
is accepted exactly when it is in its range, and any text at all is either accepted or refused
with BadInput — never another exception."""

from __future__ import annotations

import contextlib
import datetime as dt
import unicodedata
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seatgate.core.clock import UTC
from seatgate.core.domain import bounds
from seatgate.core.domain.vocabulary import Permission, choice, normalize_email
from seatgate.core.errors import BadInput

FIRST = dt.datetime(2000, 1, 1, tzinfo=UTC)
END = dt.datetime(2100, 1, 1, tzinfo=UTC)
OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))


@given(st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)), OFFSETS)
def test_an_instant_is_accepted_exactly_within_the_range(naive: dt.datetime, tz: dt.tzinfo) -> None:
    instant = naive.replace(tzinfo=tz)
    text = instant.isoformat()
    try:
        utc = instant.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is not None and FIRST <= utc < END:
        assert bounds.instant(text, "--as-of") == utc
    else:
        with pytest.raises(BadInput, match="2000-01-01 to 2099-12-31"):
            bounds.instant(text, "--as-of")


@given(st.dates())
def test_a_date_is_accepted_exactly_within_the_range(day: dt.date) -> None:
    text = f"{day.year:04d}-{day.month:02d}-{day.day:02d}"
    if bounds.EARLIEST <= day <= bounds.LATEST:
        assert bounds.date(text, "--start") == day
    else:
        with pytest.raises(BadInput, match="--start"):
            bounds.date(text, "--start")


@given(st.integers(0, 9999), st.integers(0, 13))
def test_a_period_is_accepted_exactly_within_the_range(year: int, month: int) -> None:
    text = f"{year:04d}-{month:02d}"
    if 2000 <= year <= 2099 and 1 <= month <= 12:
        assert bounds.period(text) == text
    else:
        with pytest.raises(BadInput, match="period"):
            bounds.period(text)


@given(st.integers(-(10**30), 10**30) | st.integers(-2000, 2_000_000))
def test_counts_terms_and_changes_of_seats_have_their_ranges(n: int) -> None:
    for check, lo, hi in (
        (lambda v: bounds.count(v, "--seats"), 1, bounds.MAX_SEATS),
        (lambda v: bounds.months(v, "--months"), 1, bounds.MAX_TERM_MONTHS),
        (lambda v: bounds.seat_change(v, "--quantity"), -bounds.MAX_SEATS, bounds.MAX_SEATS),
    ):
        if lo <= n <= hi:
            assert check(str(n)) == n == check(n)
        else:
            with pytest.raises(BadInput):
                check(str(n))


@given(st.decimals(allow_nan=True, allow_infinity=True))
def test_a_unit_price_is_plain_digits_from_0_to_the_maximum(value: Decimal) -> None:
    # Up to 4 decimals here (ISO 4217's finest minor unit); the service then writes it with its
    # currency's minor unit (tests/unit/test_money.py). Exponents ("1E+1") are refused (item 10).
    ok = (
        value.is_finite()
        and 0 <= value <= bounds.MAX_UNIT_PRICE
        and value == value.quantize(Decimal("0.0001"))
        and "E" not in str(value).upper()
    )
    if ok:
        assert bounds.unit_price(str(value)) == value
    else:
        with pytest.raises(BadInput, match="digits 0-9"):
            bounds.unit_price(str(value))


@given(st.text())
def test_any_text_is_accepted_or_refused_with_bad_input(text: str) -> None:
    for check in (
        lambda v: bounds.instant(v, "--as-of"),
        lambda v: bounds.date(v, "--start"),
        lambda v: bounds.period(v, "--period"),
        lambda v: bounds.count(v, "--seats"),
        lambda v: bounds.seat_change(v, "--quantity"),
        lambda v: bounds.unit_price(v, "--unit-price"),
        lambda v: bounds.account_name(v),
        lambda v: bounds.text(v, "--plan"),
        lambda v: normalize_email(v),
        lambda v: choice("--permission", v, Permission),
    ):
        with contextlib.suppress(BadInput):
            check(text)


@given(st.text(min_size=0, max_size=300))
def test_text_is_one_to_max_printable_characters(value: str) -> None:
    stripped = value.strip(" \t\r\n")
    printable = not any(unicodedata.category(c) in ("Cc", "Cs") for c in stripped)
    if stripped and len(stripped) <= bounds.LABEL_MAX and printable:
        assert bounds.text(value, "--plan") == stripped
    else:
        with pytest.raises(BadInput, match="printable characters"):
            bounds.text(value, "--plan")


@given(st.integers(1, 80), st.integers(1, 260))
def test_an_email_is_at_most_254_characters_64_before_the_at(local: int, domain: int) -> None:
    # Hostname labels are at most 63 characters (RFC 1123): the domain is cut into labels.
    host = "b" * domain
    labels = [host[i : i + 60] for i in range(0, len(host), 60)]
    address = "a" * local + "@" + ".".join(labels) + ".com"
    if local <= bounds.EMAIL_LOCAL_MAX and len(address) <= bounds.EMAIL_MAX:
        assert normalize_email(address) == address
    else:
        with pytest.raises(BadInput, match="at most 254 characters, 64 before the @"):
            normalize_email(address)


@given(st.sampled_from(list(Permission)), st.lists(st.booleans(), min_size=7, max_size=7))
def test_a_choice_is_read_in_any_case(member: Permission, upper: list[bool]) -> None:
    text = "".join(c.upper() if u else c for c, u in zip(member.value, upper, strict=False))
    assert choice("--permission", text, Permission) == member.value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0.09890", Decimal("0.0989")),
        ("12.500000", Decimal("12.5")),
        ("5.", None),
        ("0.00001", None),
    ],
)
def test_zeros_after_the_fourth_decimal_change_nothing(text: str, value: Decimal | None) -> None:
    """Found by the property above: ``0.09890`` writes 0.0989, a price of 4 decimals."""
    if value is None:
        with pytest.raises(BadInput, match="at most 4 decimals"):
            bounds.unit_price(text)
    else:
        assert bounds.unit_price(text) == value
