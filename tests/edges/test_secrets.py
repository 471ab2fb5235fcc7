"""Secrets (issue 13, items 8-9): masking replaces whole values in known places — settings,
headers, URLs' credentials, name=value pairs — and never a substring of free text, so a short
secret neither garbles a message nor gives itself away; an error about a setting read from
``${VAR}`` shows ``${VAR}``, never the variable's value."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock, parse_instant
from seatgate.core.errors import BadInput, TransientError
from seatgate.core.plugins import RetryPolicy, hookimpl
from seatgate.core.plugins.config import ConfigSchema, Field, Secret, mask_secrets
from seatgate.core.plugins.directory import PluginDirectory
from seatgate.core.plugins.manager import build_plugin_manager
from seatgate.core.plugins.retry import RequestContext
from seatgate.core.testing.memory import MemoryAdapter, MemorySandbox
from seatgate.core.testing.setup import account_with_contract

from .harness import ADMIN, assert_one_line_refusal, cli, dump, open_acme

# A secret as a credential is written: no blank, and none of the characters that end a value in
# the places it is masked in (a URL's userinfo, a header, a pair).
SECRETS = st.text(
    st.characters(
        categories=("L", "N", "P", "S"), exclude_characters="/@:'\"&,;})]=<>\\", max_codepoint=0x2FF
    ),
    min_size=1,
    max_size=24,
)
# Free text: words that hold no place a secret is masked in (no "name=" or "name:", no "://").
FREE_TEXT = st.lists(
    st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?()-", min_size=1),
    min_size=1,
    max_size=12,
).map(" ".join)


def scrub(text: str, secret: str) -> str:
    directory = PluginDirectory(lambda: build_plugin_manager(builtins=(), entry_points=False))
    return directory.scrub(text, {"password": Secret(secret), "instance": "acme"})


@given(FREE_TEXT, SECRETS)
def test_free_text_is_never_masked_whatever_the_secret(text: str, secret: str) -> None:
    assert scrub(text, secret) == text


def test_a_one_character_password_garbles_nothing() -> None:
    message = "transient: ServiceNow did not answer"
    assert scrub(message, "e") == message


# (as written, as masked): the whole value in its place becomes ***, nothing else changes.
PLACES = [
    ("GET https://integration:{s}@crm.example.com/api failed ({a})",
     "GET https://***@crm.example.com/api failed ({a})"),
    ("GET https://{s}@crm.example.com/api failed ({a})",
     "GET https://***@crm.example.com/api failed ({a})"),
    ("{a}: headers {{'Authorization': 'Bearer {s}'}}", "{a}: headers {{'Authorization': '***'}}"),
    ("{a}; Authorization: Basic {s}", "{a}; Authorization: ***"),
    ("POST /oauth/token password={s}&grant_type=client ({a})",
     "POST /oauth/token password=***&grant_type=client ({a})"),
    ('{a}: {{"client_secret": "{s}", "id": 7}}', '{a}: {{"client_secret": "***", "id": 7}}'),
    ("{a} (session_id: {s})", "{a} (session_id: ***)"),
]  # fmt: skip


@given(SECRETS, FREE_TEXT)
def test_a_secret_in_a_known_place_is_masked_whole(secret: str, around: str) -> None:
    for written, masked in PLACES:
        text = written.format(s=secret, a=around)
        assert scrub(text, secret) == masked.format(a=around), text


def test_a_schema_secret_field_names_a_known_place() -> None:
    assert mask_secrets("login failed: pin=4321", ["pin"]) == "login failed: pin=***"
    assert mask_secrets("login failed: pin=4321") == "login failed: pin=4321"


def test_a_sync_message_keeps_its_words_with_a_one_character_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end: the CRM fails, the run's message is kept as the adapter said it."""

    class Down(MemoryAdapter):
        @hookimpl
        def seatgate_pull_users(
            self, product: str, settings: Mapping[str, Any], since: Any, ctx: RequestContext
        ) -> Iterator[Any]:
            raise TransientError("ServiceNow did not answer")

    with MemorySandbox(users=3) as crm:
        monkeypatch.setenv("EDGES_MEMORY_KEY", crm.settings()["api_key"])
        plugins = build_plugin_manager(
            builtins=(), entry_points=False, plugins=[("memory", Down())], strict=True
        )
        app = App(
            f"sqlite:///{tmp_path}/seatgate.db",
            clock=FixedClock(parse_instant("2026-02-01T12:00:00Z")),
            plugins=plugins,
        )
        try:
            account_with_contract(app, "acme", "memory", admin=ADMIN)
            config = {"instance": crm.instance, "api_key": "${EDGES_MEMORY_KEY}"}
            app.installs.install("acme", "memory", config, ADMIN)
            monkeypatch.setenv("EDGES_MEMORY_KEY", "e")  # the key is now one letter long
            result = app.sync.sync(
                "acme", "memory", retry=RetryPolicy(attempts=1, sleep=lambda s: None)
            )
        finally:
            app.close()
    assert result.outcome == "failed"
    assert result.summary.message == "transient: ServiceNow did not answer"


# -- ${VAR} in errors ----------------------------------------------------------------------------------
def test_a_schema_error_about_an_env_value_shows_the_reference(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    schema = ConfigSchema(
        (Field("base_url"), Field("timeout", type="number"), Field("mode", choices=("a", "b")))
    )
    monkeypatch.setenv("TOKEN_VAR", "pat-na1-0123456789")
    for raw in ({"timeout": "${TOKEN_VAR}"}, {"mode": "${TOKEN_VAR}"}):
        with pytest.raises(BadInput) as caught:
            schema.validate(raw)
        assert "${TOKEN_VAR}" in str(caught.value)
        assert "pat-na1" not in str(caught.value)


@pytest.mark.parametrize(
    ("product", "config"),
    [
        ("hubspot", {"access_token": "${EDGES_TOK}", "base_url": "${EDGES_TOK}"}),
        # ServiceNow checks str(base_url): the hooks re-quote the reference all the same.
        ("servicenow", {"base_url": "${EDGES_TOK}", "username": "u", "password": "${EDGES_TOK}"}),
        ("salesforce", {"username": "u", "password": "${EDGES_TOK}",
                        "security_token": "${EDGES_TOK}", "login_url": "${EDGES_TOK}"}),
    ],
)  # fmt: skip
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_install_with_a_secret_in_a_plain_setting_never_prints_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    product: str,
    config: dict[str, str],
    as_json: bool,
) -> None:
    db = f"sqlite:///{tmp_path}/seatgate.db"
    open_acme(db)
    if product != "salesforce":
        code, out, err = cli(db, "contract", "create", "acme", product, "--seats", "2",
                             "--plan", "standard", "--frequency", "monthly",
                             "--start", "2026-01-01", "--months", "12")  # fmt: skip
        assert code == 0, err
    path = tmp_path / "crm.json"
    path.write_text(json.dumps(config))
    secret = "pat-na1-9f3c2b7e-secret"
    monkeypatch.setenv("EDGES_TOK", secret)
    before = dump(db)
    args = ["install", "acme", product, "--config", str(path)]
    code, out, err = cli(db, *(["--json"] if as_json else []), *args)
    error = assert_one_line_refusal(code, out, err, as_json)
    assert "${EDGES_TOK}" in str(error)
    assert secret not in out + err
    assert dump(db) == before
