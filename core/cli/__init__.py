"""The ``seatgate`` command line.

Global options come before the command: ``seatgate --db URL --as-of 2026-03-16T12:00:00Z --json
check ...``. With ``--json`` stdout carries exactly one JSON document, errors included. Exit codes:
0 done (or allowed), 1 done with refusals (or denied), 2 bad input / not found / not authorized.

Each concern's commands live in a module of this package and are listed in :data:`COMMAND_MODULES`;
a module defines click commands/groups and a ``register(main)`` function.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console

from ..app import App
from ..clock import FixedClock, SystemClock, isoformat, parse_instant
from ..errors import SeatgateError

COMMAND_MODULES: tuple[str, ...] = ("db", "accounts", "seats", "adapters", "billing", "sync")


class Context:
    """What every command gets: the options, the App (built on first use), and output helpers."""

    def __init__(
        self,
        db: str | None,
        as_of: str | None,
        actor: str | None,
        as_json: bool,
        policy: Path | None,
    ) -> None:
        self.db_url = db
        self.clock = FixedClock(parse_instant(as_of, "--as-of")) if as_of else SystemClock()
        self.actor = actor
        self.json = as_json
        self.policy = policy
        self.console = Console(stderr=False, highlight=False, soft_wrap=True)
        self._app: App | None = None

    def close(self) -> None:
        """Close the App's database connections (the CLI can run in process, e.g. in tests)."""
        if self._app is not None:
            self._app.db.dispose()

    @property
    def app(self) -> App:
        if self._app is None:
            self._app = App(self.db_url, clock=self.clock, policy_file=self.policy)
        return self._app

    def emit(self, data: Any, human: Callable[[Console], None] | None = None) -> None:
        """Print ``data`` as one JSON document (``--json``) or through ``human`` for people."""
        if self.json:
            click.echo(json.dumps(data, indent=2, default=_json_default))
        elif human is not None:
            human(self.console)
        else:
            self.console.print(data)


def _json_default(value: Any) -> Any:
    import datetime as dt
    from decimal import Decimal

    if isinstance(value, dt.datetime):
        return isoformat(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


pass_ctx = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    "db",
    metavar="URL",
    envvar="SEATGATE_DATABASE_URL",
    help="Database URL (default sqlite:///seatgate.db; postgresql://... for PostgreSQL).",
)
@click.option(
    "--as-of",
    "as_of",
    metavar="DATETIME",
    envvar="SEATGATE_NOW",
    help="Run every rule as of this instant (ISO-8601; default: now).",
)
@click.option(
    "--actor",
    metavar="EMAIL",
    envvar="SEATGATE_ACTOR",
    help="Who is acting (needs install or manage for purchases and seats).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.option(
    "--policy",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="SEATGATE_POLICY",
    help="Enforcement timeline file (default: the built-in one).",
)
@click.version_option(package_name="seatgate")
@click.pass_context
def main_group(
    ctx: click.Context,
    db: str | None,
    as_of: str | None,
    actor: str | None,
    as_json: bool,
    policy: Path | None,
) -> None:
    """seatgate: licensed seats, enforcement timeline, billing and user sync for CRM integrations."""
    ctx.obj = Context(db, as_of, actor, as_json, policy)
    ctx.call_on_close(ctx.obj.close)


for _name in COMMAND_MODULES:
    importlib.import_module(f"{__name__}.{_name}").register(main_group)


def fail(
    message: str, code: str, exit_code: int, as_json: bool, extra: dict[str, Any] | None = None
) -> NoReturn:
    if as_json:
        click.echo(
            json.dumps(
                {"error": message, "code": code, **(extra or {})}, indent=2, default=_json_default
            )
        )
    else:
        click.echo(f"error: {message}", err=True)
    sys.exit(exit_code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: click parses; every error becomes one line (or one JSON document)."""
    args = sys.argv[1:] if argv is None else argv
    as_json = (
        "--json" in args[: _first_command_index(args)] or os.environ.get("SEATGATE_JSON") == "1"
    )
    try:
        main_group.main(args=args, prog_name="seatgate", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        fail("aborted", "aborted", 1, as_json)
    except click.ClickException as exc:
        fail(exc.format_message().replace("\n", " "), "bad_input", 2, as_json)
    except SeatgateError as exc:
        extra = getattr(exc, "json_extra", None)
        fail(str(exc), exc.code, exc.exit_code, as_json, extra)


def _first_command_index(args: list[str]) -> int:
    names = set(main_group.commands)
    for i, arg in enumerate(args):
        if arg in names:
            return i
    return len(args)
