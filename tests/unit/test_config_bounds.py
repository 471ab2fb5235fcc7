"""Numeric settings are bounded: an adapter's own (a timeout: 0.1 to 3,600 seconds) or, without
one, what every database column and client library takes. NaN and the infinities are no numbers
here. Each refusal is one line naming the setting and the range."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seatgate.core.errors import BadInput
from seatgate.core.plugins.config import INTEGER_BOUNDS, ConfigSchema, Field
from seatgate.core.plugins.manager import build_plugin_manager

SCHEMA = ConfigSchema(
    fields=(
        Field("timeout", type="number", default=30, minimum=0.1, maximum=3600),
        Field("page_size", type="integer", default=100),
    )
)


@pytest.mark.parametrize("value", [-5, 0, 1e12, math.inf, -math.inf, math.nan])
def test_a_timeout_out_of_range_is_refused_naming_it(value: float) -> None:
    with pytest.raises(BadInput) as info:
        SCHEMA.validate({"timeout": value})
    assert "config timeout" in str(info.value) and "from 0.1 to 3600" in str(info.value)
    assert "\n" not in str(info.value)


@given(st.integers())
def test_an_integer_is_taken_exactly_within_its_bounds(value: int) -> None:
    low, high = INTEGER_BOUNDS
    if low <= value <= high:
        assert SCHEMA.validate({"page_size": value})["page_size"] == value
    else:
        with pytest.raises(BadInput, match="config page_size"):
            SCHEMA.validate({"page_size": value})


@pytest.mark.parametrize(
    "product", ["salesforce", "servicenow", "hubspot", "oracle_sc", "sap_c4c", "pega"]
)
def test_every_adapters_timeout_is_bounded(product: str) -> None:
    plugins = build_plugin_manager()
    schema = plugins.registry.get(product).info.config_schema
    (timeout,) = [f for f in schema.fields if f.name == "timeout"]
    assert timeout.bounds() == (0.1, 3600)


@pytest.mark.parametrize(
    "product", ["salesforce", "servicenow", "hubspot", "oracle_sc", "sap_c4c", "pega"]
)
def test_every_adapters_page_size_is_one_to_its_crms_largest_page(product: str) -> None:
    """A page size of 0 had been taken for "the default" (``settings.get(...) or MAX``) where
    the description promised 1 to the largest page: each bound is the schema's, so 0 is refused
    at install, one line naming it."""
    plugins = build_plugin_manager()
    adapter = plugins.registry.get(product)
    schema = adapter.info.config_schema
    for field in [f for f in schema.fields if f.name == "page_size"]:
        low, high = field.bounds()
        assert (low, high) == (1, adapter.info.page_size)
        assert field.default == high
        alone = ConfigSchema(fields=(field,))
        for bad in (0, -1, int(high) + 1):
            with pytest.raises(BadInput, match="config page_size"):
                alone.validate({"page_size": bad})
