"""``seatgate new-adapter NAME``: write a working adapter package to start from.

The package has its entry point in the group ``seatgate.adapters``, an adapter that talks to its own
sandbox (a tiny JSON users API with paging and the fault knobs), a README, and a test that runs the
conformance kit, so it passes its tests before anyone edits it (as datasette's plugin template does).
"""

from __future__ import annotations

import keyword
import re
from importlib import resources
from pathlib import Path

from ..errors import BadInput, Conflict

__all__ = ["new_adapter"]

_NAME = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
# The seven products of the catalog: a new adapter with one of these names would clash at loading.
_TAKEN = {"salesforce", "salesforce_voice", "servicenow", "hubspot", "oracle_sc", "sap_c4c", "pega"}

# template -> path in the package; {package} is filled in.
_FILES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "package_init.py.tmpl": "src/{package}/__init__.py",
    "adapter.py.tmpl": "src/{package}/adapter.py",
    "sandbox.py.tmpl": "src/{package}/sandbox.py",
    "test_conformance.py.tmpl": "tests/test_conformance.py",
}


def new_adapter(name: str, directory: str | Path = ".") -> Path:
    """Write the package ``seatgate-<name>`` under ``directory`` and return its path.

    :param name: the adapter and product name: lower case letters, digits and ``_``.
    :param directory: where the package folder is created; it must not exist yet.
    """
    if not _NAME.match(name) or keyword.iskeyword(name):
        raise BadInput("adapter name", name, "2-40 lower-case letters, digits or _, e.g. acme_crm")
    if name in _TAKEN or name == "memory":
        raise BadInput("adapter name", name, "a name no built-in product uses")
    words = name.split("_")
    values = {
        "name": name,
        "NAME": name.upper(),
        "Title": " ".join(w.capitalize() for w in words),
        "Class": "".join(w.capitalize() for w in words),
        "package": f"seatgate_{name}",
        "dist": f"seatgate-{name.replace('_', '-')}",
    }
    root = Path(directory) / values["dist"]
    if root.exists():
        raise Conflict(f"{root} already exists: choose another --dir or remove it")
    templates = resources.files("seatgate.core.entrypoints.templates.adapter")
    for template, target in _FILES.items():
        text = templates.joinpath(template).read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", value)
        path = root / target.format(package=values["package"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root
