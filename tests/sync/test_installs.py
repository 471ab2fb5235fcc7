"""Install (config validation, authority, connection check, commitment), enable/disable, and the
secrets rule: a `${ENV}` secret never reaches the database, a log line or the output."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from seatgate.core.bootstrap import App
from seatgate.core.entrypoints.cli import render
from seatgate.core.errors import AuthFailed, BadInput, NotAuthorized, NotFound
from seatgate.core.storage.repositories.audit import SqlAuditLog
from seatgate.core.storage.tables import commitments, installations
from seatgate.core.storage.tables import metadata as all_tables
from seatgate.core.testing.memory import MemorySandbox

from .conftest import ACCOUNT, ADMIN, KEY_ENV, memory_config, setup_account

P = "memory"


@pytest.fixture
def ready(mem_app: App, crm: MemorySandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    monkeypatch.setenv(KEY_ENV, crm.settings()["api_key"])
    setup_account(mem_app)
    yield mem_app


def installation_rows(app: App) -> list[sa.Row[tuple[object, ...]]]:
    with app.db.read() as conn:
        return list(conn.execute(sa.select(installations)).all())


def test_install_validates_checks_the_crm_runs_the_hook_and_records_a_commitment(
    ready: App, crm: MemorySandbox
) -> None:
    result = ready.installs.install(
        ACCOUNT, P, memory_config(crm, activated_roles=["Agent"]), ADMIN
    )
    assert result.settings["api_key"] == "***" and result.reinstalled is False
    assert f"{ACCOUNT}:{P}" in crm.installations  # the adapter's install hook ran
    [row] = installation_rows(ready)
    assert row.enabled and row.installed_by == ADMIN and row.adapter == "memory"
    assert row.settings["api_key"] == "${" + KEY_ENV + "}"  # the reference, never the value
    with ready.db.read() as conn:
        actions = [e["action"] for e in SqlAuditLog(conn).entries(ACCOUNT)]
        [commitment] = conn.execute(sa.select(commitments)).all()
    assert "adapter.install" in actions
    assert (commitment.actor, commitment.product, commitment.action) == (ADMIN, P, "install")
    assert commitment.detail == {"what": "install", "plan": "standard", "reinstall": False}
    again = ready.installs.install(ACCOUNT, P, memory_config(crm), ADMIN)
    assert again.reinstalled is True and len(installation_rows(ready)) == 1
    with ready.db.read() as conn:
        rows = conn.execute(sa.select(commitments.c.detail).order_by(commitments.c.id)).all()
    assert [r.detail["reinstall"] for r in rows] == [False, True]  # each install is a commitment


def test_install_needs_the_install_or_manage_permission(ready: App, crm: MemorySandbox) -> None:
    with pytest.raises(NotAuthorized, match="does not hold the install or manage permission"):
        ready.installs.install(ACCOUNT, P, memory_config(crm), "agent@acme.example")
    assert installation_rows(ready) == [] and crm.installations == set()
    with ready.db.read() as conn:
        refused = [
            e for e in SqlAuditLog(conn).entries(ACCOUNT) if e["action"] == "adapter.install"
        ]
    assert refused[0]["outcome"] == "not_authorized"  # the refusal is kept


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"instance": "x", "api_key": "${K}", "colour": "red"}, "bad config key 'colour'"),
        ({"api_key": "${K}"}, "missing instance"),
        ({"instance": "x", "api_key": "${K}", "page_size": "big"}, "bad config page_size 'big'"),
        ({"instance": "x", "api_key": "${K}", "full_every": 0}, "bad config full_every 0"),
        # Numbers no database column holds: refused before anything is written (the CRM's
        # install marker included), not an internal error at the INSERT.
        (
            {"instance": "x", "api_key": "${K}", "full_every": 10**19},
            "bad config full_every 10000000000000000000",
        ),
        (
            {"instance": "x", "api_key": "${K}", "deletion_guard_min": 10**19},
            "bad config deletion_guard_min",
        ),
        (
            {"instance": "x", "api_key": "${K}", "sync_interval_minutes": 10**12},
            "bad config sync_interval_minutes",
        ),
        ({"instance": "x", "api_key": "${K}", "page_size": 10**19}, "bad config page_size"),
        (
            {"instance": "x", "api_key": "${K}", "activated_roles": "Agent"},
            "bad config activated_roles",
        ),
        ({"instance": "x", "api_key": "${UNSET_VAR_XYZ}"}, "an environment variable that is set"),
    ],
)
def test_a_bad_config_is_refused_in_one_line_and_nothing_is_written(
    ready: App, config: dict[str, object], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("K", "whatever")
    with pytest.raises(BadInput) as info:
        ready.installs.install(ACCOUNT, P, config, ADMIN)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert "expected" in str(info.value)
    assert installation_rows(ready) == []


def test_a_secret_given_in_clear_is_refused_without_quoting_it(
    ready: App, crm: MemorySandbox
) -> None:
    clear = crm.settings()["api_key"]
    with pytest.raises(BadInput) as info:
        ready.installs.install(ACCOUNT, P, {"instance": crm.instance, "api_key": clear}, ADMIN)
    assert clear not in str(info.value) and "${ENV_VAR} reference" in str(info.value)
    assert installation_rows(ready) == []


def test_bad_credentials_fail_the_install_cleanly(
    ready: App, crm: MemorySandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "mk-wrong")
    with pytest.raises(AuthFailed):
        ready.installs.install(ACCOUNT, P, memory_config(crm), ADMIN)
    assert installation_rows(ready) == [] and crm.requests == 1  # no retries


def test_unknown_product_and_missing_installation(ready: App) -> None:
    with pytest.raises(NotFound, match="no adapter serves it"):
        ready.installs.install(ACCOUNT, "nosuch", {}, ADMIN)
    with pytest.raises(NotFound, match="memory installation") as missing:
        ready.installs.set_enabled(ACCOUNT, P, False, ADMIN)
    # The service names the remedy; the CLI renders it as `seatgate install acme memory ...`.
    assert missing.value.remedy == "install"
    assert "seatgate install acme memory" in render(missing.value, None)


def test_enable_disable_need_authority_and_are_idempotent(ready: App, crm: MemorySandbox) -> None:
    ready.installs.install(ACCOUNT, P, memory_config(crm), ADMIN)
    with pytest.raises(NotAuthorized):
        ready.installs.set_enabled(ACCOUNT, P, False, "someone@acme.example")
    assert ready.installs.set_enabled(ACCOUNT, P, False, ADMIN) is True
    assert ready.installs.set_enabled(ACCOUNT, P, False, ADMIN) is False
    assert installation_rows(ready)[0].enabled is False


def test_the_secret_never_reaches_the_database_logs_or_output(
    ready: App,
    crm: MemorySandbox,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret = crm.settings()["api_key"]
    caplog.set_level(logging.DEBUG)
    result = ready.installs.install(ACCOUNT, P, memory_config(crm), ADMIN)
    print(result, result.as_dict(), json.dumps(result.as_dict()))
    crm.inject("server_error")
    summary = ready.sync.sync(ACCOUNT, P).summary
    print(summary)
    dump = []
    with ready.db.read() as conn:
        for table in all_tables.sorted_tables:
            dump.extend(str(tuple(r)) for r in conn.execute(sa.select(table)))
    everything = "\n".join(dump) + caplog.text + capsys.readouterr().out
    assert "${" + KEY_ENV + "}" in everything  # the reference is what is kept
    assert secret not in everything
    path = ready.db.url.removeprefix("sqlite:///")
    for name in (path, path + "-wal") if ready.db.is_sqlite else ():
        try:
            with open(name, "rb") as raw:
                assert secret.encode() not in raw.read()
        except FileNotFoundError:
            continue


def test_changing_the_activated_roles_makes_the_next_sync_full(
    ready: App, crm: MemorySandbox
) -> None:
    # Adapters may read only the activated roles, so users' stored roles are stale for a new set.
    ready.installs.install(ACCOUNT, P, memory_config(crm, activated_roles=["Agent"]), ADMIN)
    assert ready.sync.sync(ACCOUNT, P).summary.full is True
    assert ready.sync.sync(ACCOUNT, P).summary.full is False
    ready.installs.install(ACCOUNT, P, memory_config(crm, activated_roles=["Agent"]), ADMIN)
    assert ready.sync.sync(ACCOUNT, P).summary.full is False  # the same set: the cursor stands
    ready.installs.install(ACCOUNT, P, memory_config(crm, activated_roles=["Agent", "Lead"]), ADMIN)
    assert ready.sync.sync(ACCOUNT, P).summary.full is True
