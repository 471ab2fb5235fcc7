"""make test and make demo (issue 13, item 13): the PostgreSQL tests left out are said once (and
CI still requires them); installing prints no setuptools warning block; the demo says what each
step shows."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def pytest_run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SEATGATE_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_without_postgres_the_left_out_tests_are_said_once() -> None:
    proc = pytest_run("tests/test_concurrency.py", "tests/test_cli_core.py", "-k", "postgres")
    out = proc.stdout + proc.stderr
    assert re.search(r"^PostgreSQL: \d+ tests not run; set SEATGATE_TEST_POSTGRES_URL", out, re.M)
    assert out.count("PostgreSQL:") == 1
    assert "SKIPPED" not in out and "skipped" not in out, out


def test_ci_still_requires_them() -> None:
    proc = pytest_run("tests/test_concurrency.py", "-k", "postgres", SEATGATE_REQUIRE_POSTGRES="1")
    assert proc.returncode == 1, proc.stdout
    assert "SEATGATE_TEST_POSTGRES_URL is not set but SEATGATE_REQUIRE_POSTGRES=1" in proc.stdout


def test_the_makefile_installs_without_the_editable_install_warning_block(
    tmp_path: Path,
) -> None:
    """The build make venv runs (setuptools' build_editable on a copy of the project), with the
    warnings filter the Makefile gives it: no ``!!`` / ``****`` block. Without the filter the
    block is there, so the filter is what removes it."""
    pytest.importorskip("setuptools")
    makefile = (ROOT / "Makefile").read_text()
    found = re.search(r'PYTHONWARNINGS="([^"]+)" \$\(BIN\)/pip install', makefile)
    assert found, "make venv installs with a PYTHONWARNINGS filter"
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    for folder in ("core", "adapters"):
        shutil.copytree(
            ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    build = "from setuptools import build_meta as b; b.build_editable(r'{}')"

    def stderr(out: str, **env: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-c", build.format(tmp_path / out)],
            cwd=tmp_path,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        return proc.stderr

    assert "Editable installation" in stderr("plain")
    filtered = stderr("filtered", PYTHONWARNINGS=found.group(1))
    assert "Editable installation" not in filtered and "****" not in filtered, filtered


def test_the_demo_says_what_each_step_shows() -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SEATGATE_")}
    proc = subprocess.run(
        [sys.executable, "-m", "seatgate.core.entrypoints.demo"],
        env=clean,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    commands = [i for i, line in enumerate(lines) if line.startswith("$ seatgate ")]
    assert len(commands) >= 10
    for i in commands:
        assert lines[i - 1].startswith("# ") and len(lines[i - 1]) > 20, lines[i - 1]
