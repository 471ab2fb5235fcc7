"""``new_adapter`` writes a package that installs, passes the conformance kit and loads by entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from seatgate.core.entrypoints.scaffold import new_adapter
from seatgate.core.errors import BadInput, Conflict
from seatgate.core.plugins.manager import build_plugin_manager


def _pip_install(package: Path, target: Path) -> None:
    # Into a throwaway --target, never into the shared .venv. Without build isolation first (offline,
    # fast); the venv's setuptools may be too old to build a wheel alone, then pip builds in an
    # isolated environment from the configured index.
    base = [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target)]
    for extra in (["--no-build-isolation"], []):
        done = subprocess.run(
            [*base, *extra, str(package)], capture_output=True, text=True, timeout=300
        )
        if done.returncode == 0:
            return
    pytest.fail(f"pip could not install the generated package:\n{done.stdout}\n{done.stderr}")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("scaffold")
    package = new_adapter("acme_crm", root)
    site = root / "site"
    _pip_install(package, site)
    yield package, site


def test_generated_package_layout(installed: tuple[Path, Path]) -> None:
    package, site = installed
    assert package.name == "seatgate-acme-crm"
    pyproject = (package / "pyproject.toml").read_text()
    assert '[project.entry-points."seatgate.adapters"]' in pyproject
    assert 'acme_crm = "seatgate_acme_crm.adapter:plugin"' in pyproject
    for path in ("README.md", "src/seatgate_acme_crm/sandbox.py", "tests/test_conformance.py"):
        assert (package / path).is_file(), path
    assert "{{" not in "".join(p.read_text() for p in package.rglob("*") if p.is_file())
    assert (site / "seatgate_acme_crm" / "adapter.py").is_file()


def test_generated_tests_pass(installed: tuple[Path, Path]) -> None:
    package, site = installed
    env = {**os.environ, "PYTHONPATH": str(site), "SEATGATE_STRICT_PLUGINS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=package,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout and "failed" not in done.stdout and "skipped" not in done.stdout


def test_installed_adapter_loads_with_its_distribution_as_origin(
    installed: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, site = installed
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("SEATGATE_LOAD_PLUGINS", "acme_crm")
    try:
        plugins = build_plugin_manager(builtins=(), strict=True)
        adapter = plugins.registry.get("acme_crm")
        assert (adapter.name, adapter.origin) == ("acme_crm", "seatgate-acme-crm")
        assert adapter.as_dict()["products"] == ["acme_crm"]
    finally:
        for name in [m for m in sys.modules if m.startswith("seatgate_acme_crm")]:
            del sys.modules[name]


@pytest.mark.parametrize("name", ["Acme", "1acme", "a", "acme-crm", "class", "hubspot", "memory"])
def test_bad_names_are_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(BadInput):
        new_adapter(name, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_existing_directory_is_not_overwritten(tmp_path: Path) -> None:
    new_adapter("zeta", tmp_path)
    with pytest.raises(Conflict, match="already exists"):
        new_adapter("zeta", tmp_path)
