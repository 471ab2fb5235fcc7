"""Whether this process was asked to stop (SIGTERM, Ctrl-C), and which exceptions are that stop,
for the code that says how something ended.

The CLI's handlers (:func:`seatgate.core.entrypoints.cli.stop_on_sigterm`) raise ``SystemExit``
(``KeyboardInterrupt`` for Ctrl-C) in the main thread wherever that thread is, possibly inside a
database driver's call (the pool's pre-ping, a cursor's execute). What comes out may then be
another exception, raised while the first unwound: about one SIGTERM in eight sent during
PostgreSQL calls came out as SQLAlchemy's wrapper of psycopg's ``ProgrammingError`` ("can't change
'autocommit' now: connection in transaction status ACTIVE", from the rollback on the connection
the signal broke; measured with psycopg 3.3). Code that records how a run ended, or maps an
exception to an exit code, asks :func:`claim` (or runs in :func:`claiming`) whether an exception
is the stop: it is when the stop's own exception — one a handler raised — is in its
``__cause__``/``__context__`` chain. Python chains an exception raised while another is handled
(an ``except`` or ``finally`` clause, a context manager's exit) to it, so every exception raised
while the stop unwinds is linked to it, and one that is not was raised after the stop's exception
was swallowed somewhere (a finalizer's "Exception ignored in ...", a library's ``except
BaseException``): it is a failure of its own, to report, not a silent exit. (Any exception after a
request had been taken for the stop: a swallowed stop turned every later error into a silent exit
143, and made every later SIGTERM do nothing.)

The handlers ask :func:`in_progress` before they raise: a second SIGTERM while one of the stop's
exceptions is being handled (the run's record being written) does nothing, since raising there
would cut that record short; a SIGTERM when nothing of an earlier stop is unwinding any more (it
was swallowed) stops the process again. A stop swallowed by a finalizer is reported by
``sys.unraisablehook`` (:func:`swallowed`), and the CLI sends the signal again.

This module imports nothing of seatgate's: the services, the storage and the entrypoints may all
read it.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

__all__ = [
    "claim",
    "claiming",
    "exit_status",
    "in_progress",
    "request",
    "requested",
    "reset",
    "swallowed",
]

# The exit status of the stop asked for (128 + the signal), None when none was or it is over.
_status: int | None = None
# The exceptions the handlers raised for it.
_exceptions: list[BaseException] = []


def request(status: int, raised: BaseException) -> bool:
    """Note that the process is asked to stop with ``status``; ``raised``: the exception the
    handler raises for it. Returns True for a new stop (replacing an earlier one, which was
    swallowed), False when a stop is in progress (:func:`in_progress`): its status stands, and
    ``raised`` is noted as one of its exceptions."""
    global _status
    if in_progress():
        _exceptions.append(raised)
        return False
    _status = status
    _exceptions[:] = [raised]
    return True


def requested() -> bool:
    """Whether a stop was requested and is not known to be over."""
    return _status is not None


def exit_status() -> int | None:
    """The status the requested stop exits with (143 for SIGTERM), None when none was."""
    return _status


def _linked(exc: BaseException) -> bool:
    """Whether one of the stop's exceptions is ``exc`` or in its cause/context chain."""
    todo, seen = [exc], set()
    while todo:
        at = todo.pop()
        if id(at) in seen:
            continue
        seen.add(id(at))
        if any(at is own for own in _exceptions):
            return True
        todo.extend(e for e in (at.__cause__, at.__context__) if e is not None)
    return False


def in_progress() -> bool:
    """Whether a stop is unwinding in this thread: the exception being handled is linked to it."""
    if _status is None:
        return False
    handled = sys.exc_info()[1]
    return handled is not None and _linked(handled)


def claim(exc: BaseException) -> SystemExit | None:
    """The ``SystemExit`` to raise in place of ``exc`` when ``exc`` is the stop (the stop's
    exception is in its chain), so that the process still exits with the stop's status and no
    traceback; None when it is not (no stop requested, or ``exc`` a failure of its own)."""
    if _status is None or not _linked(exc):
        return None
    return SystemExit(_status)


@contextlib.contextmanager
def claiming() -> Iterator[None]:
    """Raise the stop's ``SystemExit`` in place of an exception raised inside that is the stop
    (:func:`claim`), chained to it; let any other exception through as it is."""
    try:
        yield
    except Exception as exc:
        stop = claim(exc)
        if stop is None:
            raise
        raise stop from exc


def swallowed(exc: BaseException | None) -> bool:
    """For ``sys.unraisablehook``: ``exc`` could not be raised (a finalizer's). When it is linked
    to the stop — the signal landed in a finalizer — the stop is over and forgotten. Returns
    whether it was. Not while the stop is still being handled (:func:`in_progress`): a finalizer
    that fails then has its own exception chained to the stop by Python, and the stop goes on."""
    if exc is None or _status is None or in_progress() or not _linked(exc):
        return False
    reset()
    return True


def reset() -> None:
    """Forget the request: for a program (a test) that runs commands in process after a stop."""
    global _status
    _status = None
    _exceptions.clear()
