"""The CLI: install, adapters enable/disable, sync (--json exactly as issue 4 says), sync --due,
runs list; bad input is one line and exit 2."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock
from seatgate.core.entrypoints.cli import Context, main, main_group
from seatgate.core.testing.memory import MemorySandbox

from .conftest import ACCOUNT, ADMIN, KEY_ENV, setup_account

P = "memory"
KEYS = [
    "outcome", "pulled", "created", "updated", "deactivated", "quarantined", "seated", "gated",
    "agents_synced", "requests", "retries", "seconds",
]  # fmt: skip


def command(*path: str) -> click.Command:
    cmd: click.Command = main_group
    for name in path:
        assert isinstance(cmd, click.Group)
        cmd = cmd.commands[name]
    return cmd


def invoke(app: App, path: tuple[str, ...], args: list[str], *, as_json: bool = True) -> object:
    ctx = Context(None, None, ADMIN, as_json, None)
    ctx._app = app  # the in-memory adapter is not a built-in: hand the command our App
    return CliRunner().invoke(command(*path), args, obj=ctx, catch_exceptions=False)


def test_install_sync_runs_list_and_disable_through_the_cli(
    mem_app: App,
    crm: MemorySandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clock: FixedClock,
) -> None:
    monkeypatch.setenv(KEY_ENV, crm.settings()["api_key"])
    setup_account(mem_app)
    config = tmp_path / "memory.toml"
    config.write_text(
        f'instance = "{crm.instance}"\napi_key = "${{{KEY_ENV}}}"\nactivated_roles = ["Agent"]\n'
    )
    done = invoke(mem_app, ("install",), [ACCOUNT, P, "--config", str(config)])
    assert done.exit_code == 0, done.output  # type: ignore[attr-defined]
    out = json.loads(done.output)  # type: ignore[attr-defined]
    assert out["settings"]["api_key"] == "***" and out["reinstalled"] is False

    ran = invoke(mem_app, ("sync",), [ACCOUNT, P])
    assert ran.exit_code == 0  # type: ignore[attr-defined]
    doc = json.loads(ran.output)  # type: ignore[attr-defined]
    assert list(doc) == KEYS
    assert doc["outcome"] == "succeeded" and doc["pulled"] == 40 and doc["seated"] == 20
    assert isinstance(doc["seconds"], float)

    dry = invoke(mem_app, ("sync",), [ACCOUNT, P, "--full", "--dry-run"], as_json=False)
    assert "dry run: nothing written" in dry.output  # type: ignore[attr-defined]

    runs = invoke(mem_app, ("runs", "list"), [ACCOUNT, P])
    listed = json.loads(runs.output)  # type: ignore[attr-defined]
    assert [r["outcome"] for r in listed] == ["succeeded"] and listed[0]["pulled"] == 40
    human = invoke(mem_app, ("runs", "list"), [ACCOUNT], as_json=False)
    assert "succeeded" in human.output  # type: ignore[attr-defined]

    off = invoke(mem_app, ("adapters", "disable"), [ACCOUNT, P])
    assert json.loads(off.output)["enabled"] is False  # type: ignore[attr-defined]
    due = invoke(mem_app, ("sync",), ["--due"])
    assert json.loads(due.output) == {"runs": []}  # type: ignore[attr-defined]
    on = invoke(mem_app, ("adapters", "enable"), [ACCOUNT, P], as_json=False)
    assert "is now enabled" in on.output  # type: ignore[attr-defined]
    due = invoke(mem_app, ("sync",), ["--due"])
    assert json.loads(due.output) == {"runs": []}  # type: ignore[attr-defined]
    clock.advance(minutes=61)  # the default interval is 60 minutes
    due = invoke(mem_app, ("sync",), ["--due"])
    runs_due = json.loads(due.output)["runs"]  # type: ignore[attr-defined]
    assert [(r["account"], r["outcome"]) for r in runs_due] == [(ACCOUNT, "succeeded")]


def test_a_halted_sync_exits_1(installed: Callable[..., App], crm: MemorySandbox) -> None:
    app = installed()
    invoke(app, ("sync",), [ACCOUNT, P])
    crm.store.users = crm.store.users[10:]
    halted = invoke(app, ("sync",), [ACCOUNT, P, "--full"])
    assert halted.exit_code == 1  # type: ignore[attr-defined]
    assert json.loads(halted.output)["outcome"] == "halted"  # type: ignore[attr-defined]


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out, captured.err


def test_bad_input_is_one_line_and_exit_2(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "sn.json"
    bad.write_text(json.dumps({"username": "u", "password": "${SN_PASSWORD}", "colour": "red"}))
    code, _, err = run_main(
        [
            "--db",
            sqlite_url,
            "--actor",
            ADMIN,
            "install",
            ACCOUNT,
            "servicenow",
            "--config",
            str(bad),
        ],
        capsys,
    )
    assert code == 2 and err.count("\n") == 1
    assert "bad config key 'colour'" in err and "expected one of" in err

    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    code, _, err = run_main(
        ["--db", sqlite_url, "install", ACCOUNT, "servicenow", "--config", str(broken)], capsys
    )
    assert code == 2 and "bad config file" in err and err.count("\n") == 1

    code, out, _ = run_main(["--db", sqlite_url, "--json", "sync", ACCOUNT], capsys)
    assert code == 2 and json.loads(out)["error"]["code"] == "bad_input"
    code, _, err = run_main(["--db", sqlite_url, "sync", "--due", "--full"], capsys)
    assert code == 2 and "--due" in err
