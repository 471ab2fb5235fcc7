"""Install configs over HTTP name only the account's own environment variables (tester report
item 2): a tenant never makes the server read another account's secret, the server's settings or
anything else of its environment, and send it to a URL of its choosing. The CLI (the operator)
names any variable but the server's settings."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from edges.harness import dump, run
from hypothesis import assume, given
from hypothesis import strategies as st

from seatgate.core.domain.bounds import ACCOUNT_NAME_MAX
from seatgate.core.domain.env_refs import (
    EnvScope,
    account_namespace,
    check_references,
)
from seatgate.core.errors import BadInput
from seatgate.core.storage.tables import installations

from .conftest import ACME, LiveServer, World, bearer

INSTALL = f"/v1/accounts/{ACME}/products/salesforce/install"


class Listener:
    """A TCP server on 127.0.0.1 that records whatever reaches it (the tenant's 'login URL')."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.received = b""
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1)
                with contextlib.suppress(OSError):
                    self.received += conn.recv(65536)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def _installs(world: World) -> list[tuple[str, str]]:
    with world.core.db.engine.connect() as conn:
        rows = conn.execute(sa.select(installations.c.product, installations.c.settings))
        return sorted((r[0], json.dumps(r[1], sort_keys=True, default=str)) for r in rows)


@pytest.mark.parametrize(
    "name",
    [
        "SALESFORCE_PASSWORD",  # a variable of the server's environment
        "HOME",
        "SEATGATE_SECRET_KEY",  # the server's settings
        "SEATGATE_DATABASE_URL",
        "SEATGATE_ACCOUNT_other__SALESFORCE_PASSWORD",  # another account's namespace
        "SEATGATE_ACCOUNT_acme_",  # the namespace without a name
        "SEATGATE_ACCOUNT_acme__",
        "SEATGATE_ACCOUNT_ACME__SALESFORCE_PASSWORD",  # account names are spelled as they are
    ],
)
def test_a_tenant_cannot_name_a_variable_outside_its_namespace(
    live: LiveServer,
    world: World,
    listener: Listener,
    name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(name, "server-secret")
    before = _installs(world)
    config = {
        "login_url": listener.url,
        "username": "x@x.com",
        "password": "${" + name + "}",
        "security_token": "${" + name + "}",
    }
    with httpx.Client(base_url=live.url, timeout=10) as http:
        answer = http.put(INSTALL, json={"config": config}, headers=bearer(world.tokens["admin"]))
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["code"] == "bad_input"
    assert "${" + name + "}" in body["detail"]
    assert "SEATGATE_ACCOUNT_acme__NAME" in body["detail"]  # what is accepted
    assert "\n" not in body["detail"] and "server-secret" not in answer.text
    assert listener.received == b""  # nothing left the server
    assert _installs(world) == before  # nothing written


def test_a_tenant_names_its_own_namespace(
    live: LiveServer, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEATGATE_ACCOUNT_acme__MEMORY_KEY", world.crm.settings()["api_key"])
    config = {"instance": world.crm.instance, "api_key": "${SEATGATE_ACCOUNT_acme__MEMORY_KEY}"}
    with httpx.Client(base_url=live.url, timeout=10) as http:
        answer = http.put(
            f"/v1/accounts/{ACME}/products/memory/install",
            json={"config": config},
            headers=bearer(world.tokens["admin"]),
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["reinstalled"] is True
    stored = dict(_installs(world))["memory"]
    assert "${SEATGATE_ACCOUNT_acme__MEMORY_KEY}" in stored  # the reference, not the value
    assert world.crm.settings()["api_key"] not in stored


def test_the_operator_names_any_variable_but_the_server_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"SEATGATE_ACTOR": "admin@a.example"}
    made = run(["--as-of", "2026-01-01", "account", "create", "a", "--region", "US",
                "--admin", "admin@a.example"], env)  # fmt: skip
    assert made[0] == 0, made
    config = tmp_path / "sf.json"
    config.write_text(
        json.dumps(
            {
                "login_url": "http://127.0.0.1:9",
                "username": "x@x.com",
                "password": "${SEATGATE_SECRET_KEY}",
                "security_token": "${HOME}",
            }
        )
    )
    before = dump(f"sqlite:///{tmp_path / 'seatgate.db'}")
    code, _, err = run(
        ["--as-of", "2026-01-01", "install", "a", "salesforce", "--config", str(config)], env
    )
    assert code == 2
    assert "${SEATGATE_SECRET_KEY}" in err and "not a server setting" in err
    assert len(err.strip().splitlines()) == 1
    assert dump(f"sqlite:///{tmp_path / 'seatgate.db'}") == before


_ACCOUNT = st.from_regex(rf"[A-Za-z0-9._-]{{1,{ACCOUNT_NAME_MAX}}}", fullmatch=True)
_NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,40}", fullmatch=True)


@given(_ACCOUNT, _ACCOUNT, _NAME)
def test_an_account_reaches_only_its_own_namespace(own: str, other: str, rest: str) -> None:
    """Each account's namespace is its own: a variable accepted for two accounts is the same
    account's (the spelling is injective and no namespace is a prefix of another's)."""
    name = account_namespace(other) + rest
    try:
        check_references({"password": "${" + name + "}"}, own, EnvScope.ACCOUNT)
    except BadInput:
        accepted = False
    else:
        accepted = True
    assert accepted == (own == other)


@given(_NAME)
def test_over_http_nothing_outside_the_namespace_is_accepted(name: str) -> None:
    assume(not name.startswith(account_namespace("acme")))
    with pytest.raises(BadInput):
        check_references({"x": {"nested": ["${" + name + "}"]}}, "acme", EnvScope.ACCOUNT)


@given(_ACCOUNT, _NAME)
def test_the_operator_never_names_a_server_setting(account: str, rest: str) -> None:
    with pytest.raises(BadInput):
        check_references({"x": "pre-${SEATGATE_" + rest + "}"}, account, EnvScope.OPERATOR)
    if not ("SEATGATE_" + rest).startswith("SEATGATE_ACCOUNT_"):
        return
    check_references({"x": "${SEATGATE_" + rest + "}"}, account, EnvScope.OPERATOR)
