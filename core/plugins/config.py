"""Adapter configuration: a small declarative schema, and secrets that never print.

An adapter declares its settings as a :class:`ConfigSchema`; the core validates a user's config file
against it before anything is written, and wraps every field marked ``secret`` in :class:`Secret`, so
a credential cannot reach a log line, a repr, an error message or the database in clear by accident.
Config files may say ``${ENV_VAR}`` for a value; it is resolved from the environment at use.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, final
from urllib.parse import urlsplit

import attrs

from ..errors import BadInput


@final
class Secret:
    """A credential. ``str()``/``repr()`` show ``'***'``; :meth:`reveal` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:
        # Pickling would carry the clear value into Celery messages and caches.
        raise TypeError("a Secret cannot be pickled")


_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "boolean": bool,
    "number": (int, float),
    "list": list,
}


@attrs.frozen
class Field:
    """One setting. ``secret`` fields are wrapped in :class:`Secret`."""

    name: str
    type: str = "string"
    required: bool = False
    secret: bool = False
    default: Any = None
    choices: tuple[Any, ...] = ()
    description: str = ""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "required": self.required}
        if self.secret:
            out["secret"] = True
        if self.default is not None:
            out["default"] = self.default
        if self.choices:
            out["choices"] = list(self.choices)
        if self.description:
            out["description"] = self.description
        return out


@attrs.frozen
class ConfigSchema:
    """Settings of an adapter; ``auth`` lists alternative sets of fields, one of which must be given.

    Example: ``auth={"session": ("session_id", "instance_url"), "password": ("username", ...)}``.
    """

    fields: tuple[Field, ...]
    auth: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "fields": [f.as_dict() for f in self.fields],
            "auth": {k: list(v) for k, v in self.auth.items()},
        }

    def validate(self, raw: Mapping[str, Any], *, resolve_env: bool = True) -> dict[str, Any]:
        """Check ``raw`` and return the settings with defaults and secrets wrapped.

        Raises :class:`BadInput` naming the first bad key. Secret values are never quoted.
        """
        if not isinstance(raw, Mapping):
            raise BadInput("config", type(raw).__name__, "a mapping of settings")
        known = {f.name: f for f in self.fields}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise BadInput("config key", unknown[0], sorted(known))
        out: dict[str, Any] = {}
        for f in self.fields:
            value = raw.get(f.name, f.default)
            if value is None:
                if f.required:
                    raise BadInput("config", f"missing {f.name}", f"a value for {f.name!r}")
                continue
            if resolve_env and isinstance(value, str):
                value = resolve_env_refs(value, f.name)
            shown = "***" if f.secret else value
            # bool is an int to isinstance: true and false are no numbers.
            if not isinstance(value, _TYPES[f.type]) or (
                f.type != "boolean" and isinstance(value, bool)
            ):
                raise BadInput(f"config {f.name}", shown, f"a {f.type}")
            if f.choices and value not in f.choices:
                raise BadInput(f"config {f.name}", shown, f.choices)
            out[f.name] = Secret(str(value)) if f.secret else value
        if self.auth:
            given = [name for name, keys in self.auth.items() if all(k in out for k in keys)]
            if not given:
                options = "; ".join(f"{n}: {', '.join(keys)}" for n, keys in self.auth.items())
                raise BadInput("config auth", "incomplete", f"one complete set of ({options})")
        return out


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def resolve_env_refs(value: str, key: str) -> str:
    """Replace each ``${NAME}`` with the environment variable NAME."""

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise BadInput(
                f"config {key}", "${" + name + "}", "an environment variable that is set"
            )
        return os.environ[name]

    return _ENV_REF.sub(sub, value)


def reveal(value: object) -> str:
    """The clear text of a setting: a :class:`Secret` from validated settings, or a plain value.
    Call it only where a client library needs the credential, never to log or display it."""
    return value.reveal() if isinstance(value, Secret) else str(value)


def redact(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Settings fit for display: secrets shown as ``***``."""
    return {k: ("***" if isinstance(v, Secret) else v) for k, v in settings.items()}


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def require_tls(url: str, key: str, example: str) -> str:
    """A CRM URL without its trailing slash. TLS stays on for real hosts: plain http is accepted
    only on a loopback host, which is where the sandboxes listen."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if (parts.scheme == "https" and host) or (parts.scheme == "http" and host in LOOPBACK_HOSTS):
        return url.rstrip("/")
    raise BadInput(
        f"config {key}", url, f"an https:// URL such as {example} (plain http only for 127.0.0.1)"
    )
