"""The README's quick start works when pasted into a shell (issue 13): its block runs as written,
through bash, in an empty directory, with only ``.venv/bin`` put on the PATH as the README says."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = "<!-- quick start:"


def quick_start() -> str:
    """The ```sh block right after the quick-start marker."""
    text = README.read_text(encoding="utf-8")
    after = text[text.index(MARKER) :]
    match = re.search(r"```sh\n(.*?)```", after, re.S)
    assert match is not None, "the quick start block follows its marker"
    return match.group(1)


def test_the_quick_start_block_runs_as_written(tmp_path: Path) -> None:
    block = quick_start()
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",  # the README's export PATH=...
        "HOME": str(tmp_path),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }
    # -e: every command must succeed as written; the trap stops the sandbox even if one fails.
    script = (
        f"set -e\ntrap 'kill \"${{SEATGATE_SANDBOX_PID:-0}}\" 2>/dev/null || true' EXIT\n{block}"
    )
    proc = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = proc.stdout
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == ""
    assert "installed salesforce on acme" in out
    assert "succeeded: full sync of salesforce for acme" in out
    assert "allowed: seated (phase restricted" in out
    assert "denied: no_seat" in out and "(exit 1: no seat, denied)" in out
    assert "summary only, nothing bought" in out and "bought; idempotency key" in out
    assert re.search(r"total: [1-9]\d*\.\d\d USD", out), out  # the preview bills something
    # The config the sandbox wrote holds references, never the secrets themselves.
    config = (tmp_path / "salesforce.json").read_text()
    assert "${SALESFORCE_PASSWORD}" in config and "sandbox-password" not in config
