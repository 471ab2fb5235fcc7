"""The ``seatgate`` command line.

Global options come before the command: ``seatgate --db URL --as-of 2026-03-16T12:00:00Z --json
check ...``. With ``--json`` (before the command, or a command's own ``--json``) stdout carries
exactly one JSON document, errors included: ``{"error": {"code", "message", "field"?,
"remedy"?}}``. Exit codes: 0 done (or allowed), 1 done with refusals (or denied), 2 bad input /
not found / not authorized / a database that cannot be used, 75 the database stayed busy (another
writer held it past ``SEATGATE_BUSY_TIMEOUT``: nothing written, try again), 70 an internal error
(a bug: one line all the same; ``SEATGATE_DEBUG=1`` shows the traceback).

Each command group lives in one module of this package, which defines it and its
``register(main)``; :data:`COMMANDS` names the module of each top-level command, and a module is
imported only when one of its commands is looked up (``seatgate check`` imports the seats module
alone; ``--help`` lists them all). Modules import the services lazily, inside their commands, so
``seatgate --help`` loads neither the database layer nor any CRM client.

The services speak of fields and remedy codes; this module renders them for a shell: a field as the
command's flag (``quantity`` -> ``--quantity``), a remedy as the command to run (:data:`REMEDIES`).
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

import click

from ...clock import FixedClock, SystemClock, isoformat
from ...errors import BadInput, SeatgateError

# Imported here, not in the handler: an import inside a signal handler can meet the import
# lock of a module the interrupted main thread is importing. The module imports nothing.
from ...services import stopping
from . import params

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from ...bootstrap import App

# The module of this package that defines each top-level command (its ``register(main)`` adds it).
COMMANDS: dict[str, str] = {
    "db": "db",
    "account": "accounts",
    "commitments": "accounts",
    "contract": "accounts",
    "users": "accounts",
    "check": "seats",
    "seats": "seats",
    "adapters": "adapters",
    "install": "adapters",
    "new-adapter": "adapters",
    "sandbox": "adapters",
    "billing": "billing",
    "catalog": "billing",
    "plan": "billing",
    "ticket": "billing",
    "uninstall": "billing",
    "agents": "sync",
    "quarantine": "sync",
    "runs": "sync",
    "sync": "sync",
    "demo": "demo",
    "serve": "api",
    "token": "api",
    "addon": "orders",
    "install-link": "orders",
    "webhook": "orders",
    "beat": "fleet",
    "fleet": "fleet",
    "worker": "fleet",
}
COMMAND_MODULES: tuple[str, ...] = tuple(dict.fromkeys(COMMANDS.values()))

# What to do next, per remedy code of an error (seatgate.core.errors), as a shell command.
REMEDIES: dict[str, str] = {
    "create_account": "create it with `seatgate account create {account} --region REGION`",
    "grant_permission": (
        "an admin can grant it with `seatgate account grant {account} EMAIL --permission manage`"
    ),
    "name_actor": "give --actor EMAIL or set SEATGATE_ACTOR",
    "create_contract": "create one with `seatgate contract create {account} {product} ...`",
    "install": "install it with `seatgate install {account} {product} --config FILE`",
    "enable": "enable it with `seatgate adapters enable {account} {product}`",
    "uninstall": "uninstall it first: `seatgate uninstall {account} {product}`",
    "renewal_adjustment_ticket": (
        "`seatgate ticket open {account} {product} --kind renewal_adjustment`"
    ),
    "billing_cancellation_ticket": (
        "`seatgate ticket open {account} {product} --kind billing_cancellation`"
    ),
    "force": "check the CRM, then rerun with --force to proceed",
    "wait": "wait for that run to end (or its lease to expire), then run the sync again",
    "rerun": "run the sync again",
    "confirm": "add --yes to buy",
    # The database (seatgate.core.storage.db): what to do when it cannot be used.
    "start_database": "check that the server runs and that --db (or SEATGATE_DATABASE_URL) names it",
    "create_database": "create it (`createdb {name}`) or give --db another database",
    "database_credentials": "fix the user or password in --db (or SEATGATE_DATABASE_URL)",
    "database_path": "give --db sqlite:///PATH, a file in a directory that exists",
    "writable_database": (
        "make the file and its directory writable by this user, or give --db another database"
    ),
    "other_database": "give --db a new file or a seatgate database",
    "retry_busy": "try again when the other writer is done (SEATGATE_BUSY_TIMEOUT sets the wait)",
    "plan_not_listed": (
        "if you can't find the base plan you contracted, contact Talkdesk Support via "
        "Technical and Product Support > AppConnect > App Install/Uninstall"
    ),
    # Issue 18: install links, add-ons, webhooks.
    "new_install_link": (
        "ask for a new link: `seatgate install-link create {account} {product} --email ADMIN`"
    ),
    "add_users": "add the intended users: `seatgate seats assign {account} {product} EMAIL...`",
    "set_secret_key": (
        "set SEATGATE_SECRET_KEY to a random secret of 32+ characters (the same on every server)"
    ),
    "partner_activates": (
        "the partner activates it: `seatgate addon activate {account} {product} ADDON "
        "--partner {partner}`"
    ),
    "self_serve_purchase": (
        "name the plan and user count to buy it self-serve: "
        "`seatgate install {account} {product} --config FILE --plan PLAN --users N`"
    ),
}

F = TypeVar("F", bound=Callable[..., Any])

INTERNAL_ERROR = 70  # EX_SOFTWARE of sysexits.h: seatgate itself failed (a bug), not the input

_UNBOUNDED = 100_000  # columns of a console that is not a terminal: tables are never cut


def table(*headers: str, title: str | None = None) -> Table:
    """A table whose cells wrap (``fold``) on a terminal instead of being cut to ``accou…``."""
    from rich.table import Table

    made = Table(title=title)
    for header in headers:
        made.add_column(header, overflow="fold")
    return made


def plural(count: int, noun: str) -> str:
    """``1 seat``, ``2 seats``, ``0 retries``: a count with its noun agreeing."""
    if count == 1:
        return f"{count} {noun}"
    if noun.endswith("y") and noun[-2:-1] not in tuple("aeiou"):
        return f"{count} {noun[:-1]}ies"
    return f"{count} {noun}s"


def remedy_text(code: str | None, context: dict[str, object]) -> str:
    """The shell rendering of a remedy code ("" for none or an unknown one)."""
    if not code or code not in REMEDIES:
        return ""
    values = {"account": "ACCOUNT", "product": "PRODUCT", **context}
    return REMEDIES[code].format(**values)


class Context:
    """What every command gets: the options, the App (built on first use), and output helpers."""

    def __init__(
        self,
        db: str | None,
        as_of: dt.datetime | None,
        actor: str | None,
        as_json: bool,
        policy: Path | None,
    ) -> None:
        self.db_url = db
        self.clock = FixedClock(as_of) if as_of is not None else SystemClock()
        self.actor = actor
        self.json = as_json
        self.policy = policy
        self.command: click.Command | None = None
        self._app: App | None = None
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        """Rich output. On a terminal (or with ``COLUMNS`` set) tables fit its width, wrapping
        long values; anywhere else (a pipe, a log) nothing is cut or wrapped: every value is
        printed whole."""
        if self._console is None:
            from rich.console import Console

            console = Console(stderr=False, highlight=False, soft_wrap=True)
            if not console.is_terminal and not os.environ.get("COLUMNS"):
                console = Console(stderr=False, highlight=False, soft_wrap=True, width=_UNBOUNDED)
            self._console = console
        return self._console

    def close(self) -> None:
        """Flush buffered audit rows and close the database (the CLI can run in process)."""
        if self._app is not None:
            self._app.close()

    @property
    def app(self) -> App:
        if self._app is None:
            from ...bootstrap import App

            self._app = App(self.db_url, clock=self.clock, policy_file=self.policy)
        return self._app

    def emit(self, data: Any, human: Callable[[Console], None] | None = None) -> None:
        """Print ``data`` as one JSON document (``--json``) or through ``human`` for people."""
        if self.json:
            click.echo(json.dumps(data, indent=2, default=json_default))
        elif human is not None:
            human(self.console)
        else:
            self.console.print(data)


def json_default(value: Any) -> Any:
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


# The Context of the command being run, for rendering its errors (set by pass_ctx).
_current: list[Context] = []


def pass_ctx(f: F) -> F:
    """Pass the :class:`Context` as the first argument, and note which command runs (its flags
    name the fields of its errors)."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        cctx = click.get_current_context()
        obj = cctx.find_object(Context)
        assert obj is not None
        obj.command = cctx.command
        return f(obj, *args, **kwargs)

    return cast(F, wrapper)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    "db",
    type=params.URL,
    metavar="URL",
    envvar="SEATGATE_DATABASE_URL",
    help="Database URL (default sqlite:///seatgate.db; postgresql://... for PostgreSQL).",
)
@click.option(
    "--as-of",
    "as_of",
    type=params.INSTANT,
    metavar="DATETIME",
    envvar="SEATGATE_NOW",
    help="Run every rule as of this instant (ISO-8601, 2000-01-01 to 2099-12-31; default: now).",
)
@click.option(
    "--actor",
    type=params.EMAIL,
    metavar="EMAIL",
    envvar="SEATGATE_ACTOR",
    help="Who is acting (needs install or manage for purchases and seats).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.option(
    "--policy",
    type=params.FilePath(),
    envvar="SEATGATE_POLICY",
    help="Enforcement timeline file (default: the built-in one).",
)
@click.version_option(package_name="seatgate")
@click.pass_context
def main_group(
    ctx: click.Context,
    db: str | None,
    as_of: dt.datetime | None,
    actor: str | None,
    as_json: bool,
    policy: Path | None,
) -> None:
    """seatgate: licensed seats, enforcement timeline, billing and user sync for CRM integrations."""
    ctx.obj = Context(db, as_of, actor, as_json, policy)
    _current[:] = [ctx.obj]
    ctx.call_on_close(ctx.obj.close)


class _LazyCommands(MutableMapping[str, click.Command]):
    """The top-level commands, each module imported when one of its commands is first looked up
    (issue 10: ``seatgate check`` pays for one module, not ten). Iterating loads them all."""

    def __init__(self, group: click.Group) -> None:
        self._group = group
        self._loaded: dict[str, click.Command] = {}
        self._pending = set(COMMAND_MODULES)

    def _load(self, module: str) -> None:
        if module in self._pending:
            self._pending.discard(module)
            importlib.import_module(f"{__name__}.{module}").register(self._group)

    def _load_all(self) -> None:
        for module in COMMAND_MODULES:
            self._load(module)

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._loaded and name in COMMANDS:
            self._load(COMMANDS[name])
        return self._loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        self._load_all()
        del self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        self._load_all()
        return iter(dict(self._loaded))

    def __len__(self) -> int:
        self._load_all()
        return len(self._loaded)


main_group.commands = _LazyCommands(main_group)


def _flag(command: click.Command | None, field: str | None) -> str | None:
    """The command's option for an error's field (``idempotency key`` -> ``--idempotency-key``)."""
    if command is None or not field:
        return None
    wanted = "--" + field.strip().replace(" ", "-").replace("_", "-")
    for param in command.params:
        if isinstance(param, click.Option) and wanted in param.opts:
            return wanted
    return None


def render(exc: SeatgateError, command: click.Command | None) -> str:
    """One line for a person: the message, a field named as the command's flag, the remedy."""
    message = str(exc)
    flag = _flag(command, exc.field)
    if isinstance(exc, BadInput) and flag and not exc.worded:
        message = exc.line(flag)
    hint = remedy_text(exc.remedy, exc.context)
    if hint:
        message = f"{message}; {hint}"
    return message.replace("\n", " ")


def fail(
    message: str,
    code: str,
    exit_code: int,
    as_json: bool,
    extra: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
) -> NoReturn:
    if as_json:
        document = {"error": {"code": code, "message": message, **(error or {})}, **(extra or {})}
        click.echo(json.dumps(document, indent=2, default=json_default))
    else:
        click.echo(f"error: {message}", err=True)
    sys.exit(exit_code)


def stop_on_sigterm() -> Callable[[], None]:
    """Make SIGTERM (a supervisor's stop, ``kill``, systemd, a container's end) stop a command as
    Ctrl-C does: the exception unwinds it, so a write transaction rolls back and a sync records
    its run ``interrupted`` and gives its lease back (the next run neither waits for the lease to
    expire nor is skipped); the process exits 143 (128 + SIGTERM). ``seatgate serve`` replaces it
    with uvicorn's own (a graceful shutdown). Returns what puts back the handlers it replaced.

    Ctrl-C (SIGINT) still raises ``KeyboardInterrupt``, and is noted as a stop as well. The stop
    and the exception raised for it are noted (:mod:`seatgate.core.services.stopping`) before it
    is raised: raised inside a database driver's call, it can come out as the driver's error,
    which is then taken for the stop all the same (:func:`main`, the sync's record of its run).
    A second SIGTERM while the first one unwinds does nothing: raised again, it would cut short
    the run's record. One that lands in a finalizer is swallowed by Python ("Exception ignored
    in ..."): the stop is then over (a later error is an error, not the stop) and the signal is
    sent again, to land once the finalizer has returned."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    term = signal.signal(signal.SIGTERM, _terminated)
    interrupt = signal.signal(signal.SIGINT, _interrupted)
    hook = sys.unraisablehook

    def unraisable(unraisable: Any) -> None:
        status = stopping.exit_status()
        if stopping.swallowed(unraisable.exc_value) and status is not None:
            # From a thread: sent from here it would be handled in this hook, and swallowed.
            again = threading.Timer(0.01, os.kill, (os.getpid(), status - 128))
            again.daemon = True
            again.start()
        hook(unraisable)

    sys.unraisablehook = unraisable

    def restore() -> None:
        signal.signal(signal.SIGTERM, term)
        signal.signal(signal.SIGINT, interrupt)
        sys.unraisablehook = hook

    return restore


def _terminated(signum: int, _frame: object) -> None:
    stop = SystemExit(128 + signum)
    if stopping.request(128 + signum, stop):
        raise stop


def _interrupted(signum: int, _frame: object) -> None:
    """Ctrl-C as Python's own handler does it (``KeyboardInterrupt``, every time it is pressed),
    the stop noted first: raised inside a driver's call, the driver's error that comes out in its
    place is the stop too (exit 130), not a failed run and an internal error."""
    interrupt = KeyboardInterrupt()
    stopping.request(128 + signum, interrupt)
    raise interrupt


def main(argv: list[str] | None = None) -> None:
    """Entry point: click parses; every error becomes one line (or one JSON document)."""
    restore = stop_on_sigterm()
    try:
        _main(argv)
    finally:
        # The command is over, stopped or not: nothing is left for the handlers to unwind (a
        # signal during the interpreter's shutdown acts as it would have before; a program that
        # runs commands in process gets its own handlers back).
        restore()


def _main(argv: list[str] | None) -> None:
    args = sys.argv[1:] if argv is None else argv
    as_json = "--json" in args or os.environ.get("SEATGATE_JSON") == "1"
    _current.clear()
    try:
        _run_stoppable(args)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        fail("aborted", "aborted", 1, as_json)
    except click.ClickException as exc:
        fail(exc.format_message().replace("\n", " "), "bad_input", 2, as_json)
    except SeatgateError as exc:
        command = _current[0].command if _current else None
        extra = getattr(exc, "json_extra", None)
        error: dict[str, Any] = {}
        flag = _flag(command, exc.field)
        if exc.field:
            error["field"] = flag or exc.field
        if exc.remedy:
            error["remedy"] = exc.remedy
        fail(render(exc, command), exc.code, exc.exit_code, as_json, extra, error)
    except Exception as exc:  # a bug: still one line (SEATGATE_DEBUG=1 shows the traceback)
        if os.environ.get("SEATGATE_DEBUG") == "1":
            raise
        from ...plugins.config import mask_secrets

        detail = mask_secrets(f"{type(exc).__name__}: {exc}").replace("\n", " ")[:300]
        fail(
            f"internal error ({detail}); this is a bug: SEATGATE_DEBUG=1 shows where",
            "internal",
            INTERNAL_ERROR,
            as_json,
        )


def _run_stoppable(args: list[str]) -> None:
    """Run the command. Raises ``SystemExit`` with the stop's status (143 for SIGTERM) in place
    of an exception that is the stop (:func:`stopping.claim`): the signal's ``SystemExit`` broke a
    database call and the driver's error (psycopg's ``ProgrammingError``...) came out instead. It
    is no failure of the command to report, and no internal error: exit as the stop, silently."""
    with stopping.claiming():
        main_group.main(args=args, prog_name="seatgate", standalone_mode=False)
