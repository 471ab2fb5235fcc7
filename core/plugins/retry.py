"""Retries for calls to a CRM: tenacity, honouring Retry-After, one token refresh, no hot retries
on a spent quota.

Adapters wrap each HTTP request in :meth:`RequestContext.call`; the function they pass raises the
core's :mod:`errors <seatgate.core.errors>` (the adapter translates its client library's exceptions).
Sleeping goes through ``policy.sleep`` so tests move time without waiting for it.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import time
from collections.abc import Callable
from typing import TypeVar

import attrs
import tenacity

from ..errors import AuthFailed, RateLimited, TokenExpired, TransientError
from .throttle import HeldBack

T = TypeVar("T")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from an HTTP ``Retry-After`` header: delta-seconds or an HTTP-date (RFC
    9110 §10.2.3). None when absent or unreadable, so the policy's backoff applies instead."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    # The vendor's date against the real clock: this is network time, not a business rule.
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


@attrs.define
class RetryPolicy:
    """How hard to try. ``sleep`` is injectable; tests pass a recorder instead of time.sleep."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 60.0
    # A vendor asking for more than this is treated like a spent quota: end the run, come back later.
    max_retry_after: float = 300.0
    sleep: Callable[[float], None] = time.sleep


@attrs.define
class RequestContext:
    """Counts requests and retries of one sync run and runs each request under the retry policy.

    ``requests`` counts the requests sent: one the shared throttle held back (:mod:`.throttle`)
    is not one, though waiting it out counts as a retry."""

    policy: RetryPolicy = attrs.field(factory=RetryPolicy)
    requests: int = 0
    retries: int = 0
    refreshes: int = 0

    def call(self, fn: Callable[[], T], *, refresh: Callable[[], None] | None = None) -> T:
        """Run ``fn`` (one request) with retries.

        - :class:`RateLimited` waits ``retry_after`` when given, else backs off exponentially;
        - :class:`TransientError` backs off exponentially;
        - :class:`TokenExpired` calls ``refresh`` once and tries again; a second expiry is
          :class:`AuthFailed`;
        - anything else (AuthFailed, QuotaExhausted, MalformedResponse...) propagates at once.
        """
        refreshed = False
        policy = self.policy
        backoff = tenacity.wait_exponential(multiplier=policy.base_delay, max=policy.max_delay)

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, RateLimited) and exc.retry_after is not None:
                return float(exc.retry_after)
            return float(backoff(state))

        def before_sleep(state: tenacity.RetryCallState) -> None:
            self.retries += 1

        def send() -> T:
            self.requests += 1
            try:
                return fn()
            except HeldBack:
                # The shared throttle kept it back: nothing reached the CRM.
                self.requests -= 1
                raise

        def attempt() -> T:
            nonlocal refreshed
            try:
                return send()
            except TokenExpired:
                if refresh is None or refreshed:
                    raise AuthFailed("the CRM rejected the session again after a refresh") from None
                refreshed = True
                self.refreshes += 1
                refresh()
                try:
                    return send()
                except TokenExpired:
                    raise AuthFailed("the CRM rejected the new session too") from None

        def too_long(exc: BaseException) -> bool:
            return isinstance(exc, RateLimited) and (exc.retry_after or 0) > policy.max_retry_after

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(
                lambda e: isinstance(e, RateLimited | TransientError) and not too_long(e)
            ),
            wait=wait,
            stop=tenacity.stop_after_attempt(policy.attempts),
            sleep=policy.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(attempt)
