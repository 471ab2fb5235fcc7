"""Money: an exact ``Decimal`` amount with its ISO 4217 currency, and seatgate's ONE rounding rule.

The rounding rule (docs/billing.md, "Rounding"): amounts are computed exactly (as fractions) and
rounded once, to the currency's minor unit — cents for USD and EUR, whole yen for JPY, thousandths
for BHD (ISO 4217's "minor unit") — half away from zero. A charge is never the sum of rounded
pieces: :func:`seatgate.core.domain.pricing.charge` rounds the running total of a term and bills
the difference, so any split of a term adds up to the same minor units.

Currencies are ISO 4217 codes of currencies that have a minor unit (not XAU, XXX and the like).
The table is the ``iso4217`` package's (the published ISO list, minor units included), imported
the first time a currency is asked about — never on the entitlement check's path.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction

import attrs

from ..errors import BadInput

__all__ = [
    "CENT",
    "Money",
    "currency_code",
    "minor_unit",
    "money_text",
    "normalize_price",
    "parse_amount",
    "per_currency",
    "quantum",
    "round_cents",
    "round_minor",
]

CENT = Decimal("0.01")
_CODE = re.compile(r"[A-Za-z]{3}")
_ISO = "an ISO 4217 currency code such as USD, EUR or JPY"


@functools.cache
def _minor_units() -> dict[str, int]:
    """ISO 4217: code -> minor unit (decimals), for every currency that has one."""
    from iso4217 import Currency  # lazily: the table is parsed once, when money is first made

    return {c.code: c.exponent for c in Currency if c.exponent is not None}


def currency_code(value: str, what: str = "currency") -> str:
    """An ISO 4217 currency code, in any case (``usd`` is ``USD``); :class:`BadInput` naming
    ``what`` otherwise (``XYZ``, ``XAU``: not a currency with a minor unit)."""
    text = value.strip() if isinstance(value, str) else ""
    if not _CODE.fullmatch(text) or text.upper() not in _minor_units():
        raise BadInput(what, value, _ISO)
    return text.upper()


def minor_unit(currency: str) -> int:
    """The decimals of ``currency``'s minor unit (ISO 4217): 2 for USD, 0 for JPY, 3 for BHD.
    Raises :class:`BadInput` for a code that is not ISO 4217's."""
    found = _minor_units().get(currency)
    if found is None:
        raise BadInput("currency", currency, _ISO)
    return found


def quantum(currency: str) -> Decimal:
    """One minor unit of ``currency`` as a ``Decimal`` exponent: ``0.01`` (USD), ``1`` (JPY)."""
    return Decimal(1).scaleb(-minor_unit(currency))


def round_minor(value: Fraction | Decimal | int, currency: str) -> Decimal:
    """The one rounding rule: to ``currency``'s minor unit, half away from zero (USD: 0.005 ->
    0.01, -0.005 -> -0.01; JPY: 0.5 -> 1)."""
    exact = Fraction(value)
    scale = int(10 ** minor_unit(currency))
    sign = -1 if exact < 0 else 1
    units = abs(exact) * scale
    whole = units.numerator // units.denominator
    if (units - whole) * 2 >= 1:
        whole += 1
    return (Decimal(sign * whole) / scale).quantize(quantum(currency), rounding=ROUND_HALF_UP)


def round_cents(value: Fraction | Decimal | int) -> Decimal:
    """:func:`round_minor` for a currency of two decimals (USD, EUR)."""
    return round_minor(value, "USD")


def money_text(amount: Decimal, currency: str) -> str:
    """``amount`` shown with ``currency``'s minor unit: ``5.00 USD``, ``0.00 USD``, ``300 JPY``."""
    return f"{amount.quantize(quantum(currency))} {currency}"


def normalize_price(amount: Decimal, currency: str, what: str = "unit price") -> Decimal:
    """A price in ``currency``, written with exactly its minor unit (``5`` -> ``5.00`` USD):
    what is stored and shown. A price finer than the minor unit (``100.50`` JPY, ``1.005``
    USD) is refused — it could not be billed — with :class:`BadInput` naming ``what``."""
    q = quantum(currency)
    try:
        normal = amount.quantize(q)
    except InvalidOperation:  # more digits than a Decimal context holds (1E+400)
        raise BadInput(what, str(amount), f"an amount of {currency} up to 12 digits") from None
    if normal != amount:
        decimals = minor_unit(currency)
        accepted = (
            f"a whole amount of {currency} (ISO 4217: {currency} has no minor unit)"
            if decimals == 0
            else f"an amount of {currency} with at most {decimals} decimals"
        )
        raise BadInput(what, str(amount), accepted)
    return normal if normal else Decimal(0).quantize(q)  # "-0.00" is 0.00


@attrs.frozen
class Money:
    """An amount in a currency (ISO 4217 code). Arithmetic refuses to mix currencies."""

    amount: Decimal
    currency: str

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0).quantize(quantum(currency)), currency)

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot mix {self.currency} and {other.currency}")

    def __str__(self) -> str:
        return money_text(self.amount, self.currency)


def per_currency(amounts: Iterable[tuple[str, Decimal]]) -> dict[str, str]:
    """Totals of ``(currency, amount)`` pairs, one per currency, each shown with its minor unit
    (``{"JPY": "301", "USD": "30.00"}``, currencies in order): amounts in different currencies
    are never added (docs/billing.md: "An invoice covers one account, one month, one
    currency")."""
    sums: dict[str, Decimal] = {}
    for currency, amount in amounts:
        sums[currency] = sums.get(currency, Decimal(0)) + amount
    return {c: str(sums[c].quantize(quantum(c))) for c in sorted(sums)}


def parse_amount(text: str | Decimal, what: str = "amount") -> Decimal:
    """A non-negative decimal amount with at most 4 decimals (a unit price: "12.50").

    Raises :class:`BadInput` naming ``what`` and what is accepted.
    """
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise BadInput(what, text, "a decimal amount such as 12.50") from None
    if not value.is_finite() or value < 0 or value.as_tuple().exponent < -4:  # type: ignore[operator]
        raise BadInput(what, text, "a non-negative amount with at most 4 decimals")
    return value
