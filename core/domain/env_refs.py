"""Which environment variables an installation's config may name as ``${NAME}``.

A config names its secrets as ``${NAME}`` references, resolved from the server's environment each
time the adapter is called (docs/adapters.md). Whoever writes the config therefore chooses which
of the server's variables are read and sent to the CRM URL the same config names. Two scopes:

- :attr:`EnvScope.OPERATOR` (the CLI, run by whoever runs the server): any variable, except the
  server's own settings (``SEATGATE_*``, e.g. ``SEATGATE_SECRET_KEY``, ``SEATGATE_DATABASE_URL``)
  outside the accounts' namespace.
- :attr:`EnvScope.ACCOUNT` (a tenant over HTTP): only the account's own namespace,
  ``SEATGATE_ACCOUNT_<ACCOUNT>__<NAME>`` — so a tenant can never make the server read another
  account's secret, the server's settings or anything else of its environment (``${HOME}``).

``<ACCOUNT>`` is the account name with its letters and digits kept and each ``_``, ``-`` and ``.``
written as ``_5F``, ``_2D``, ``_2E`` (the character's hex code after ``_``): variable names allow
only letters, digits and ``_``, and with this spelling the first ``__`` always ends the account
part, so no account's namespace is a prefix of another's (``acme`` -> ``SEATGATE_ACCOUNT_acme__``,
``acme-eu`` -> ``SEATGATE_ACCOUNT_acme_2Deu__``). ``<NAME>`` is 1 or more letters, digits or ``_``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Mapping
from typing import Any

from ..errors import BadInput

__all__ = [
    "ACCOUNT_PREFIX",
    "SERVER_PREFIX",
    "EnvScope",
    "account_namespace",
    "check_references",
    "references",
]

SERVER_PREFIX = "SEATGATE_"
ACCOUNT_PREFIX = "SEATGATE_ACCOUNT_"

_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"[A-Za-z0-9_]+")


class EnvScope(enum.StrEnum):
    OPERATOR = "operator"
    ACCOUNT = "account"


def account_namespace(account: str) -> str:
    """The prefix of the variables ``account``'s configs may name over HTTP, ``__`` included."""
    spelled = "".join(ch if ch.isascii() and ch.isalnum() else f"_{ord(ch):02X}" for ch in account)
    return f"{ACCOUNT_PREFIX}{spelled}__"


def references(config: Any) -> Iterator[tuple[str, str]]:
    """``(key, NAME)`` for each ``${NAME}`` in ``config``'s text values, nested ones included."""
    if isinstance(config, Mapping):
        for key, value in config.items():
            for inner, name in references(value):
                yield (f"{key}.{inner}" if inner else str(key)), name
    elif isinstance(config, list | tuple):
        for value in config:
            yield from references(value)
    elif isinstance(config, str):
        for match in _REF.finditer(config):
            yield "", match.group(1)


def check_references(config: Mapping[str, Any], account: str, scope: EnvScope) -> None:
    """Raise :class:`BadInput` naming the first ``${NAME}`` of ``config`` that ``scope`` does not
    allow for ``account``, and what is accepted."""
    namespace = account_namespace(account)
    for key, name in references(config):
        if scope == EnvScope.ACCOUNT:
            rest = name[len(namespace) :] if name.startswith(namespace) else ""
            if not _NAME.fullmatch(rest):
                raise BadInput(
                    f"config {key}",
                    "${" + name + "}",
                    f"over HTTP, a variable of this account's namespace, ${{{namespace}NAME}} "
                    "(docs/http.md)",
                )
        elif name.startswith(SERVER_PREFIX) and not name.startswith(ACCOUNT_PREFIX):
            raise BadInput(
                f"config {key}",
                "${" + name + "}",
                f"a variable that is not a server setting ({SERVER_PREFIX}*); "
                f"an account's own: ${{{namespace}NAME}}",
            )
