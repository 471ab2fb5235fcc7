"""Files a user hands the CLI: lists of addresses (``--from-file``) and installation config files.

Every file is read the same way, by :func:`read_text`: UTF-8, with or without a byte-order mark
(Windows editors write one); any other encoding is one line naming the file and what to do, never
a traceback or a first address that starts with ``\\ufeff``.
"""

from __future__ import annotations

import codecs
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

from ...errors import BadInput

__all__ = ["load_config_file", "read_lines", "read_text"]

_OTHER_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def read_text(path: str | Path, what: str = "file") -> str:
    """The text of ``path`` (``-`` is stdin), decoded as UTF-8 with or without BOM.

    Raises :class:`BadInput` naming ``what`` and the file when it cannot be read, or is not UTF-8
    (UTF-16 and UTF-32 are named, so the remedy is plain: save it as UTF-8).
    """
    name = str(path)
    try:
        data = sys.stdin.buffer.read() if name == "-" else Path(path).read_bytes()
    except IsADirectoryError:
        raise BadInput(what, name, "a file, not a directory") from None
    except OSError as exc:
        raise BadInput(what, name, f"a readable file ({exc.strerror or exc})") from None
    for bom, encoding in _OTHER_BOMS:
        if data.startswith(bom):
            raise BadInput(
                what, name, f"a UTF-8 text file (this one is {encoding}: save it as UTF-8)"
            )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInput(
            what, name, f"a UTF-8 text file (byte {exc.start + 1} is not UTF-8: save it as UTF-8)"
        ) from None
    if "\x00" in text:  # UTF-16 without a BOM decodes as "UTF-8" with a NUL in every other byte
        raise BadInput(what, name, "a UTF-8 text file (this one holds NUL bytes: UTF-16?)")
    return text


def read_lines(path: str | Path, what: str = "file") -> list[str]:
    """The lines of ``path`` that say something: each stripped, blank lines and comments (lines
    whose first non-blank character is ``#``) left out."""
    lines = (line.strip() for line in read_text(path, what).splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON or TOML config file (by extension; otherwise JSON, then TOML).

    Raises :class:`BadInput` naming the file when it cannot be read or parsed.
    """
    p = Path(path)
    text = read_text(path, "config file")
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
