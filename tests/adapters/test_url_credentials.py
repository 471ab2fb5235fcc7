"""A CRM URL setting that carries credentials (``https://user:password@host``) is refused at
install, for every adapter and every URL setting: shown and stored, they would be a secret in
clear, where the auth settings keep it a secret. The error masks them; nothing is written."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from seatgate.core.bootstrap import App
from seatgate.core.entrypoints.cli.adapters import sandbox_config, start_sandbox
from seatgate.core.errors import BadInput
from seatgate.core.plugins import Sandbox
from seatgate.core.storage.tables import installations
from seatgate.core.testing.setup import account_with_contract

ADMIN = "admin@acme.example"
PASSWORD = "TopSecretPw9"
# adapter package -> its product
PRODUCTS = {
    "salesforce": "salesforce",
    "servicenow": "servicenow",
    "hubspot": "hubspot",
    "oracle": "oracle_sc",
    "sap_c4c": "sap_c4c",
    "pega": "pega",
}


@pytest.fixture(params=sorted(PRODUCTS))
def sandbox(request: pytest.FixtureRequest) -> Iterator[tuple[str, Sandbox]]:
    sb = start_sandbox(request.param, 2, 0)
    try:
        yield request.param, sb
    finally:
        sb.stop()


def test_a_url_with_credentials_is_refused_masked_and_nothing_is_installed(
    sandbox: tuple[str, Sandbox], app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, sb = sandbox
    product = PRODUCTS[name]
    config, env = sandbox_config(name, sb.settings())
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    urls = [k for k, v in config.items() if isinstance(v, str) and "://" in v]
    assert urls, f"{name}'s sandbox settings name no URL"
    account_with_contract(app, "acme", product, admin=ADMIN, seats=5)
    for key in urls:
        parts = urlsplit(config[key])
        bad = parts._replace(netloc=f"integration:{PASSWORD}@{parts.netloc}").geturl()
        with pytest.raises(BadInput) as raised:
            app.installs.install("acme", product, {**config, key: bad}, ADMIN)
        message = str(raised.value)
        assert raised.value.field == f"config {key}", message
        assert PASSWORD not in message and "***@" in message and "\n" not in message
    with app.db.read() as conn:
        assert conn.execute(sa.select(installations)).first() is None
    app.installs.install("acme", product, config, ADMIN)  # the same config without them is fine
