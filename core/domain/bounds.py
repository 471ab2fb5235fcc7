"""The documented ranges of what a person or a client may hand seatgate, checked at the edge.

Every entrypoint (the CLI's parameter types, the HTTP API's request models) runs what it receives
through these functions before a service sees it, so a value out of range is one line naming the
value and the range — exit 2 on the CLI — and nothing is written. The ranges are the same on
SQLite and PostgreSQL: SQLite would store a 300-character name or a 10¹⁹-seat contract that
PostgreSQL refuses, so neither database gets to decide.

=====================  =============================================================================
kind                   accepted
=====================  =============================================================================
dates (``--start``)    2000-01-01 to 2099-12-31 (:data:`EARLIEST`, :data:`LATEST`)
instants (``--as-of``) 2000-01-01T00:00:00Z up to (not including) 2100-01-01T00:00:00Z, any offset
periods (``--period``) the months 2000-01 to 2099-12
terms (``--months``)   1 to 120 months (:data:`MAX_TERM_MONTHS`)
seats, quantities      1 to 1,000,000 (:data:`MAX_SEATS`); a change of seats up to 1,000,000 either
                       way (its sign is the service's rule); a contract's contracted seats, after
                       any change (a purchase, a renewal quantity), 1 to 1,000,000
                       (:func:`contracted_seats`, :func:`contracted_total`)
money                  0 to 100,000 per seat per month (:data:`MAX_UNIT_PRICE`), ASCII digits, then
                       written with the currency's ISO 4217 minor unit (``5`` is ``5.00 USD``)
emails                 ``local@domain``: a dot-atom local part (RFC 5322 3.2.3: no leading, trailing
                       or double dot; none of ``<>,;:@"()[]\\`` or spaces), a hostname of labels
                       of letters, digits and inner ``-`` (RFC 1123), at least two, no trailing
                       dot, a top-level label of 2+ letters; at most 254 characters, 64 before the
                       @ (RFC 5321 4.5.3.1)
account names          1 to 100 letters, digits, ``-``, ``_`` or ``.``; kept as spelled, unique
                       whatever their case (``C`` is refused when ``c`` exists)
other names and text   1 to 200 characters (display names), 100 (roles, idempotency keys, products,
                       plans); no control characters
=====================  =============================================================================

Each function takes the text (or number) as received and ``what``, the name the entrypoint uses
for it (``--seats``, ``email``); it returns the typed value or raises
:class:`~seatgate.core.errors.BadInput` naming ``what``, the value and the accepted range.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from decimal import Decimal

from ..clock import parse_date, parse_instant, start_of
from ..errors import BadInput

__all__ = [
    "ACCOUNT_NAME_MAX",
    "BLANKS",
    "EARLIEST",
    "EMAIL_LOCAL_MAX",
    "EMAIL_MAX",
    "LABEL_MAX",
    "LATEST",
    "MAX_SEATS",
    "MAX_TERM_MONTHS",
    "MAX_UNIT_PRICE",
    "NAME_MAX",
    "account_name",
    "check_email",
    "check_email_length",
    "contracted_seats",
    "contracted_total",
    "count",
    "date",
    "instant",
    "months",
    "period",
    "seat_change",
    "text",
    "unit_price",
]

EARLIEST = dt.date(2000, 1, 1)
LATEST = dt.date(2099, 12, 31)
_FIRST_INSTANT = start_of(EARLIEST)
_END_INSTANT = start_of(LATEST + dt.timedelta(days=1))

MAX_TERM_MONTHS = 120
MAX_SEATS = 1_000_000
MAX_UNIT_PRICE = Decimal("100000.00")

EMAIL_MAX = 254  # RFC 5321 4.5.3.1.3: a path is at most 256 octets, "<" and ">" included
EMAIL_LOCAL_MAX = 64  # RFC 5321 4.5.3.1.1
ACCOUNT_NAME_MAX = 100
NAME_MAX = 200
LABEL_MAX = 100

# What is stripped around a value: spaces, tabs and line ends only (str.strip() would also take
# control characters such as \x1f, which are refused instead).
BLANKS = " \t\r\n"

_ACCOUNT_NAME = re.compile(rf"[A-Za-z0-9._-]{{1,{ACCOUNT_NAME_MAX}}}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PERIOD = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
_INTEGER = re.compile(r"[+-]?[0-9]{1,30}")
# ASCII digits only: \d and Decimal() also take Arabic-Indic and other digits.
# Any number of decimals up to a bound, so that trailing zeros ("0.09890") are read as the value
# they write; the value itself is then held to PRICE_STEP.
_PRICE = re.compile(r"[0-9]{1,12}(\.[0-9]{1,30})?|\.[0-9]{1,30}")
PRICE_STEP = Decimal("0.0001")  # ISO 4217's finest minor unit
# RFC 5322 atext (ASCII) and letters/digits of any script (RFC 6531 allows UTF-8 addresses);
# dot-atom: atoms joined by single dots.
_ATOM = r"(?:[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]|[^\W_\x00-\x7f])+"
# RFC 1123 labels: letters and digits, inner hyphens, 1 to 63 characters.
_LABEL = r"[^\W_](?:(?:[^\W_]|-){0,61}[^\W_])?"
_TLD = r"(?:[^\W\d_]{2,63}|xn--[a-z0-9-]{1,59})"
_EMAIL = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+{_TLD}")
# The same rule for ASCII addresses (nearly all), without the Unicode classes: several times faster.
_A_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_A_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_EMAIL_ASCII = re.compile(
    rf"{_A_ATOM}(?:\.{_A_ATOM})*@(?:{_A_LABEL}\.)+(?:[a-z]{{2,63}}|xn--[a-z0-9-]{{1,59}})"
)


def _date_range() -> str:
    return f"{EARLIEST.isoformat()} to {LATEST.isoformat()}"


def instant(value: str, what: str = "date/time") -> dt.datetime:
    """An ISO-8601 date or date-time (``2026-03-16``, ``2026-03-16T12:00:00Z``, any offset) as a
    UTC instant within the documented range."""
    accepted = f"an ISO-8601 date or date-time from {_date_range()}, e.g. 2026-03-16T12:00:00Z"
    try:
        parsed = parse_instant(value, what)
    except BadInput:
        raise BadInput(what, value, accepted) from None
    if not _FIRST_INSTANT <= parsed < _END_INSTANT:
        raise BadInput(what, value, accepted)
    return parsed


def date(value: str, what: str = "date") -> dt.date:
    """A calendar date ``YYYY-MM-DD`` within the documented range."""
    if not _DATE.fullmatch(value.strip(BLANKS)):
        raise BadInput(what, value, "a date as YYYY-MM-DD")
    day = parse_date(value, what)
    if not EARLIEST <= day <= LATEST:
        raise BadInput(what, value, f"a date from {_date_range()}")
    return day


def period(value: str, what: str = "period") -> str:
    """A month ``YYYY-MM`` within the documented range; returns it as ``YYYY-MM``."""
    match = _PERIOD.fullmatch(value.strip())
    if match is None:
        raise BadInput(what, value, "a month as YYYY-MM, e.g. 2026-05")
    if not EARLIEST.year <= int(match[1]) <= LATEST.year:
        raise BadInput(what, value, f"a month from {EARLIEST:%Y-%m} to {LATEST:%Y-%m}")
    return f"{match[1]}-{match[2]}"


def _integer(value: str | int, what: str, accepted: str) -> int:
    if isinstance(value, bool):
        raise BadInput(what, value, accepted)
    if isinstance(value, int):
        return value
    raw = value.strip().replace("_", "")
    # 30 digits at most: int() of a string of a million digits is slow, and no bound is near it.
    if not _INTEGER.fullmatch(raw):
        raise BadInput(what, value, accepted)
    return int(raw)


def count(value: str | int, what: str, *, minimum: int = 1, maximum: int = MAX_SEATS) -> int:
    """A whole number from ``minimum`` to ``maximum`` (seats, users, a quantity)."""
    accepted = f"a whole number from {minimum:,} to {maximum:,}"
    number = _integer(value, what, accepted)
    if not minimum <= number <= maximum:
        raise BadInput(what, number, accepted)
    return number


def seat_change(value: str | int, what: str) -> int:
    """A change of seats, at most :data:`MAX_SEATS` either way. Whether a negative or zero change
    is allowed is the service's rule (it names the remedy), not a bound."""
    accepted = f"a whole number of seats up to {MAX_SEATS:,}"
    number = _integer(value, what, accepted)
    if abs(number) > MAX_SEATS:
        raise BadInput(what, number, accepted)
    return number


def contracted_seats(value: str | int, what: str = "seats") -> int:
    """A contract's contracted quantity: 1 to :data:`MAX_SEATS` seats, whichever way it is set
    (a contract, a renewal quantity, a quantity change) — one rule for every path."""
    accepted = f"a contract's seats: a whole number from 1 to {MAX_SEATS:,}"
    number = _integer(value, what, accepted)
    if not 1 <= number <= MAX_SEATS:
        raise BadInput(what, number, accepted)
    return number


def contracted_total(before: int, added: int, what: str = "quantity") -> int:
    """The contracted seats after ``added`` more are bought on ``before``: the total stays within
    1 to :data:`MAX_SEATS` (a contract at the maximum buys none). Raises :class:`BadInput` naming
    ``added`` and how many more the contract can take."""
    room = max(0, MAX_SEATS - before)
    if added < 1 or before + added > MAX_SEATS:
        raise BadInput(
            what,
            added,
            f"1 to {room:,} more seats: a contract holds 1 to {MAX_SEATS:,} seats and this one "
            f"holds {before:,}"
            if room
            else f"no more seats: a contract holds at most {MAX_SEATS:,} seats and this one "
            f"holds {before:,}",
        )
    return before + added


def months(value: str | int, what: str = "months") -> int:
    """A term in months: 1 to :data:`MAX_TERM_MONTHS` (the term must end after it starts)."""
    return count(value, what, maximum=MAX_TERM_MONTHS)


def unit_price(value: str | Decimal, what: str = "unit price") -> Decimal:
    """A monthly price per seat: from 0 to :data:`MAX_UNIT_PRICE`, written with ASCII digits and
    at most one decimal point (``12.50``, ``5``; not ``1E+1``, not ``٣``), at most 4 decimals
    (the finest ISO 4217 minor unit; zeros after them change nothing: ``0.09890`` is ``0.0989``). The service then writes it with its currency's minor unit
    (:func:`~seatgate.core.domain.money.normalize_price`: ``5`` is ``5.00 USD``, and ``100.50``
    JPY is refused)."""
    accepted = (
        f"an amount from 0 to {MAX_UNIT_PRICE:,} with at most 4 decimals, such as 12.50 "
        "(digits 0-9 and a point)"
    )
    text = value if isinstance(value, str) else str(value)
    if not _PRICE.fullmatch(text.strip(BLANKS)):
        raise BadInput(what, value, accepted)
    amount = Decimal(text.strip(BLANKS))
    if not 0 <= amount <= MAX_UNIT_PRICE or amount != amount.quantize(PRICE_STEP):
        raise BadInput(what, value, accepted)
    return amount


def _printable(value: str) -> bool:
    # Control characters and lone surrogates (undecodable bytes of an argv) can be neither stored
    # on PostgreSQL nor printed. ASCII text: str.isprintable says the same, in C.
    if value.isascii():
        return value.isprintable()
    return not any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value)


def text(value: str, what: str, *, maximum: int = LABEL_MAX) -> str:
    """A name or label: 1 to ``maximum`` characters, none of them a control character; returned
    as given (surrounding spaces removed)."""
    stripped = value.strip(BLANKS)
    if not stripped or len(stripped) > maximum or not _printable(stripped):
        raise BadInput(what, value, f"1 to {maximum} printable characters")
    return stripped


def account_name(value: str, what: str = "account name") -> str:
    """An account's name: 1 to 100 letters, digits, ``-``, ``_`` or ``.`` (it appears in
    commands, invoice numbers and file names)."""
    if not _ACCOUNT_NAME.fullmatch(value):
        raise BadInput(what, value, f"1-{ACCOUNT_NAME_MAX} letters, digits, '-', '_' or '.'")
    return value


EMAIL_ACCEPTED = "an address like name@example.com"


def check_email(email: str, value: str, what: str = "email") -> None:
    """The syntax of an address (``email`` already stripped and lower-cased; ``value`` as given,
    for the message): see the table above. Raises :class:`BadInput` naming ``what`` and ``value``.
    A compiled regular expression: this runs on every entitlement check."""
    check_email_length(email, value, what)  # first: an overlong address is told so
    pattern = _EMAIL_ASCII if email.isascii() else _EMAIL
    if pattern.fullmatch(email) is None:
        raise BadInput(what, value, EMAIL_ACCEPTED)


def check_email_length(email: str, value: str, what: str = "email") -> None:
    """RFC 5321's limits on an address (``email`` already normalised; ``value`` as given), and no
    control character in it."""
    local = email.partition("@")[0]
    if len(email) > EMAIL_MAX or len(local) > EMAIL_LOCAL_MAX or not _printable(email):
        raise BadInput(
            what,
            value,
            f"an address like name@example.com of at most {EMAIL_MAX} characters, "
            f"{EMAIL_LOCAL_MAX} before the @",
        )
