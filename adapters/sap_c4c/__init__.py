"""The SAP Cloud for Customer adapter and its sandbox. ``plugin`` loads the adapter (and httpx)
on first access; ``declaration`` says what it serves without loading it."""

from __future__ import annotations

from typing import Any

__all__ = ["plugin"]


def __getattr__(name: str) -> Any:
    if name == "plugin":
        from .adapter import plugin

        return plugin
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
