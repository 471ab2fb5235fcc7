"""The ServiceNow adapter against its sandbox, over real HTTP with pysnow."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pytest

from seatgate.adapters.servicenow import plugin
from seatgate.adapters.servicenow.adapter import CONFIG_SCHEMA
from seatgate.adapters.servicenow.sandbox import ROLES, ServiceNowSandbox
from seatgate.core.errors import (
    AuthFailed,
    BadInput,
    MalformedResponse,
    QuotaExhausted,
    TransientError,
)
from seatgate.core.plugins import FEATURES, ExternalUser, RequestContext, RetryPolicy

SENTINEL = "s3ntinel-Pa55word-do-not-print"


@pytest.fixture
def sandbox() -> Iterator[ServiceNowSandbox]:
    with ServiceNowSandbox(25) as sb:
        sb.max_page = 10  # three pages from 25 users
        yield sb


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def ctx(sleeps: list[float]) -> RequestContext:
    return RequestContext(policy=RetryPolicy(attempts=4, sleep=sleeps.append))


def settings(raw: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    return CONFIG_SCHEMA.validate({**raw, **extra}, resolve_env=False)


# A connector that activates every role the sandbox grants, so every grant matters.
ALL_ROLES = frozenset(ROLES)


def pull(
    sb: ServiceNowSandbox,
    ctx: RequestContext,
    since: dt.datetime | None = None,
    raw: Mapping[str, Any] | None = None,
    activated: Iterable[str] = ALL_ROLES,
) -> list[list[ExternalUser]]:
    pages = plugin.seatgate_pull_users(
        product="servicenow",
        settings=settings(raw or sb.settings()),
        since=since,
        ctx=ctx,
        activated_roles=frozenset(activated),
    )
    return [page.users for page in pages]


def flat(pages: list[list[ExternalUser]]) -> list[ExternalUser]:
    return [u for page in pages for u in page]


# -- pulls -------------------------------------------------------------------------------------------


def test_full_pull_pages_without_duplicates(
    sandbox: ServiceNowSandbox, ctx: RequestContext
) -> None:
    pages = pull(sandbox, ctx)
    users = flat(pages)
    assert [len(p) for p in pages] == [10, 10, 5]
    assert len({u.external_id for u in users}) == 25
    assert {u.email for u in users} == {u.email for u in sandbox.store.users}
    # One token, three pages of grants (25 at 10 a page), three pages of users.
    assert ctx.requests == sandbox.requests == 7
    assert ctx.retries == 0


def test_full_pull_with_roles_field_costs_only_the_user_pages(
    sandbox: ServiceNowSandbox, ctx: RequestContext
) -> None:
    pages = pull(sandbox, ctx, raw={**sandbox.basic_settings(), "roles_source": "roles_field"})
    assert len(flat(pages)) == 25
    assert ctx.requests == sandbox.requests == 3


def test_server_page_cap_is_followed_by_total_count(ctx: RequestContext) -> None:
    # The client asks for 10,000; a lower server cap must not look like the last page.
    with ServiceNowSandbox(23) as sb:
        sb.max_page = 7
        assert len(flat(pull(sb, ctx, raw=sb.basic_settings()))) == 23


def test_user_fields_are_mapped(sandbox: ServiceNowSandbox, ctx: RequestContext) -> None:
    first = flat(pull(sandbox, ctx))[0]
    source = sandbox.store.users[0]
    assert first.external_id == source.id
    assert first.email == source.email
    assert first.name == source.name
    assert first.active is True
    assert first.modified_at == source.modified_at
    assert first.roles == tuple(source.roles)


def test_incremental_pull_is_inclusive_on_the_boundary(
    sandbox: ServiceNowSandbox, ctx: RequestContext
) -> None:
    sandbox.store.change([3, 7])
    sandbox.store.add(2)
    boundary = sandbox.store.by_number[3].modified_at
    changed = {sandbox.store.by_number[n].id for n in (3, 7, 26, 27)}
    assert {u.external_id for u in flat(pull(sandbox, ctx, since=boundary))} == changed
    after = boundary + dt.timedelta(seconds=1)
    users = flat(pull(sandbox, ctx, since=after))
    assert {u.external_id for u in users} == changed - {sandbox.store.by_number[3].id}


def test_far_future_since_returns_nothing(sandbox: ServiceNowSandbox, ctx: RequestContext) -> None:
    assert pull(sandbox, ctx, since=dt.datetime(2999, 1, 1, tzinfo=dt.UTC)) == []


def test_deactivated_users_come_back_inactive(
    sandbox: ServiceNowSandbox, ctx: RequestContext
) -> None:
    sandbox.store.deactivate([4, 5])
    sandbox.store.change([6], extra={"locked_out": True})
    users = {u.external_id: u for u in flat(pull(sandbox, ctx))}
    inactive = {sandbox.store.by_number[n].id for n in (4, 5, 6)}
    assert {i for i, u in users.items() if not u.active} == inactive
    assert len(users) == 25


@pytest.mark.parametrize("source", ["sys_user_has_role", "roles_field"])
def test_roles_mapped_and_filtered(
    sandbox: ServiceNowSandbox, ctx: RequestContext, source: str
) -> None:
    sandbox.store.change([2], roles=["itil", "sn_openframe_user"])
    raw = {**sandbox.settings(), "roles_source": source}
    users = {u.external_id: u for u in flat(pull(sandbox, ctx, raw=raw))}
    two = sandbox.store.by_number[2].id
    assert users[two].roles == ("itil", "sn_openframe_user")
    for user in sandbox.store.users:
        assert users[user.id].roles == tuple(sorted(user.roles))
    only = flat(pull(sandbox, ctx, raw={**raw, "roles": ["sn_openframe_user"]}))
    holders = {u.id for u in sandbox.store.users if "sn_openframe_user" in u.roles}
    assert {u.external_id for u in only if u.roles} == holders
    assert all(u.roles in ((), ("sn_openframe_user",)) for u in only)


def test_incremental_pull_reads_only_the_changed_users_grants(
    sandbox: ServiceNowSandbox, ctx: RequestContext
) -> None:
    sandbox.store.change([3], roles=["itil", "sn_openframe_user"])
    sandbox.store.change([7])
    since = sandbox.store.by_number[3].modified_at
    users = {u.external_id: u for u in flat(pull(sandbox, ctx, since=since))}
    assert users[sandbox.store.by_number[3].id].roles == ("itil", "sn_openframe_user")
    assert users[sandbox.store.by_number[7].id].roles == tuple(sandbox.store.by_number[7].roles)
    # One token, one grants page (3 grants, not 26), one page of grants changed since (none), one
    # user page.
    assert ctx.requests == sandbox.requests == 4


def test_incremental_pull_sees_a_grant_that_did_not_touch_the_user(
    sandbox: ServiceNowSandbox, ctx: RequestContext
) -> None:
    # ServiceNow keeps grants in sys_user_has_role: granting a role need not touch sys_user.
    since = sandbox.store.now + dt.timedelta(seconds=1)
    sandbox.store.change([7])  # the user record changes
    sandbox.store.grant([5, 9], ["itil", "sn_openframe_user"])  # only the grants change
    five, seven, nine = (sandbox.store.by_number[n] for n in (5, 7, 9))
    users = {u.external_id: u for u in flat(pull(sandbox, ctx, since=since))}
    assert set(users) == {five.id, seven.id, nine.id}
    assert users[five.id].roles == users[nine.id].roles == ("itil", "sn_openframe_user")
    assert users[five.id].modified_at == five.extra["roles_at"]  # the cursor moves past it
    assert users[five.id].email == five.email and users[five.id].active
    # Token, grants of changed users, grants changed since, the user page; then the two users
    # by sys_id: their grants and their records.
    assert ctx.requests == sandbox.requests == 6


def test_without_activated_roles_no_grant_is_read(
    sandbox: ServiceNowSandbox, ctx: RequestContext
) -> None:
    # The default source, but no role matters to the connector: the user pages alone, the minimum.
    users = flat(pull(sandbox, ctx, raw=sandbox.basic_settings(), activated=()))
    assert len(users) == 25 and all(u.roles == () for u in users)
    assert ctx.requests == sandbox.requests == 3


def test_only_the_activated_roles_grants_are_read(
    sandbox: ServiceNowSandbox, ctx: RequestContext
) -> None:
    users = flat(
        pull(sandbox, ctx, raw=sandbox.basic_settings(), activated=["sn_customerservice_agent"])
    )
    holders = {u.id for u in sandbox.store.users if "sn_customerservice_agent" in u.roles}
    assert holders and len(holders) < 10
    assert {u.external_id for u in users if u.roles} == holders
    assert all(u.roles in ((), ("sn_customerservice_agent",)) for u in users)
    # One page of grants (only that role's, fewer than 10), three user pages, and one re-read:
    # the last users, stamped after the newest holder, are confirmed to hold no grant.
    assert ctx.requests == sandbox.requests == 5


def test_the_roles_setting_overrides_the_activated_roles(
    sandbox: ServiceNowSandbox, ctx: RequestContext
) -> None:
    raw = {**sandbox.basic_settings(), "roles": ["itil"]}
    users = flat(pull(sandbox, ctx, raw=raw, activated=["sn_openframe_user"]))
    assert {r for u in users for r in u.roles} == {"itil"}


def test_roles_source_none_reads_no_grants(sandbox: ServiceNowSandbox, ctx: RequestContext) -> None:
    users = flat(pull(sandbox, ctx, raw={**sandbox.basic_settings(), "roles_source": "none"}))
    assert len(users) == 25 and all(u.roles == () for u in users)
    assert ctx.requests == sandbox.requests == 3


def test_users_changed_during_the_pull_skip_nobody_and_get_their_current_roles(
    sandbox: ServiceNowSandbox, ctx: RequestContext
) -> None:
    pages = plugin.seatgate_pull_users(
        product="servicenow",
        settings=settings(sandbox.basic_settings()),
        since=None,
        ctx=ctx,
        activated_roles=ALL_ROLES,
    )
    first = next(pages)  # grants read, page 1 (and page 2, ahead) read
    ahead = sandbox.store.by_number[25]  # on the last page, not read yet
    sandbox.store.change([1])  # read already: with offsets, this shifted everyone after it
    sandbox.store.change([25], roles=["sn_customerservice_agent", "itil"])
    later = [u for page in pages for u in page.users]
    ids = [u.external_id for u in first.users + later]
    assert sorted(ids) == sorted(u.id for u in sandbox.store.users)  # each once, nobody skipped
    [changed] = [u for u in later if u.external_id == ahead.id]
    assert changed.roles == ("itil", "sn_customerservice_agent")
    assert changed.modified_at == ahead.modified_at
    # Three grants pages, three user pages, and one re-read of the changed user's grants.
    assert ctx.requests == sandbox.requests == 7


def test_pull_closed_early_leaves_no_request_running(
    sandbox: ServiceNowSandbox, ctx: RequestContext
) -> None:
    pages = plugin.seatgate_pull_users(
        product="servicenow",
        settings=settings(sandbox.basic_settings()),
        since=None,
        ctx=ctx,
        activated_roles=ALL_ROLES,
    )
    next(pages)
    pages.close()  # cancels the page read ahead, or waits for it if it has started
    assert not [t for t in threading.enumerate() if t.name.startswith("servicenow-pull")]
    # Three grants pages and page 1; page 2 only if the worker had started it.
    assert ctx.requests == sandbox.requests in (4, 5)


# -- faults and the retry policy ----------------------------------------------------------------------


def test_rate_limit_honours_retry_after(
    sandbox: ServiceNowSandbox, ctx: RequestContext, sleeps: list[float]
) -> None:
    sandbox.inject("rate_limit")
    assert len(flat(pull(sandbox, ctx))) == 25
    assert sleeps == [7.0]
    assert ctx.retries == 1


def test_server_error_is_retried_then_recovers(
    sandbox: ServiceNowSandbox, ctx: RequestContext, sleeps: list[float]
) -> None:
    sandbox.inject("server_error", times=2)
    assert len(flat(pull(sandbox, ctx))) == 25
    assert len(sleeps) == 2 and ctx.retries == 2


def test_persistent_server_error_ends_in_transient_error(
    sandbox: ServiceNowSandbox, ctx: RequestContext, sleeps: list[float]
) -> None:
    sandbox.inject("server_error", times=10)
    with pytest.raises(TransientError) as info:
        pull(sandbox, ctx)
    assert len(sleeps) == 3  # four attempts
    assert "\n" not in str(info.value)


def test_quota_ends_the_run_without_retries(
    sandbox: ServiceNowSandbox, ctx: RequestContext, sleeps: list[float]
) -> None:
    sandbox.inject("quota")
    with pytest.raises(QuotaExhausted, match="rate-limit rule"):
        pull(sandbox, ctx)
    assert sleeps == [] and ctx.retries == 0


def test_expired_token_is_refreshed_once(sandbox: ServiceNowSandbox, ctx: RequestContext) -> None:
    sandbox.inject("expired_token")
    assert len(flat(pull(sandbox, ctx))) == 25
    assert ctx.refreshes == 1
    assert len(sandbox.tokens) == 1  # the rejected token is gone; only the new one works


def test_token_rejected_after_refresh_is_auth_failed(
    sandbox: ServiceNowSandbox, ctx: RequestContext
) -> None:
    sandbox.inject("expired_token", times=2)
    with pytest.raises(AuthFailed):
        pull(sandbox, ctx)
    assert ctx.refreshes == 1


@pytest.mark.parametrize("basic", [False, True])
def test_bad_credentials_fail_at_once(
    sandbox: ServiceNowSandbox, ctx: RequestContext, sleeps: list[float], basic: bool
) -> None:
    raw = {**(sandbox.basic_settings() if basic else sandbox.bad_settings()), "password": "nope"}
    with pytest.raises(AuthFailed) as info:
        pull(sandbox, ctx, raw=raw)
    assert sleeps == [] and ctx.retries == 0 and ctx.requests == 1
    assert "\n" not in str(info.value)


def test_malformed_page_fails_cleanly(sandbox: ServiceNowSandbox, ctx: RequestContext) -> None:
    sandbox.inject("malformed")
    with pytest.raises(MalformedResponse):
        pull(sandbox, ctx)


def test_timeout_is_transient(sandbox: ServiceNowSandbox, sleeps: list[float]) -> None:
    sandbox.timeout_seconds = 0.4  # the client waits half of it
    sandbox.inject("timeout", times=2)
    ctx = RequestContext(policy=RetryPolicy(attempts=2, sleep=sleeps.append))
    with pytest.raises(TransientError, match="Timeout"):
        pull(sandbox, ctx, raw=sandbox.basic_settings())
    assert len(sleeps) == 1


def test_check_connection(sandbox: ServiceNowSandbox, ctx: RequestContext) -> None:
    ok = plugin.seatgate_check_connection(
        product="servicenow", settings=settings(sandbox.settings()), ctx=ctx
    )
    assert ok is True
    with pytest.raises(AuthFailed):
        plugin.seatgate_check_connection(
            product="servicenow", settings=settings(sandbox.bad_settings()), ctx=ctx
        )


# -- secrets ------------------------------------------------------------------------------------------


def test_secrets_never_printed(
    sandbox: ServiceNowSandbox, ctx: RequestContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sandbox.password = SENTINEL
    sandbox.client_secret = SENTINEL + "-client"
    good = settings(sandbox.settings())
    assert len(flat(pull(sandbox, ctx, raw=sandbox.settings()))) == 25
    sandbox.inject("expired_token")
    assert len(flat(pull(sandbox, ctx, raw=sandbox.settings()))) == 25
    errors: list[Exception] = []
    for raw in (sandbox.bad_settings(), {**sandbox.settings(), "client_secret": SENTINEL + "x"}):
        raw = {**raw, "password": SENTINEL + "x"}
        with pytest.raises(AuthFailed) as info:
            pull(sandbox, ctx, raw=raw)
        errors.append(info.value)
    shown = [caplog.text, repr(plugin), str(plugin), repr(good), str(good), repr(ctx)]
    shown += [str(e) for e in errors] + [repr(e) for e in errors]
    assert caplog.records  # the libraries did log at DEBUG
    for text in shown:
        assert SENTINEL not in text
    for token in sandbox.tokens:
        assert token not in caplog.text


# -- install / uninstall -----------------------------------------------------------------------------


def test_install_is_idempotent_and_uninstall_reverses_it(sandbox: ServiceNowSandbox) -> None:
    good = settings(sandbox.settings())
    for _ in range(2):
        assert plugin.seatgate_install(account="acme", product="servicenow", settings=good)
    assert sandbox.installations == {"acme"}
    assert len(sandbox.properties) == 1
    assert plugin.seatgate_install(account="globex", product="servicenow", settings=good)
    assert sandbox.installations == {"acme", "globex"}
    for _ in range(2):
        assert plugin.seatgate_uninstall(account="acme", product="servicenow", settings=good)
    assert sandbox.installations == {"globex"}


# -- config and info ----------------------------------------------------------------------------------


def test_info_and_example_config() -> None:
    info = plugin.seatgate_adapter_info()
    assert info.products == ("servicenow",) and info.page_size == 10_000
    assert set(info.features["servicenow"]) <= set(FEATURES)
    assert "managed_package" not in info.features["servicenow"]
    checked = info.config_schema.validate(info.example_config, resolve_env=False)
    assert checked["roles_source"] == "sys_user_has_role" and checked["timeout"] == 60


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"instance": "dev1", "username": "u"}, "auth"),
        ({"instance": "dev1", "username": "u", "password": "p", "pasword": "x"}, "pasword"),
        ({"instance": "dev1", "username": "u", "password": "p", "timeout": "9"}, "timeout"),
        ({"instance": "dev1", "username": "u", "password": "p", "roles_source": "x"}, "roles"),
    ],
)
def test_bad_config_refused_by_schema(raw: dict[str, Any], fragment: str) -> None:
    with pytest.raises(BadInput, match=fragment) as info:
        CONFIG_SCHEMA.validate(raw, resolve_env=False)
    assert "\n" not in str(info.value) and "'p'" not in str(info.value)


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"base_url": "http://acme.service-now.com"}, "https"),
        ({"base_url": "https://acme.service-now.com", "instance": "acme"}, "exactly one"),
        ({"base_url": "https://acme.service-now.com", "page_size": 20_000}, "page_size"),
        ({"instance": "acme", "user_query": "active=true^ORDERBYname"}, "without ORDERBY"),
        ({"instance": "acme", "user_query": "department=ops^NQtitle=Agent"}, r"without \^NQ"),
        ({"instance": "acme", "page_size": 0}, "page_size"),
    ],
)
def test_unsafe_or_contradictory_settings_refused(
    ctx: RequestContext, extra: dict[str, Any], fragment: str
) -> None:
    raw = {"username": "u", "password": SENTINEL, **extra}
    with pytest.raises(BadInput, match=fragment) as info:
        plugin.seatgate_pull_users(
            product="servicenow",
            settings=settings(raw),
            since=None,
            ctx=ctx,
            activated_roles=ALL_ROLES,
        )
    assert "\n" not in str(info.value) and SENTINEL not in str(info.value)
    assert ctx.requests == 0


# -- the sandbox's counters and caches (the benchmark's fair comparison) -------------------------


def test_token_requests_are_counted_apart_and_dropped_caches_render_the_same(
    sandbox: ServiceNowSandbox, ctx: RequestContext
) -> None:
    def seen() -> list[tuple[str, str | None, bool, tuple[str, ...]]]:
        return sorted((u.external_id, u.email, u.active, u.roles) for u in flat(pull(sandbox, ctx)))

    first = seen()
    sandbox.drop_caches()
    assert seen() == first and len(first) == 25
    assert sandbox.auth_requests == 2  # one OAuth token per pull
    assert sandbox.requests - sandbox.auth_requests == 2 * (3 + 3)  # grants and users, 3 pages each


def test_a_grants_listing_that_repeats_its_page_is_refused(
    sandbox: ServiceNowSandbox, ctx: RequestContext
) -> None:
    # The grants are keyset-paged like the users: a page that does not move on would loop.
    sandbox.repeat_page_token = True
    with pytest.raises(MalformedResponse, match="sys_user_has_role page out of sys_id order"):
        pull(sandbox, ctx, raw=sandbox.basic_settings())
    assert sandbox.requests == 2  # two grants pages, the second the same as the first
