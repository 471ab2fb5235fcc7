"""Paged admin listings on the command line: ``--limit`` and ``--cursor`` (the ``next_cursor`` a
previous page printed), one JSON document per page with ``--json``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from . import Context, json_default, table

if TYPE_CHECKING:
    from rich.console import Console

    from ...services.paging import Page

__all__ = ["emit_page", "paged"]

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def paged(command: F) -> F:
    """Add ``--limit``, ``--cursor`` and ``--json`` to a listing command."""
    from . import params

    for option in (
        click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout."),
        click.option(
            "--cursor",
            type=params.LABEL,
            default=None,
            help="Start at the page a previous listing named (its next_cursor).",
        ),
        click.option(
            "--limit",
            type=params.counted(MAX_LIMIT),
            default=DEFAULT_LIMIT,
            show_default=True,
            help="At most this many items on the page.",
        ),
    ):
        command = option(command)
    return command


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    rendered = json_default(value) if not isinstance(value, str | int | float) else value
    return str(rendered)


def emit_page(
    ctx: Context,
    listing: Page,
    name: str,
    columns: Sequence[tuple[str, str]],
    *,
    empty: str,
    as_json: bool,
) -> None:
    """Print one page: ``columns`` are (header, item key) pairs of the table people see; the
    JSON document is :meth:`Page.as_dict` under ``name``."""
    ctx.json = ctx.json or as_json

    def human(console: Console) -> None:
        if not listing.items:
            console.print(empty)
        else:
            grid = table(*(header for header, _ in columns))
            for item in listing.items:
                grid.add_row(*(cell(item.get(key)) for _, key in columns))
            console.print(grid)
        if listing.next_cursor:
            console.print(f"more: add --cursor {listing.next_cursor}")

    ctx.emit(listing.as_dict(name), human)
