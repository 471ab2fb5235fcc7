"""A Salesforce query locator lost during a pull (issue 12): bound to the session that opened it and
asked again after a re-login, or expired. The pull asks its query again from the last record read,
counts one retry, and returns every user once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seatgate.adapters.salesforce import plugin
from seatgate.adapters.salesforce.adapter import CONFIG_SCHEMA
from seatgate.adapters.salesforce.sandbox import SalesforceSandbox
from seatgate.core.errors import AdapterError, AuthFailed
from seatgate.core.plugins import ExternalUser, RequestContext, Response, RetryPolicy, UserPage


@pytest.fixture
def ctx() -> RequestContext:
    return RequestContext(RetryPolicy(attempts=4, sleep=lambda seconds: None))


@pytest.fixture
def sandbox() -> Iterator[SalesforceSandbox]:
    with SalesforceSandbox(30) as sb:
        sb.page_size = 7
        yield sb


def _pages(sb: SalesforceSandbox, ctx: RequestContext, **extra: Any) -> Iterator[UserPage]:
    conf = CONFIG_SCHEMA.validate(sb.settings(**extra), resolve_env=False)
    return plugin.seatgate_pull_users(product="salesforce", settings=conf, since=None, ctx=ctx)


def _ids(users: list[ExternalUser]) -> list[str]:
    return [u.external_id for u in users]


def test_a_locator_bound_to_an_expired_session_is_asked_again_after_the_relogin(
    sandbox: SalesforceSandbox, ctx: RequestContext
) -> None:
    sandbox.bind_locators = True
    pages = _pages(sandbox, ctx)
    users = list(next(pages).users)
    sandbox.inject("expired_token")  # the session ends: its locator goes with it
    users += [u for page in pages for u in page.users]
    assert _ids(users) == [u.id for u in sandbox.store.users]  # each once, in the query's order
    assert sandbox.logins == 2 and ctx.refreshes == 1
    assert ctx.retries == 1  # the query asked again counts as a retry


def test_without_bound_locators_a_relogin_goes_on_with_the_same_locator(
    sandbox: SalesforceSandbox, ctx: RequestContext
) -> None:
    pages = _pages(sandbox, ctx)
    users = list(next(pages).users)
    sandbox.inject("expired_token")
    users += [u for page in pages for u in page.users]
    assert _ids(users) == [u.id for u in sandbox.store.users]
    assert ctx.refreshes == 1 and ctx.retries == 0


def test_users_changed_before_the_query_is_asked_again_come_once_each(
    sandbox: SalesforceSandbox, ctx: RequestContext
) -> None:
    pages = _pages(sandbox, ctx)
    first = list(next(pages).users)
    by_n = sandbox.store.by_number
    read, unread = by_n[2], by_n[25]
    sandbox.store.change([read.number, unread.number])  # both move to the end of the order
    sandbox.lose_locators()
    rest = [u for page in pages for u in page.users]
    users = first + rest
    assert sorted(_ids(users)) == sorted(u.id for u in sandbox.store.users)
    assert len(set(_ids(users))) == 30 and ctx.retries == 1
    # The one read before keeps the version read; the one not read yet comes as it is now.
    [again] = [u for u in rest if u.external_id == unread.id]
    assert again.modified_at == unread.modified_at
    assert read.id not in _ids(rest)


class ForgetfulOrg(SalesforceSandbox):
    """An org that knows no query locator at all: every ``query_more`` is lost."""

    def _query_more(self, ident: str, session: str) -> Response:
        self.lose_locators()
        return super()._query_more(ident, session)


def test_a_locator_lost_again_before_a_new_record_stops_the_pull(ctx: RequestContext) -> None:
    with ForgetfulOrg(5, auth="session") as sb:
        sb.page_size = 1
        with pytest.raises(AdapterError) as raised:
            list(_pages(sb, ctx))
    # Asked again once; the query asked again brought back only the record already read.
    assert ctx.retries == 1 and "locator" in str(raised.value) and "\n" not in str(raised.value)


def test_a_session_id_that_expires_is_still_auth_failed(
    sandbox: SalesforceSandbox, ctx: RequestContext
) -> None:
    sandbox.bind_locators = True
    pages = _pages(sandbox, ctx, auth="session")
    next(pages)
    sandbox.inject("expired_token")
    with pytest.raises(AuthFailed):
        list(pages)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    users=st.integers(min_value=1, max_value=40),
    page=st.integers(min_value=1, max_value=9),
    lose_after=st.integers(min_value=0, max_value=8),
    changed=st.sets(st.integers(min_value=1, max_value=40), max_size=6),
    one_second=st.booleans(),
)
def test_wherever_the_locator_is_lost_every_user_comes_once(
    users: int, page: int, lose_after: int, changed: set[int], one_second: bool
) -> None:
    ctx = RequestContext(RetryPolicy(attempts=2, sleep=lambda seconds: None))
    with SalesforceSandbox(users, auth="session") as sb:
        sb.page_size = page
        if one_second:
            # Every stamp in one second, a millisecond apart: SOQL compares to the second, so
            # the query asked again starts on the first user and must skip all it read.
            first = sb.store.users[0].modified_at
            for n, user in enumerate(sb.store.users):
                user.modified_at = first + dt.timedelta(milliseconds=n)
        pulled: list[ExternalUser] = []
        for n, got in enumerate(_pages(sb, ctx)):
            pulled += got.users
            if n == lose_after:
                sb.store.change(sorted(c for c in changed if c <= users))
                sb.lose_locators()
        ids = _ids(pulled)
        assert len(ids) == len(set(ids)) == users
        assert set(ids) == {u.id for u in sb.store.users}
        assert ctx.retries <= 1
        unchanged = {u.id: u.modified_at for u in sb.store.users if u.number not in changed}
        assert all(
            u.modified_at == unchanged[u.external_id] for u in pulled if u.external_id in unchanged
        )
