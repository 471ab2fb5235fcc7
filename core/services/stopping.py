"""Whether this process was asked to stop (SIGTERM), for the code that says how something ended.

The CLI's SIGTERM handler (:func:`seatgate.core.entrypoints.cli.stop_on_sigterm`) raises
``SystemExit`` in the main thread wherever that thread is, possibly inside a database driver's
call (the pool's pre-ping, a cursor's execute). The exception then breaks the driver's or
SQLAlchemy's state half-way, and what comes out may be another exception raised while unwinding (a
psycopg ``ProgrammingError``, an ``AssertionError`` of SQLAlchemy's transaction bookkeeping)
instead of the ``SystemExit``. Code that records how a run ended, or maps an exception to an exit
code, asks :func:`requested` first: an exception raised once a stop was requested is the stop,
not a failure.

The handler notes the request here before it raises, so the note is there whichever exception
reaches the caller. This module imports nothing: the services, the storage and the entrypoints
may all read it.
"""

from __future__ import annotations

__all__ = ["exit_status", "request", "requested", "reset", "stop"]

# The exit status of the stop asked for (128 + the signal), None when none was.
_status: int | None = None


def request(status: int) -> bool:
    """Note that the process was asked to stop, to exit with ``status``. Returns True for the
    first request, False when a stop was already requested (the first one's status stands)."""
    global _status
    if _status is not None:
        return False
    _status = status
    return True


def requested() -> bool:
    """Whether a stop was requested: any exception raised since is taken for the stop."""
    return _status is not None


def exit_status() -> int | None:
    """The status the requested stop exits with (143 for SIGTERM), None when none was."""
    return _status


def stop() -> SystemExit:
    """The ``SystemExit`` to raise in place of an exception the requested stop caused, so the
    process still exits with the stop's status and no traceback. Raises :class:`RuntimeError`
    when no stop was requested (a caller's bug: the exception was a real failure)."""
    if _status is None:
        raise RuntimeError("no stop was requested")
    return SystemExit(_status)


def reset() -> None:
    """Forget the request: for a program (a test) that runs commands in process after a stop."""
    global _status
    _status = None
