"""Adapter configuration: a small declarative schema, and secrets that never print.

An adapter declares its settings as a :class:`ConfigSchema`; the core validates a user's config file
against it before anything is written, and wraps every field marked ``secret`` in :class:`Secret`, so
a credential cannot reach a log line, a repr, an error message or the database in clear by accident.
Config files may say ``${ENV_VAR}`` for a value; it is resolved from the environment at use.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, final
from urllib.parse import urlsplit

import attrs

from ..domain.env_refs import ACCOUNT_PREFIX, SERVER_PREFIX
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


#: An integer setting's bounds unless its field says otherwise: a signed 32-bit integer.
INTEGER_BOUNDS: tuple[float, float] = (-(2**31), 2**31 - 1)
#: A number setting's bounds unless its field says otherwise.
NUMBER_BOUNDS: tuple[float, float] = (-1e9, 1e9)

_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "boolean": bool,
    "number": (int, float),
    "list": list,
}


@attrs.frozen
class Field:
    """One setting. ``secret`` fields are wrapped in :class:`Secret`.

    ``minimum`` and ``maximum`` bound an ``integer`` or ``number`` setting (inclusive); without
    them an integer lies within :data:`INTEGER_BOUNDS` (what every database column and client
    library takes) and a number is finite and within :data:`NUMBER_BOUNDS`."""

    name: str
    type: str = "string"
    required: bool = False
    secret: bool = False
    default: Any = None
    choices: tuple[Any, ...] = ()
    description: str = ""
    minimum: float | None = None
    maximum: float | None = None

    def bounds(self) -> tuple[float, float]:
        """(lowest, highest) an ``integer`` or ``number`` setting may be."""
        low, high = INTEGER_BOUNDS if self.type == "integer" else NUMBER_BOUNDS
        return (
            low if self.minimum is None else self.minimum,
            high if self.maximum is None else self.maximum,
        )

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "required": self.required}
        if self.secret:
            out["secret"] = True
        if self.default is not None:
            out["default"] = self.default
        if self.choices:
            out["choices"] = list(self.choices)
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        if self.description:
            out["description"] = self.description
        return out


def timeout_field(default: float) -> Field:
    """The ``timeout`` setting every adapter has: seconds per request, ``default`` unless set,
    from 0.1 to 3,600 (a larger one overflows the clients' deadlines; a negative one answers as
    an unreadable CRM)."""
    return Field(
        "timeout",
        type="number",
        default=default,
        minimum=0.1,
        maximum=3600,
        description="seconds per request",
    )


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
                resolved = resolve_env_refs(value, f.name)
                # An error about it shows the ${VAR} it came from, never the variable's value.
                value = FromEnv(resolved, value) if resolved != value else value
            shown = "***" if f.secret else value
            # bool is an int to isinstance: true and false are no numbers.
            if not isinstance(value, _TYPES[f.type]) or (
                f.type != "boolean" and isinstance(value, bool)
            ):
                raise BadInput(f"config {f.name}", shown, f"a {f.type}")
            if f.choices and value not in f.choices:
                raise BadInput(f"config {f.name}", shown, f.choices)
            if f.type in ("integer", "number") and isinstance(value, int | float):
                low, high = f.bounds()
                # NaN compares false to everything: refused with the infinities.
                if not (math.isfinite(value) and low <= value <= high):
                    raise BadInput(
                        f"config {f.name}", shown, f"a {f.type} from {low:g} to {high:g}"
                    )
            out[f.name] = Secret(str(value)) if f.secret else value
        if self.auth:
            given = [name for name, keys in self.auth.items() if all(k in out for k in keys)]
            if not given:
                options = "; ".join(f"{n}: {', '.join(keys)}" for n, keys in self.auth.items())
                raise BadInput("config auth", "incomplete", f"one complete set of ({options})")
        return out


class FromEnv(str):
    """A setting's value read through ``${VAR}`` references: it *is* the value (a ``str``), but
    its ``repr`` — what an error message quotes — is the reference as the config file wrote it,
    since the variable may hold a secret even where the setting is not marked secret."""

    reference: str

    def __new__(cls, value: str, reference: str) -> FromEnv:
        made = super().__new__(cls, value)
        made.reference = reference
        return made

    def __repr__(self) -> str:
        return repr(self.reference)

    def __reduce__(self) -> Any:
        return (FromEnv, (str(self), self.reference))


def with_references(exc: BadInput, settings: Mapping[str, Any]) -> BadInput:
    """``exc``, or the same error quoting the ``${VAR}`` reference where its value is (as a whole,
    but for a trailing ``/``) a setting read from the environment: adapters check settings after
    ``str()`` or ``rstrip`` has turned a :class:`FromEnv` back into a plain value."""
    if not isinstance(exc.value, str) or isinstance(exc.value, FromEnv):
        return exc
    references = {
        str(v).rstrip("/"): v.reference for v in settings.values() if isinstance(v, FromEnv)
    }
    reference = references.get(exc.value.rstrip("/"))
    if reference is None:
        return exc
    return BadInput(exc.what, reference, exc.accepted, remedy=exc.remedy, context=exc.context)


@contextlib.contextmanager
def references_shown(settings: Mapping[str, Any]) -> Iterator[None]:
    """Re-raise a :class:`BadInput` about a setting read from the environment with its
    ``${VAR}`` reference instead of its value (:func:`with_references`)."""
    try:
        yield
    except BadInput as exc:
        shown = with_references(exc, settings)
        if shown is exc:
            raise
        raise shown from None


# Where a secret stands in a message, by place (never by searching free text for its value,
# which garbles the message and, for a short secret, gives it away): a URL's credentials, an
# authorization header, and a name=value or "name": "value" pair whose name is a secret's.
SECRET_NAMES: tuple[str, ...] = (
    "password", "passwd", "pwd", "secret", "client_secret", "token", "access_token",
    "refresh_token", "id_token", "security_token", "api_key", "apikey", "key", "sid",
    "session_id", "sessionid", "signature", "sig",
)  # fmt: skip
_URL_CREDENTIALS = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@'\"<>]+@")
_HEADER = re.compile(
    r"(?i)(?P<name>['\"]?\b(?:authorization|proxy-authorization|cookie|set-cookie|x-api-key|"
    r"x-auth-token|x-sfdc-session)['\"]?\s*[:=]\s*)(?P<quote>['\"]?)(?P<value>[^'\"\r\n]*)"
)


def _pairs(names: Iterable[str]) -> re.Pattern[str]:
    alternatives = "|".join(sorted({re.escape(n) for n in names}, key=len, reverse=True))
    return re.compile(
        rf"(?i)(?P<name>(?<![\w-])['\"]?(?:{alternatives})['\"]?\s*[:=]\s*)(?P<quote>['\"]?)"
        r"(?P<value>[^\s&'\",;})\]]+)"
    )


_DEFAULT_PAIRS = _pairs(SECRET_NAMES)


def mask_secrets(text: str, names: Iterable[str] = ()) -> str:
    """``text`` with the whole value masked as ``***`` wherever a secret stands by place: a URL's
    ``user:password@``, an ``Authorization``-like header, a ``name=value`` / ``"name": "value"``
    pair named in :data:`SECRET_NAMES` or ``names`` (a schema's secret fields). Nothing else is
    touched: a secret is never searched for as a substring of free text."""
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}***@", text)
    text = _HEADER.sub(lambda m: f"{m['name']}{m['quote']}***", text)
    extra = [n for n in names if n.lower() not in SECRET_NAMES]
    pairs = _pairs([*SECRET_NAMES, *extra]) if extra else _DEFAULT_PAIRS
    return pairs.sub(lambda m: f"{m['name']}{m['quote']}***", text)


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def resolve_env_refs(value: str, key: str) -> str:
    """Replace each ``${NAME}`` with the environment variable NAME. The server's own settings
    (``SEATGATE_*`` outside the accounts' ``SEATGATE_ACCOUNT_*`` namespace) are never read, even
    from a config stored before installs refused them (:mod:`~seatgate.core.domain.env_refs`)."""

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith(SERVER_PREFIX) and not name.startswith(ACCOUNT_PREFIX):
            raise BadInput(
                f"config {key}",
                "${" + name + "}",
                f"a variable that is not a server setting ({SERVER_PREFIX}*)",
            )
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
    only on a loopback host, which is where the sandboxes listen. A URL carrying credentials
    (``https://user:password@host``) is refused, its credentials masked in the error: they
    would be shown and stored in clear, where the auth settings keep a secret as a secret.

    Raises :class:`BadInput` (``config KEY``) naming the URL, credentials masked."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:  # an unclosed [ of an IPv6 address, say
        raise BadInput(f"config {key}", url, f"an https:// URL such as {example}") from None
    if "@" in parts.netloc:
        shown = parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()
        raise BadInput(
            f"config {key}",
            shown,
            f"a URL without credentials, such as {example}: give them in the auth settings "
            "(as ${ENV} references)",
        )
    if (parts.scheme == "https" and host) or (parts.scheme == "http" and host in LOOPBACK_HOSTS):
        return url.rstrip("/")
    raise BadInput(
        f"config {key}", url, f"an https:// URL such as {example} (plain http only for 127.0.0.1)"
    )
