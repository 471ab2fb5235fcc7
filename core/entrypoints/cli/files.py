"""Files a user hands the CLI: config files of an installation."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from ...errors import BadInput

__all__ = ["load_config_file"]


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON or TOML config file (by extension; otherwise JSON, then TOML).

    Raises :class:`BadInput` naming the file when it cannot be read or parsed.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        raise BadInput("config file", str(path), "a readable UTF-8 JSON or TOML file") from None
    loaders: list[Any] = [json.loads, tomllib.loads]
    if p.suffix.lower() == ".toml":
        loaders.reverse()
    elif p.suffix.lower() == ".json":
        loaders = loaders[:1]
    for load in loaders:
        try:
            data = load(text)
        except (json.JSONDecodeError, tomllib.TOMLDecodeError):
            continue
        if not isinstance(data, dict):
            raise BadInput("config file", str(path), "a JSON object or TOML table of settings")
        return data
    raise BadInput("config file", str(path), "valid JSON or TOML")
