"""Money: an exact ``Decimal`` amount with its currency, and seatgate's ONE rounding rule.

The rounding rule (docs/billing.md, "Rounding"): amounts are computed exactly (as fractions) and
rounded once, to the cent, half away from zero (``ROUND_HALF_UP`` on the absolute value). A
charge is never the sum of rounded pieces: :func:`seatgate.core.pricing.charge` rounds the running
total of a term and bills the difference, so any split of a term adds up to the same cents.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction

import attrs

from ..errors import BadInput

CENT = Decimal("0.01")


def round_cents(value: Fraction | Decimal | int) -> Decimal:
    """The one rounding rule: to the cent, half away from zero (0.005 -> 0.01, -0.005 -> -0.01)."""
    exact = Fraction(value)
    sign = -1 if exact < 0 else 1
    cents = abs(exact) * 100
    whole = cents.numerator // cents.denominator
    if (cents - whole) * 2 >= 1:
        whole += 1
    return (Decimal(sign * whole) / 100).quantize(CENT, rounding=ROUND_HALF_UP)


@attrs.frozen
class Money:
    """An amount in a currency (ISO 4217 code). Arithmetic refuses to mix currencies."""

    amount: Decimal
    currency: str

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal("0.00"), currency)

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
        return f"{self.amount.quantize(CENT)} {self.currency}"


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
