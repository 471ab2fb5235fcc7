"""``seatgate adapters list``, ``new-adapter`` and ``sandbox``."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from seatgate.core.entrypoints.cli import adapters as cli_adapters
from seatgate.core.entrypoints.cli import main, main_group
from seatgate.core.errors import NotFound
from seatgate.core.plugins.manager import BUILTIN_ADAPTERS


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEATGATE_STRICT_PLUGINS", raising=False)
    monkeypatch.delenv("SEATGATE_LOAD_PLUGINS", raising=False)


@pytest.mark.parametrize("args", [["--json", "adapters", "list"], ["adapters", "list", "--json"]])
def test_adapters_list_json(args: list[str]) -> None:
    result = CliRunner().invoke(main_group, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    named = {a["name"] for a in data["adapters"]} | {p["name"] for p in data["problems"]}
    assert named >= {m.rsplit(".", 1)[1] for m in BUILTIN_ADAPTERS}
    for adapter in data["adapters"]:
        assert set(adapter) >= {
            "name",
            "products",
            "version",
            "features",
            "config_schema",
            "origin",
        }
        assert adapter["origin"] == "builtin"


def test_adapters_list_respects_the_load_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEATGATE_LOAD_PLUGINS", "")
    result = CliRunner().invoke(main_group, ["adapters", "list", "--json"])
    assert json.loads(result.output) == {"adapters": [], "problems": []}


def test_new_adapter_writes_a_package(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main_group, ["--json", "new-adapter", "acme", "--dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    path = Path(json.loads(result.output)["path"])
    assert path == tmp_path / "seatgate-acme"
    assert (path / "src" / "seatgate_acme" / "adapter.py").is_file()


def test_sandbox_command_serves_and_prints_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    servicenow = pytest.importorskip("seatgate.adapters.servicenow.sandbox")
    assert servicenow.SANDBOX
    seen: dict[str, int] = {}

    def interrupt(seconds: float) -> None:
        # Stands in for the operator's Ctrl-C, after checking the sandbox answers while serving.
        try:
            with urllib.request.urlopen(url_holder["url"] + "/") as response:
                seen["status"] = response.status
        except urllib.error.HTTPError as exc:  # any HTTP answer shows it is serving
            seen["status"] = exc.code
        raise KeyboardInterrupt

    url_holder: dict[str, str] = {}
    real_start = cli_adapters.start_sandbox

    def start(name: str, users: int, port: int) -> object:
        sb = real_start(name, users, port)
        url_holder["url"] = sb.url
        return sb

    monkeypatch.setattr(cli_adapters, "start_sandbox", start)
    monkeypatch.setattr(cli_adapters.time, "sleep", interrupt)
    result = CliRunner().invoke(main_group, ["--json", "sandbox", "servicenow", "--users", "3"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["url"] == url_holder["url"] and data["users"] == 3
    assert data["settings"]  # shown in clear: the sandbox's own fake credentials
    assert "status" in seen


def test_sandbox_of_unknown_adapter() -> None:
    with pytest.raises(NotFound, match="unknown adapter sandbox 'nope'"):
        cli_adapters.start_sandbox("nope", 1, 0)


def test_a_sandbox_config_file_in_a_missing_directory_is_refused_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "x.json"
    for extra in ([], ["--background"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["sandbox", "servicenow", "--users", "1", *extra, "--config", str(missing)])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2, err
        assert "a file in a directory that exists" in err and str(missing) in err
        assert "Traceback" not in err and err.count("\n") == 1
    assert not missing.parent.exists()
