"""Every CRM write an install or uninstall makes is checked (issue 12): a refusal is one line naming
the permission or scope the write needs, nothing is recorded as installed, and the permissions each
adapter names are the ones docs/adapters.md lists. Each product writes only what it has."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from seatgate.adapters.hubspot import adapter as hubspot
from seatgate.adapters.hubspot.sandbox import HubSpotSandbox
from seatgate.adapters.salesforce import adapter as salesforce
from seatgate.adapters.salesforce.sandbox import SalesforceSandbox
from seatgate.adapters.servicenow import adapter as servicenow
from seatgate.adapters.servicenow.sandbox import ServiceNowSandbox
from seatgate.core.bootstrap import App
from seatgate.core.errors import AuthFailed
from seatgate.core.plugins import Sandbox
from seatgate.core.storage.tables import installations
from seatgate.core.testing.setup import account_with_contract

DOCS = Path(__file__).resolve().parents[2] / "docs" / "adapters.md"

# product -> (the adapter module, its sandbox, the permission its install writes need)
CASES: dict[str, tuple[Any, type[Sandbox], str]] = {
    "salesforce": (salesforce, SalesforceSandbox, salesforce.INSTALL_PERMISSION),
    "servicenow": (servicenow, ServiceNowSandbox, servicenow.WRITE_PERMISSION),
    "hubspot": (hubspot, HubSpotSandbox, hubspot.INSTALL_SCOPES),
}


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> Iterator[tuple[str, Any, Any, str]]:
    product: str = request.param
    module, sandbox_class, permission = CASES[product]
    with sandbox_class(3) as sb:
        yield product, module, sb, permission


def _settings(module: Any, sb: Any) -> dict[str, Any]:
    result: dict[str, Any] = module.CONFIG_SCHEMA.validate(sb.settings(), resolve_env=False)
    return result


def test_a_refused_install_write_is_one_line_naming_the_permission(
    case: tuple[str, Any, Any, str],
) -> None:
    product, module, sb, permission = case
    sb.refuse_writes = True
    with pytest.raises(AuthFailed) as raised:
        module.plugin.seatgate_install(
            account="acme", product=product, settings=_settings(module, sb)
        )
    message = str(raised.value)
    assert permission in message and "\n" not in message
    assert sb.installations == set()


def test_a_refused_uninstall_write_is_one_line_naming_the_permission(
    case: tuple[str, Any, Any, str],
) -> None:
    product, module, sb, permission = case
    settings = _settings(module, sb)
    assert module.plugin.seatgate_install(account="acme", product=product, settings=settings)
    installed = set(sb.installations)
    sb.refuse_writes = True
    with pytest.raises(AuthFailed) as raised:
        module.plugin.seatgate_uninstall(account="acme", product=product, settings=settings)
    assert permission in str(raised.value) and "\n" not in str(raised.value)
    assert sb.installations == installed  # still there: the uninstall did not happen


@pytest.mark.parametrize("product", sorted(CASES))
def test_the_docs_list_what_each_adapter_names(product: str) -> None:
    module, _, permission = CASES[product]
    docs = " ".join(DOCS.read_text().split())
    names = [permission]
    names += [getattr(module, n, None) for n in ("READ_PERMISSION", "OWNERS_SCOPE", "USERS_SCOPE")]
    for name in (n for n in names if isinstance(n, str)):
        assert name in docs, f"docs/adapters.md does not list {name!r}"


def test_a_refused_marker_write_fails_the_install_and_records_nothing(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 12: ServiceNow's install wrote its marker and never read the answer, so a 403 on that
    # write still installed. Through the service: the error, and no installation row.
    with ServiceNowSandbox(3) as sb:
        sb.refuse_writes = True
        raw = sb.basic_settings()
        monkeypatch.setenv("SN_TEST_PASSWORD", raw["password"])
        account_with_contract(app, "acme", "servicenow", admin="admin@example.com", seats=10)
        config = {**raw, "password": "${SN_TEST_PASSWORD}"}
        with pytest.raises(AuthFailed) as raised:
            app.installs.install("acme", "servicenow", config, "admin@example.com")
        assert "sys_properties" in str(raised.value) and sb.properties == {}
    with app.db.read() as conn:
        assert conn.execute(sa.select(installations)).all() == []


def test_salesforce_voice_writes_nothing_and_installs_in_a_voice_only_org() -> None:
    with SalesforceSandbox(3) as sb:
        sb.managed_package = False  # a Voice-only org: no package, no installation object
        settings = _settings(salesforce, sb)
        before = sb.requests - sb.auth_requests
        for _ in range(2):
            assert salesforce.plugin.seatgate_install(
                account="acme", product="salesforce_voice", settings=settings
            )
            assert salesforce.plugin.seatgate_uninstall(
                account="acme", product="salesforce_voice", settings=settings
            )
        # Nothing to prepare in the org: no request at all (the service checks the connection).
        assert sb.requests - sb.auth_requests - before == 0
        assert sb.install_records == {} and sb.installations == set()
        with pytest.raises(AuthFailed) as raised:
            salesforce.plugin.seatgate_install(
                account="acme", product="salesforce", settings=settings
            )
        assert salesforce.INSTALL_OBJECT in str(raised.value)
        assert "404" in str(raised.value) and "\n" not in str(raised.value)
