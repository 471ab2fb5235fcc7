"""Reading the JSON data the rules run on (the enforcement timeline, the catalog): the copy shipped
in the package, or a file the user names, with one-line errors."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import PolicyError


def packaged(name: str) -> Any:
    """``core/data/<name>``, as shipped."""
    return json.loads(resources.files("seatgate.core").joinpath(f"data/{name}").read_text())


def from_file(path: str | Path, what: str) -> Any:
    """A user's data file; ``what`` names it in errors ("policy file", "catalog file")."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise PolicyError(f"{what} {str(path)!r} does not exist") from None
    except json.JSONDecodeError as exc:
        raise PolicyError(f"{what} {str(path)!r} is not JSON: {exc}") from None
