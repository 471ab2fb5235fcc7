"""Money in ISO 4217 currencies, unit prices and contracted seats (tester report items 3, 6, 9,
10): each rule a right value and a property of its kind."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from seatgate.core.domain import bounds, calendar
from seatgate.core.domain.billing import History, draft_invoices
from seatgate.core.domain.catalog import Catalog
from seatgate.core.domain.model import Contract
from seatgate.core.domain.money import (
    Money,
    currency_code,
    minor_unit,
    money_text,
    normalize_price,
    per_currency,
    round_minor,
)
from seatgate.core.domain.pricing import (
    charge,
    check_channel_terms,
    contract_price,
    price_text,
)
from seatgate.core.errors import BadInput, PolicyError

D = dt.date
CURRENCIES = st.sampled_from(["USD", "EUR", "JPY", "BHD", "CLF", "KRW", "GBP"])


# -- ISO 4217 codes and minor units ------------------------------------------------------------------


def test_minor_units_are_iso_4217s() -> None:
    assert [minor_unit(c) for c in ("USD", "EUR", "JPY", "BHD", "CLF")] == [2, 2, 0, 3, 4]
    assert currency_code("usd") == "USD" and currency_code(" JPY ") == "JPY"
    for bad in ("XYZ", "XAU", "XXX", "US", "USDD", "", "ＵＳＤ", "U$D"):
        with pytest.raises(BadInput, match="ISO 4217"):
            currency_code(bad)


@given(code=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=3))
def test_a_code_is_accepted_exactly_when_iso_4217_lists_a_currency_with_a_minor_unit(
    code: str,
) -> None:
    from iso4217 import Currency

    listed = {c.code for c in Currency if c.exponent is not None}
    try:
        assert currency_code(code.lower()) == code
        accepted = True
    except BadInput:
        accepted = False
    assert accepted == (code in listed)


# -- the one rounding rule, to the minor unit --------------------------------------------------------


def test_rounding_right_values() -> None:
    assert round_minor(Fraction(1, 200), "USD") == Decimal("0.01")  # 0.005 -> 0.01
    assert round_minor(Fraction(-1, 200), "USD") == Decimal("-0.01")
    assert round_minor(Decimal("300.99"), "JPY") == Decimal("301")
    assert round_minor(Fraction(1, 2), "JPY") == Decimal("1")
    assert round_minor(Fraction(1, 2000), "BHD") == Decimal("0.001")
    assert str(Money.zero("JPY")) == "0 JPY" and str(Money.zero("USD")) == "0.00 USD"


@settings(max_examples=300)
@given(
    value=st.fractions(min_value=-(10**9), max_value=10**9, max_denominator=10**6),
    currency=CURRENCIES,
)
def test_rounding_lands_on_the_minor_unit_within_half_of_one(
    value: Fraction, currency: str
) -> None:
    rounded = round_minor(value, currency)
    digits = minor_unit(currency)
    assert rounded.as_tuple().exponent == -digits
    assert abs(Fraction(rounded) - value) <= Fraction(1, 2 * 10**digits)
    assert round_minor(-value, currency) == -rounded  # half away from zero: symmetric


@settings(max_examples=150, deadline=None)
@given(
    price=st.integers(0, 100_000),
    quantity=st.integers(1, 1_000_000),
    start=st.dates(min_value=D(2025, 1, 1), max_value=D(2027, 12, 31)),
    currency=CURRENCIES,
)
def test_a_year_comes_to_the_same_minor_units_at_every_frequency(
    price: int, quantity: int, start: dt.date, currency: str
) -> None:
    unit = Decimal(price).scaleb(-minor_unit(currency))  # a price in minor units
    totals = set()
    for step in (1, 3, 6, 12):
        total = Money.zero(currency)
        for k in range(0, 12, step):
            a, b = calendar.add_months(start, k), calendar.add_months(start, k + step)
            part = charge(unit, quantity, currency, anchor=start, start=a, end=b)
            assert part.amount.as_tuple().exponent == -minor_unit(currency)
            total += part
        totals.add(total.amount)
    assert totals == {unit * quantity * 12}


def test_jpy_is_billed_in_whole_yen() -> None:
    # 3 seats at 33 JPY for 19 of February's 28 days: 67.18... -> 67 JPY, never 67.18.
    part = charge(
        Decimal("33"), 3, "JPY", anchor=D(2026, 1, 1), start=D(2026, 2, 10), end=D(2026, 3, 1)
    )
    assert str(part) == "67 JPY"


# -- totals per currency -----------------------------------------------------------------------------


def test_totals_are_per_currency() -> None:
    amounts = [("USD", Decimal("30.00")), ("JPY", Decimal("301")), ("EUR", Decimal("50.00"))]
    amounts.append(("USD", Decimal("10.00")))
    assert per_currency(amounts) == {"EUR": "50.00", "JPY": "301", "USD": "40.00"}


@given(
    st.lists(st.tuples(CURRENCIES, st.integers(-(10**6), 10**6)), max_size=20),
)
def test_totals_never_add_two_currencies(pairs: list[tuple[str, int]]) -> None:
    amounts = [(c, Decimal(n).scaleb(-minor_unit(c))) for c, n in pairs]
    totals = per_currency(amounts)
    assert set(totals) == {c for c, _ in amounts}
    for currency, total in totals.items():
        assert Decimal(total) == sum((a for c, a in amounts if c == currency), Decimal(0))


# -- unit prices: ASCII digits, the currency's minor unit --------------------------------------------


def test_unit_prices_right_values() -> None:
    assert str(normalize_price(bounds.unit_price("5"), "USD")) == "5.00"
    assert str(normalize_price(bounds.unit_price("5.5"), "USD")) == "5.50"
    assert str(normalize_price(bounds.unit_price("0"), "USD")) == "0.00"
    assert str(normalize_price(bounds.unit_price("100"), "JPY")) == "100"
    assert money_text(Decimal("0"), "USD") == "0.00 USD"
    for bad in ("٣", "1E+1", "5,00", "-1", "1e2", "５", "0x10", "NaN", "Infinity", "100000.01"):
        with pytest.raises(BadInput, match="digits 0-9"):
            bounds.unit_price(bad)
    with pytest.raises(BadInput, match="whole amount of JPY"):
        normalize_price(bounds.unit_price("100.50"), "JPY")
    with pytest.raises(BadInput, match="at most 2 decimals"):
        normalize_price(bounds.unit_price("1.005"), "USD")


@given(text=st.text(min_size=1, max_size=8))
def test_a_price_with_anything_but_ascii_digits_and_one_point_is_refused(text: str) -> None:
    assume(any(not (ch.isascii() and (ch.isdigit() or ch == ".")) for ch in text.strip(" \t\r\n")))
    with pytest.raises(BadInput):
        bounds.unit_price(text)


@given(cents=st.integers(0, 10_000_000), currency=CURRENCIES)
def test_a_price_is_written_with_its_currencys_minor_unit(cents: int, currency: str) -> None:
    digits = minor_unit(currency)
    amount = Decimal(cents).scaleb(-min(digits, 2))
    assume(amount <= bounds.MAX_UNIT_PRICE)
    if amount != amount.quantize(Decimal(1).scaleb(-digits)):
        with pytest.raises(BadInput):
            normalize_price(amount, currency)
        return
    normal = normalize_price(bounds.unit_price(str(amount)), currency)
    assert normal == amount and normal.as_tuple().exponent == -digits


# -- contract prices by currency ---------------------------------------------------------------------


def test_a_listed_price_is_never_relabelled_into_another_currency() -> None:
    listed = (Decimal("25.00"), "USD")
    assert contract_price("salesforce", "standard", listed, None, None) == (
        Decimal("25.00"),
        "USD",
    )
    with pytest.raises(BadInput, match=r"bad currency 'EUR': expected USD.*EUR"):
        contract_price("salesforce", "standard", listed, None, "EUR")
    assert contract_price("salesforce", "standard", listed, Decimal("22"), "eur") == (
        Decimal("22.00"),
        "EUR",
    )


@given(price=st.none() | st.integers(0, 1000).map(Decimal), currency=st.none() | CURRENCIES)
def test_a_contract_is_in_the_listed_currency_unless_it_names_a_price(
    price: Decimal | None, currency: str | None
) -> None:
    listed = (Decimal("25.00"), "USD")
    try:
        unit, code = contract_price("salesforce", "standard", listed, price, currency)
    except BadInput:
        assert price is None and currency not in (None, "USD")
        return
    assert code == (currency or "USD")
    assert unit == (Decimal("25.00") if price is None else price)
    assert unit.as_tuple().exponent == -minor_unit(code)


# -- self-serve and marketplace terms (seed 002) -----------------------------------------------------

TODAY = D(2026, 2, 1)


@pytest.mark.parametrize(
    ("terms", "message"),
    [
        ({"unit_price": Decimal("1.00")}, "bad unit price '1.00': expected no unit price"),
        ({"frequency": "annual"}, "bad frequency 'annual': expected monthly"),
        ({"months": 12}, "bad months 12: expected 1"),
        ({"start": D(2025, 1, 1)}, "bad start '2025-01-01': expected 2026-02-01"),
    ],
)
def test_self_serve_refuses_terms_other_than_month_to_month_from_today(
    terms: dict[str, object], message: str
) -> None:
    given_terms: dict[str, object] = dict(
        unit_price=None, frequency="monthly", months=1, start=TODAY, today=TODAY
    )
    given_terms.update(terms)
    with pytest.raises(BadInput) as refused:
        check_channel_terms("self_serve", **given_terms)  # type: ignore[arg-type]
    assert str(refused.value).startswith(message)
    assert "\n" not in str(refused.value)


@given(
    channel=st.sampled_from(["order_form", "marketplace", "self_serve"]),
    price=st.none() | st.just(Decimal("1.00")),
    frequency=st.sampled_from(["monthly", "quarterly", "semiannual", "annual"]),
    months=st.integers(1, 120),
    start=st.dates(min_value=D(2026, 1, 1), max_value=D(2026, 3, 1)),
)
def test_what_each_channel_allows(
    channel: str, price: Decimal | None, frequency: str, months: int, start: dt.date
) -> None:
    allowed = {
        "order_form": True,
        "marketplace": price is None,
        "self_serve": (price, frequency, months, start) == (None, "monthly", 1, TODAY),
    }[channel]
    try:
        check_channel_terms(
            channel,
            unit_price=price,
            frequency=frequency,
            months=months,
            start=start,
            today=TODAY,
        )
        accepted = True
    except BadInput:
        accepted = False
    assert accepted == allowed


def test_per_account_prices_read_per_month_not_per_seat() -> None:
    assert price_text(Decimal("99.00"), "USD", "per_account") == "99.00 USD/month"
    assert price_text(Decimal("25"), "USD", "per_seat") == "25.00 USD/seat/month"
    assert price_text(Decimal("100"), "JPY", "per_seat") == "100 JPY/seat/month"


# -- contracted seats: 1 to 1,000,000 everywhere (item 9) --------------------------------------------


def test_contracted_seats_right_values() -> None:
    assert bounds.contracted_total(3, 999_997) == 1_000_000
    with pytest.raises(BadInput, match=r"bad quantity 1000000: expected 1 to 999,997 more seats"):
        bounds.contracted_total(3, 1_000_000)
    with pytest.raises(BadInput, match="no more seats"):
        bounds.contracted_total(1_000_000, 1)
    with pytest.raises(BadInput, match=r"bad renewal quantity 0: expected .*1 to 1,000,000"):
        bounds.contracted_seats(0, "renewal quantity")


@given(before=st.integers(1, bounds.MAX_SEATS), added=st.integers(-10, 2 * bounds.MAX_SEATS))
def test_a_purchase_is_accepted_exactly_when_the_total_stays_in_bounds(
    before: int, added: int
) -> None:
    try:
        total = bounds.contracted_total(before, added)
    except BadInput:
        assert added < 1 or before + added > bounds.MAX_SEATS
        return
    assert total == before + added and 1 <= total <= bounds.MAX_SEATS


@given(value=st.integers(-5, bounds.MAX_SEATS + 5) | st.text(max_size=12))
def test_a_contracted_quantity_is_1_to_1_000_000(value: int | str) -> None:
    try:
        n = bounds.contracted_seats(value)
    except BadInput:
        return
    assert 1 <= n <= bounds.MAX_SEATS


# -- self-serve: month to month at the then-listed price (seed 002) ----------------------------------


def self_serve_history(listed: list[tuple[dt.date, Decimal]]) -> History:
    c = Contract(
        id=1, account="acme", product="hubspot", plan="standard", quantity=3,
        unit_price=Decimal("15.00"), currency="USD", frequency="monthly",
        term_start=D(2026, 2, 1), term_months=1, channel="self_serve", mode="hard_cap",
    )  # fmt: skip
    return History(contract=c, charge_model="per_seat", listed=listed)


def test_self_serve_months_bill_the_price_listed_when_they_start() -> None:
    # Listed at 15.00 when bought (2026-02-01); a price list effective 2026-04-01 lists 18.00.
    h = self_serve_history([(D(2025, 1, 1), Decimal("15.00")), (D(2026, 4, 1), Decimal("18.00"))])
    billed = {}
    for month in (D(2026, 2, 1), D(2026, 3, 1), D(2026, 4, 1), D(2026, 5, 1)):
        (draft,) = draft_invoices([h], month, {}, {}, {"acme": 1})
        billed[month.month] = str(draft.total)
    assert billed == {2: "45.00 USD", 3: "45.00 USD", 4: "54.00 USD", 5: "54.00 USD"}


@given(
    changes=st.lists(
        st.tuples(
            st.dates(min_value=D(2025, 1, 1), max_value=D(2027, 1, 1)),
            st.integers(0, 10_000).map(lambda n: Decimal(n).scaleb(-2)),
        ),
        max_size=4,
    ).map(sorted),
    month=st.dates(min_value=D(2026, 2, 1), max_value=D(2026, 12, 1)).map(
        lambda d: d.replace(day=1)
    ),
)
def test_a_self_serve_month_bills_the_last_price_listed_by_its_start(
    changes: list[tuple[dt.date, Decimal]], month: dt.date
) -> None:
    h = self_serve_history(changes)
    later = [p for when, p in changes if D(2026, 2, 1) < when <= month]
    expected = (later[-1] if later else Decimal("15.00")) * 3
    (draft,) = draft_invoices([h], month, {}, {}, {"acme": 1})
    assert draft.total.amount == expected


def catalog_of(*versions: tuple[str, str, str]) -> Catalog:
    return Catalog.from_json(
        {
            "versions": [
                {
                    "effective": effective,
                    "products": {
                        "hubspot": {
                            "base_plans": {
                                "standard": {
                                    "charge_model": "per_seat",
                                    "monthly_price": price,
                                    "currency": currency,
                                }
                            }
                        }
                    },
                }
                for effective, price, currency in versions
            ]
        }
    )


def test_the_catalog_lists_prices_in_iso_4217_currencies_with_their_minor_unit() -> None:
    cat = catalog_of(("2025-01-01", "15", "USD"), ("2026-04-01", "18.5", "usd"))
    assert cat.listed_prices("hubspot", "standard", "USD") == [
        (D(2025, 1, 1), Decimal("15.00")),
        (D(2026, 4, 1), Decimal("18.50")),
    ]
    assert cat.listed_prices("hubspot", "standard", "EUR") == []
    with pytest.raises(PolicyError, match="ISO 4217"):
        catalog_of(("2025-01-01", "15", "XYZ"))
    with pytest.raises(PolicyError, match="whole amount of JPY"):
        catalog_of(("2025-01-01", "15.50", "JPY"))
