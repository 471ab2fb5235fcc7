"""The kinds of value a command takes, as click parameter types: each reads the text it is given
through the documented bounds (:mod:`seatgate.core.domain.bounds`) or the vocabulary
(:mod:`seatgate.core.domain.vocabulary`), before the command runs and before anything is written.

Every parameter of every command has one of these types (or is a flag): the CLI decides a kind
once, here, and the HTTP API reads the same bounds. A value out of range is a :class:`BadInput`
naming the option (``--seats``) or the argument's noun (``email``), the value and what is
accepted; an empty value (``--as-of ""``) is refused like any other bad value, never taken as
"not given".
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any

import click

from ...domain import bounds
from ...domain.timeline import check_region
from ...domain.vocabulary import (
    Channel,
    ChargeModel,
    Feature,
    Frequency,
    Permission,
    SeatMode,
    TicketKind,
    choice,
    normalize_email,
)
from ...errors import BadInput
from .files import read_lines

__all__ = [
    "ACCOUNT",
    "CHECKED_TYPES",
    "EMAIL",
    "PRODUCT",
    "Checked",
    "Choice",
    "DirPath",
    "FilePath",
]


# Nouns too general to say which argument was bad: such an argument is named by its own name.
_GENERIC = {"number", "text"}


def _what(param: click.Parameter | None, noun: str) -> str:
    """An option by its flag (``--seats``), an argument by its noun (``email``) — or, when the
    noun is a generic one, by the argument's name (``run id``, ``token id``, not ``number``)."""
    if isinstance(param, click.Option):
        longs = [o for o in param.opts if o.startswith("--")]
        return (longs or param.opts)[0]
    if noun in _GENERIC and param is not None and param.name:
        return param.name.replace("_", " ")
    return noun


class Checked(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.3
    """A value read by ``check(text, what)``, which returns it typed or raises BadInput."""

    def __init__(self, name: str, noun: str, check: Callable[[str, str], Any]) -> None:
        self.name = name
        self.noun = noun
        self.check = check

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):  # a default that is already typed
            return value
        return self.check(value, _what(param, self.noun))


class Choice(Checked):
    """One of a vocabulary's words, in any case (``MANAGE`` is ``manage``, ``uk`` is ``UK``)."""

    def __init__(self, name: str, accepted: type[StrEnum] | tuple[str, ...]) -> None:
        self.choices = tuple(str(a) for a in accepted)
        super().__init__(name, name, lambda value, what: choice(what, value, self.choices))

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return "[" + "|".join(self.choices) + "]"


class FilePath(click.Path):
    """A file's path: an empty one is a bad value, not the current directory."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(dir_okay=False, path_type=Path, **kwargs)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            raise BadInput(_what(param, "file"), value, "a file's path")
        return super().convert(value, param, ctx)


class OutputFile(FilePath):
    """A file the command writes: in a directory that exists, and not itself a directory
    (checked before the command starts anything)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        path = super().convert(value, param, ctx)
        if path.is_dir() or not path.parent.is_dir():
            raise BadInput(_what(param, "file"), str(value), "a file in a directory that exists")
        return path


class DirPath(click.Path):
    """A directory's path: an empty one is a bad value, not the current directory."""

    def __init__(self) -> None:
        super().__init__(file_okay=False, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            raise BadInput(_what(param, "directory"), value, "a directory's path")
        return super().convert(value, param, ctx)


def _text(maximum: int) -> Callable[[str, str], str]:
    return lambda value, what: bounds.text(value, what, maximum=maximum)


def _email(value: str, what: str) -> str:
    try:
        return normalize_email(value)
    except BadInput as exc:
        raise BadInput(what, value, exc.accepted) from None


ACCOUNT = Checked("ACCOUNT", "account name", bounds.account_name)
PRODUCT = Checked("PRODUCT", "product", _text(bounds.LABEL_MAX))
EMAIL = Checked("EMAIL", "email", _email)
NAME = Checked("TEXT", "name", _text(bounds.NAME_MAX))
LABEL = Checked("TEXT", "text", _text(bounds.LABEL_MAX))
URL = Checked("URL", "URL", _text(4096))
INSTANT = Checked("DATETIME", "date/time", bounds.instant)
DATE = Checked("YYYY-MM-DD", "date", bounds.date)
PERIOD = Checked("YYYY-MM", "period", bounds.period)
SEATS = Checked("INTEGER", "seats", bounds.count)
CONTRACTED = Checked("INTEGER", "seats", bounds.contracted_seats)
SEAT_CHANGE = Checked("INTEGER", "quantity", bounds.seat_change)
MONTHS = Checked("INTEGER", "months", bounds.months)
MONEY = Checked("AMOUNT", "amount", bounds.unit_price)
PORT = Checked(
    "INTEGER", "port", lambda value, what: bounds.count(value, what, minimum=0, maximum=65535)
)


def counted(maximum: int, minimum: int = 1) -> Checked:
    """A whole number from ``minimum`` to ``maximum`` (``--limit``, ``--users``)."""
    return Checked(
        "INTEGER",
        "number",
        lambda value, what: bounds.count(value, what, minimum=minimum, maximum=maximum),
    )


def seconds(minimum: float, maximum: float) -> Checked:
    """A number of seconds from ``minimum`` to ``maximum`` (``--request-timeout``)."""

    def check(value: str, what: str) -> float:
        try:
            number = float(value.strip())
        except ValueError:
            number = float("nan")
        if not minimum <= number <= maximum:  # NaN fails both
            raise BadInput(what, value, f"a number of seconds from {minimum:g} to {maximum:g}")
        return number

    return Checked("SECONDS", "seconds", check)


LINES = Checked("FILE", "file", read_lines)  # '-' is stdin

REGION = Checked("REGION", "region", lambda value, what: check_region(value))
CHARGE_MODEL = Choice("CHARGE_MODEL", ChargeModel)
PERMISSION = Choice("PERMISSION", Permission)
FREQUENCY = Choice("FREQUENCY", Frequency)
CHANNEL = Choice("CHANNEL", Channel)
MODE = Choice("MODE", SeatMode)
FEATURE = Choice("FEATURE", Feature)
TICKET_KIND = Choice("KIND", TicketKind)

# What a parameter's type may be: the test of every command checks each parameter against these.
CHECKED_TYPES: tuple[type[click.ParamType[Any]], ...] = (Checked, FilePath, DirPath)
