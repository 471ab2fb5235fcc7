"""The conformance kit against the Oracle B2C Service adapter and its sandbox, in each auth mode."""

from __future__ import annotations

from types import MappingProxyType

from seatgate.adapters.oracle import plugin
from seatgate.adapters.oracle.sandbox import SANDBOX
from seatgate.core.testing import AdapterConformance


class TestOracleBasicConformance(AdapterConformance):
    plugin = plugin
    sandbox_class = SANDBOX
    products = ("oracle_sc",)


class TestOracleSessionConformance(AdapterConformance):
    plugin = plugin
    sandbox_class = SANDBOX
    products = ("oracle_sc",)
    sandbox_kwargs = MappingProxyType({"auth": "session"})


class TestOracleBearerConformance(AdapterConformance):
    plugin = plugin
    sandbox_class = SANDBOX
    products = ("oracle_sc",)
    sandbox_kwargs = MappingProxyType({"auth": "bearer"})


class TestOracleOAuthConformance(AdapterConformance):
    plugin = plugin
    sandbox_class = SANDBOX
    products = ("oracle_sc",)
    sandbox_kwargs = MappingProxyType({"auth": "oauth"})
