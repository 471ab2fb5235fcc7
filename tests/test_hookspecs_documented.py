"""Every hook is documented: a docstring, a ``:param:`` per argument, and a section in docs/hooks.md."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from seatgate.core.plugins import hookspecs

DOCS = Path(__file__).resolve().parents[1] / "docs" / "hooks.md"


def _hooks() -> list[str]:
    return sorted(
        name
        for name, value in vars(hookspecs).items()
        if callable(value) and hasattr(value, f"{hookspecs.PROJECT}_spec")
    )


def test_there_are_hooks() -> None:
    assert {"seatgate_pull_users", "seatgate_sync_finished"} <= set(_hooks())


@pytest.mark.parametrize("name", _hooks())
def test_hook_has_docstring_and_params(name: str) -> None:
    function = getattr(hookspecs, name)
    doc = inspect.getdoc(function) or ""
    assert doc.strip(), f"{name} has no docstring"
    for param in inspect.signature(function).parameters:
        assert f":param {param}:" in doc, f"{name} does not document :param {param}:"


@pytest.mark.parametrize("name", _hooks())
def test_hook_has_a_docs_section(name: str) -> None:
    text = DOCS.read_text(encoding="utf-8")
    match = re.search(rf"^### `{name}`\n(.*?)(?=^##)", text + "\n##", re.S | re.M)
    assert match, f"docs/hooks.md has no section '### `{name}`'"
    section = match.group(1)
    assert f"{name}(" in section, f"the section of {name} shows no signature"
    assert "@hookimpl" in section, f"the section of {name} has no example implementation"
    for param in inspect.signature(getattr(hookspecs, name)).parameters:
        assert f"`{param}`" in section, f"the section of {name} does not describe {param}"


def test_the_checker_catches_an_undocumented_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    @hookspecs.hookspec
    def seatgate_undocumented(account: str) -> None:
        pass

    monkeypatch.setattr(hookspecs, "seatgate_undocumented", seatgate_undocumented, raising=False)
    assert "seatgate_undocumented" in _hooks()
    with pytest.raises(AssertionError, match="no docstring"):
        test_hook_has_docstring_and_params("seatgate_undocumented")
    with pytest.raises(AssertionError, match="no section"):
        test_hook_has_a_docs_section("seatgate_undocumented")
