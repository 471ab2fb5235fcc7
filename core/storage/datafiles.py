"""Reading the JSON data the rules run on — the enforcement timeline and the catalog — from the
copy shipped in the package or from a file the user names, with one-line errors.

The rules themselves (parsing and validating the data) are the domain's
(:meth:`Timeline.from_json <seatgate.core.domain.timeline.Timeline.from_json>`,
:meth:`Catalog.from_json <seatgate.core.domain.catalog.Catalog.from_json>`); this module only reads
bytes. Bootstrap decides which file (``--policy``, ``SEATGATE_CATALOG``).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from ..domain.catalog import Catalog
from ..domain.timeline import Timeline
from ..errors import PolicyError

__all__ = ["from_file", "load_catalog", "load_timeline", "packaged"]


def packaged(name: str) -> Any:
    """``core/data/<name>``, as shipped."""
    return json.loads(resources.files("seatgate.core").joinpath(f"data/{name}").read_text())


def from_file(path: str | Path, what: str) -> Any:
    """A user's data file; ``what`` names it in errors ("policy file", "catalog file").

    Raises :class:`PolicyError` (one line) when it is missing, unreadable or not JSON.
    """
    try:
        return json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise PolicyError(f"{what} {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise PolicyError(f"{what} {str(path)!r} is a directory, not a JSON file") from None
    except UnicodeDecodeError:
        raise PolicyError(f"{what} {str(path)!r} is not UTF-8 text") from None
    except OSError as exc:
        raise PolicyError(f"{what} {str(path)!r} cannot be read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise PolicyError(f"{what} {str(path)!r} is not JSON: {exc}") from None


def load_timeline(path: str | Path | None = None) -> Timeline:
    """The enforcement timeline in ``path``, or the built-in one (seed 000's)."""
    if path is None:
        return Timeline.from_json(packaged("timeline.json"), source="built-in timeline")
    return Timeline.from_json(from_file(path, "policy file"), source=str(path))


def load_catalog(path: str | Path | None = None) -> Catalog:
    """The catalog in ``path``, or the built-in one (illustrative prices)."""
    if path is None:
        return Catalog.from_json(packaged("catalog.json"), source="built-in catalog")
    return Catalog.from_json(from_file(path, "catalog file"), source=str(path))
