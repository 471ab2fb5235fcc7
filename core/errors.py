"""The one exception tree of seatgate.

    SeatgateError                  anything seatgate raises on purpose
    ├── BadInput                   a value the user gave is not accepted (CLI exit 2, nothing written)
    ├── NotFound                   an account, user, contract or adapter that does not exist (exit 2)
    ├── NotAuthorized              the actor lacks the permission the action needs
    ├── Conflict                   the action contradicts the current state (e.g. idempotency key reuse)
    ├── PolicyError                a policy (timeline) or catalog file is invalid
    ├── DatabaseUnusable           the database is not there, not writable or not seatgate's (exit 2)
    │   └── DatabaseBusy           another writer held it past the bounded wait (exit 75: try again)
    └── AdapterError               talking to a CRM failed; carries no secret, ever
        ├── AuthFailed             credentials refused: no retry
        ├── TokenExpired           the session/token expired: refresh once, then AuthFailed
        ├── RateLimited            throttled; ``retry_after`` seconds if the vendor said so
        ├── QuotaExhausted         a daily/long quota is spent: end the run, no hot retries
        ├── TransientError         5xx, timeouts, connection resets: retried with backoff
        └── MalformedResponse      the CRM answered something we cannot parse: fail the run cleanly

Messages are one line and say what was wrong and what is accepted, because the CLI prints them as
they are. They never name a command or a flag: an error carries the ``field`` it is about and a
``remedy`` code (with the ``context`` the remedy needs, e.g. the account and product), and each
entrypoint renders the remedy in its own words (the CLI as a command to run, the HTTP API as a
``problem+json`` member).
"""

from __future__ import annotations

from collections.abc import Iterable


class SeatgateError(Exception):
    """Base of every error seatgate raises on purpose.

    :param field: the input the error is about (``--seats`` is the CLI's rendering of ``seats``).
    :param remedy: a code naming what to do next (``create_account``, ``grant_permission``...).
    :param context: values the remedy refers to (``account``, ``product``...).
    """

    exit_code = 1
    code = "error"
    field: str | None = None
    remedy: str | None = None
    context: dict[str, object]

    def __init__(
        self,
        *args: object,
        field: str | None = None,
        remedy: str | None = None,
        context: dict[str, object] | None = None,
    ) -> None:
        super().__init__(*args)
        if field is not None:
            self.field = field
        if remedy is not None:
            self.remedy = remedy
        self.context = dict(context or {})


class BadInput(SeatgateError):
    """A value given by the user is not accepted."""

    exit_code = 2
    code = "bad_input"

    def __init__(
        self,
        what: str,
        value: object,
        accepted: str | Iterable[str],
        *,
        remedy: str | None = None,
        context: dict[str, object] | None = None,
        message: str | None = None,
    ) -> None:
        """``message``: the whole line instead of :meth:`line`'s "bad WHAT VALUE: expected
        ACCEPTED" (or "missing WHAT: expected ACCEPTED" where ``value`` is None)."""
        if not isinstance(accepted, str):
            accepted = "one of " + ", ".join(str(a) for a in accepted)
        self.what = what
        self.value = value
        self.accepted = accepted
        self.worded = message is not None  # the line is the message: edges keep it as it is
        super().__init__(
            message or self.line(what),
            field=what,
            remedy=remedy,
            context=context,
        )

    def line(self, name: str) -> str:
        """The one line, the value named ``name`` (an entrypoint's own name for it, such as a
        flag): a value that is missing is said to be missing, not shown as ``None``."""
        if self.value is None:
            return f"missing {name}: expected {self.accepted}"
        return f"bad {name} {self.value!r}: expected {self.accepted}"


class NotFound(SeatgateError):
    """Something named by the user does not exist."""

    exit_code = 2
    code = "not_found"

    def __init__(
        self,
        what: str,
        value: object,
        hint: str = "",
        *,
        remedy: str | None = None,
        context: dict[str, object] | None = None,
    ) -> None:
        self.what = what
        self.value = value
        msg = f"unknown {what} {value!r}"
        super().__init__(
            f"{msg}: {hint}" if hint else msg, field=what, remedy=remedy, context=context
        )


class NotAuthorized(SeatgateError):
    """The actor does not hold a permission the action needs.

    ``audit_entry`` is the audit row recording the refusal; whoever rolls back the refused action
    writes it in a transaction of its own (see ``App.write``).
    """

    exit_code = 2
    code = "not_authorized"

    def __init__(
        self,
        message: str,
        audit_entry: dict[str, object] | None = None,
        *,
        field: str | None = None,
        remedy: str | None = None,
        context: dict[str, object] | None = None,
    ) -> None:
        self.audit_entry = audit_entry
        super().__init__(message, field=field, remedy=remedy, context=context)


class Conflict(SeatgateError):
    """The action contradicts the current state."""

    exit_code = 2
    code = "conflict"


class PolicyError(SeatgateError):
    """A policy or catalog data file is invalid."""

    exit_code = 2
    code = "bad_policy"


class DatabaseUnusable(SeatgateError):
    """The database cannot be used as it is: the server is not reachable, the database or its
    directory does not exist, it is not writable, or it is not seatgate's. The message names the
    database with its password masked; ``remedy`` says what to do."""

    exit_code = 2
    code = "database"


class DatabaseBusy(DatabaseUnusable):
    """Another writer held the database longer than the bounded wait (``SEATGATE_BUSY_TIMEOUT``
    seconds). Exit 75 (``EX_TEMPFAIL`` of sysexits.h): nothing was written; try again."""

    exit_code = 75
    code = "database_busy"


class AdapterError(SeatgateError):
    """Talking to a CRM failed. Messages never contain a credential."""

    code = "adapter_error"
    retryable = False


class AuthFailed(AdapterError):
    code = "auth_failed"


class TokenExpired(AdapterError):
    code = "token_expired"


class RateLimited(AdapterError):
    code = "rate_limited"
    retryable = True

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class QuotaExhausted(AdapterError):
    code = "quota_exhausted"


class TransientError(AdapterError):
    code = "transient"
    retryable = True


class MalformedResponse(AdapterError):
    code = "malformed_response"
