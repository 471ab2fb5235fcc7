"""The HubSpot adapter against its sandbox, over HTTP, with the real hubspot-api-client."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seatgate.adapters.hubspot import plugin
from seatgate.adapters.hubspot.adapter import (
    CONFIG_SCHEMA,
    EXAMPLE_CONFIG,
    OWNERS_PAGE_MAX,
    parse_page,
    tail_cursor,
)
from seatgate.adapters.hubspot.sandbox import HubSpotSandbox
from seatgate.core.errors import (
    AdapterError,
    AuthFailed,
    BadInput,
    MalformedResponse,
    QuotaExhausted,
    TransientError,
)
from seatgate.core.plugins import FEATURES, ExternalUser, RequestContext, RetryPolicy

SENTINEL = "pat-na1-SENTINEL-0b5e7c9d"


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def ctx(sleeps: Sleeps) -> RequestContext:
    return RequestContext(RetryPolicy(attempts=4, sleep=sleeps))


@pytest.fixture
def sandbox() -> Iterator[HubSpotSandbox]:
    # 1,234 owners at the API's real maximum of 500 a page: three pages of live owners.
    with HubSpotSandbox(1234) as sb:
        yield sb


@pytest.fixture
def oauth_sandbox() -> Iterator[HubSpotSandbox]:
    with HubSpotSandbox(1234, auth="oauth") as sb:
        yield sb


def settings_of(sb: HubSpotSandbox, **more: Any) -> dict[str, Any]:
    return CONFIG_SCHEMA.validate({**sb.settings(), **more})


def pull(
    sb: HubSpotSandbox, ctx: RequestContext, since: dt.datetime | None = None, **more: Any
) -> list[list[ExternalUser]]:
    pages = plugin.seatgate_pull_users(
        product="hubspot", settings=settings_of(sb, **more), since=since, ctx=ctx
    )
    return [list(p.users) for p in pages]


def flat(pages: list[list[ExternalUser]]) -> list[ExternalUser]:
    return [u for page in pages for u in page]


# -- pulls -------------------------------------------------------------------------------------


def test_full_pull_pages_at_the_largest_size_without_duplicates(
    sandbox: HubSpotSandbox, ctx: RequestContext
) -> None:
    sandbox.store.deactivate([7, 700])
    pages = pull(sandbox, ctx)
    users = flat(pages)
    assert [len(p) for p in pages] == [500, 500, 232, 2]
    ids = [u.external_id for u in users]
    assert len(ids) == len(set(ids)) == 1234
    assert {u.email for u in users} == {u.email for u in sandbox.store.users}
    # ceil(1232 / 500) live pages + one archived page, nothing more.
    assert ctx.requests == sandbox.requests == 4


def test_incremental_pull_is_inclusive_on_the_boundary(
    sandbox: HubSpotSandbox, ctx: RequestContext
) -> None:
    sandbox.store.change([10, 20, 30])
    sandbox.store.deactivate([40])
    boundary = sandbox.store.by_number[10].modified_at
    users = flat(pull(sandbox, ctx, since=boundary))
    expected = {sandbox.store.by_number[n].email for n in (10, 20, 30, 40)}
    assert {u.email for u in users} == expected
    assert {u.email: u.active for u in users}[sandbox.store.by_number[40].email] is False
    # No server-side filter on updatedAt: every page is still read.
    assert ctx.requests == 4


def test_incremental_pull_just_after_the_boundary_excludes_it(
    sandbox: HubSpotSandbox, ctx: RequestContext
) -> None:
    sandbox.store.change([10, 20])
    after = sandbox.store.by_number[10].modified_at + dt.timedelta(milliseconds=1)
    users = flat(pull(sandbox, ctx, since=after))
    assert {u.email for u in users} == {sandbox.store.by_number[20].email}


def test_far_future_since_returns_nobody(sandbox: HubSpotSandbox, ctx: RequestContext) -> None:
    later = sandbox.store.now + dt.timedelta(days=3650)
    assert pull(sandbox, ctx, since=later) == []


def test_naive_since_is_read_as_utc(sandbox: HubSpotSandbox, ctx: RequestContext) -> None:
    sandbox.store.change([3])
    stamp = sandbox.store.by_number[3].modified_at.replace(tzinfo=None)
    assert [u.email for u in flat(pull(sandbox, ctx, since=stamp))] == ["user000003@example.com"]


def test_archived_owners_come_back_inactive(sandbox: HubSpotSandbox, ctx: RequestContext) -> None:
    sandbox.store.deactivate([5, 6])
    users = {u.external_id: u for u in flat(pull(sandbox, ctx))}
    gone = {sandbox.store.by_number[n].id for n in (5, 6)}
    assert {i for i, u in users.items() if not u.active} == gone
    # An archived owner loses userId but keeps userIdIncludingInactive: still identified.
    assert users[sandbox.store.by_number[5].id].raw["userId"] == 9_000_005


def test_roles_are_teams_and_optionally_hubspot_roles(
    sandbox: HubSpotSandbox, ctx: RequestContext
) -> None:
    sandbox.store.change([4], roles=["Support Team", "Night Shift"], extra={"role": "Supervisor"})
    teams_only = {u.external_id: u for u in flat(pull(sandbox, ctx))}
    four = sandbox.store.by_number[4].id
    assert teams_only[four].roles == ("Support Team", "Night Shift")
    with_roles = {u.external_id: u for u in flat(pull(sandbox, ctx, read_user_roles=True))}
    assert with_roles[four].roles == ("Support Team", "Night Shift", "Supervisor")
    nine = sandbox.store.by_number[9]
    assert with_roles[nine.id].roles == (nine.roles[0], sandbox.role_of(nine))


def test_teams_setting_selects_owners(sandbox: HubSpotSandbox, ctx: RequestContext) -> None:
    users = flat(pull(sandbox, ctx, teams=["Service Team"]))
    expected = {u.email for u in sandbox.store.users if "Service Team" in u.roles}
    assert users and {u.email for u in users} == expected


def test_a_changed_page_size_is_followed_to_the_end(
    sandbox: HubSpotSandbox, ctx: RequestContext
) -> None:
    sandbox.page_size = 100
    assert len({u.external_id for u in flat(pull(sandbox, ctx))}) == 1234


def test_a_looping_cursor_is_a_malformed_response(
    sandbox: HubSpotSandbox, ctx: RequestContext
) -> None:
    sandbox.repeat_page_token = True
    with pytest.raises(MalformedResponse):
        pull(sandbox, ctx)


def test_the_sandbox_refuses_a_limit_above_the_api_maximum(sandbox: HubSpotSandbox) -> None:
    from hubspot import HubSpot
    from hubspot.crm.owners.exceptions import ApiException

    api = HubSpot(access_token=sandbox.access_token, host=sandbox.url).crm.owners.owners_api
    with pytest.raises(ApiException) as raised:
        api.get_page(limit=OWNERS_PAGE_MAX + 1)
    api.api_client.rest_client.pool_manager.clear()
    assert raised.value.status == 400
    assert "less than or equal to 500" in raised.value.body


# -- faults and the retry policy ----------------------------------------------------------------


def _pull_with_fault_after_first_page(
    sb: HubSpotSandbox, ctx: RequestContext, fault: str, times: int = 1
) -> list[ExternalUser]:
    pages = plugin.seatgate_pull_users(
        product="hubspot", settings=settings_of(sb), since=None, ctx=ctx
    )
    users = list(next(pages).users)
    sb.inject(fault, times)
    for page in pages:
        users += page.users
    return users


def test_rate_limit_waits_retry_after_with_the_injected_sleep(
    sandbox: HubSpotSandbox, ctx: RequestContext, sleeps: Sleeps
) -> None:
    sandbox.retry_after = 7
    users = _pull_with_fault_after_first_page(sandbox, ctx, "rate_limit")
    assert len(users) == 1234
    assert sleeps == [7.0]  # urllib3's own retry would have slept for real and left this empty
    assert ctx.retries == 1


def test_server_errors_are_retried_then_fail_cleanly(
    sandbox: HubSpotSandbox, ctx: RequestContext, sleeps: Sleeps
) -> None:
    with pytest.raises(TransientError) as raised:
        _pull_with_fault_after_first_page(sandbox, ctx, "server_error", times=4)
    assert ctx.retries == 3 and len(sleeps) == 3
    assert "\n" not in str(raised.value) and "502" in str(raised.value)


def test_a_server_error_then_success_loses_nothing(
    sandbox: HubSpotSandbox, ctx: RequestContext
) -> None:
    assert len(_pull_with_fault_after_first_page(sandbox, ctx, "server_error", 2)) == 1234
    assert ctx.retries == 2


def test_daily_quota_ends_the_run_without_retries(
    sandbox: HubSpotSandbox, ctx: RequestContext, sleeps: Sleeps
) -> None:
    with pytest.raises(QuotaExhausted) as raised:
        _pull_with_fault_after_first_page(sandbox, ctx, "quota")
    assert ctx.retries == 0 and sleeps == []
    assert "daily" in str(raised.value)


def test_malformed_page_fails_without_retries(sandbox: HubSpotSandbox, ctx: RequestContext) -> None:
    with pytest.raises(MalformedResponse):
        _pull_with_fault_after_first_page(sandbox, ctx, "malformed")
    assert ctx.retries == 0


def test_a_timeout_is_transient(sandbox: HubSpotSandbox, sleeps: Sleeps) -> None:
    sandbox.timeout_seconds = 1.0
    ctx = RequestContext(RetryPolicy(attempts=2, sleep=sleeps))
    sandbox.inject("timeout")
    settings = settings_of(sandbox, timeout=0.2)
    assert plugin.seatgate_check_connection(product="hubspot", settings=settings, ctx=ctx)
    assert ctx.retries == 1 and ctx.requests == 2


def test_expired_oauth_token_is_refreshed_once(
    oauth_sandbox: HubSpotSandbox, ctx: RequestContext
) -> None:
    users = _pull_with_fault_after_first_page(oauth_sandbox, ctx, "expired_token")
    assert len(users) == 1234
    assert ctx.refreshes == 1
    assert oauth_sandbox.tokens_issued == 2  # the first token, then the refresh


def test_token_expiring_again_after_refresh_is_auth_failed(
    oauth_sandbox: HubSpotSandbox, ctx: RequestContext
) -> None:
    with pytest.raises(AuthFailed):
        _pull_with_fault_after_first_page(oauth_sandbox, ctx, "expired_token", times=2)
    assert ctx.refreshes == 1


def test_expired_private_app_token_is_auth_failed_at_once(
    sandbox: HubSpotSandbox, ctx: RequestContext
) -> None:
    with pytest.raises(AuthFailed) as raised:
        _pull_with_fault_after_first_page(sandbox, ctx, "expired_token")
    assert ctx.refreshes == 0 and ctx.retries == 0
    assert "access_token" in str(raised.value)


@pytest.mark.parametrize("auth", ["private_app", "oauth"])
def test_bad_credentials_fail_at_once(auth: str, ctx: RequestContext) -> None:
    with HubSpotSandbox(3, auth=auth) as sb:
        bad = CONFIG_SCHEMA.validate(sb.bad_settings())
        with pytest.raises(AuthFailed) as raised:
            plugin.seatgate_check_connection(product="hubspot", settings=bad, ctx=ctx)
        assert ctx.retries == 0 and sb.requests == 1
    assert "\n" not in str(raised.value)


def test_good_connection(sandbox: HubSpotSandbox, ctx: RequestContext) -> None:
    assert plugin.seatgate_check_connection(
        product="hubspot", settings=settings_of(sandbox), ctx=ctx
    )
    assert ctx.requests == 1


# -- secrets --------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["access_token", "client_secret", "refresh_token"])
def test_a_refused_secret_never_shows(
    field: str, ctx: RequestContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    auth = "private_app" if field == "access_token" else "oauth"
    with HubSpotSandbox(3, auth=auth) as sb:
        settings = CONFIG_SCHEMA.validate({**sb.settings(), field: SENTINEL})
        shown = [str(settings), repr(settings), str(plugin), repr(plugin)]
        for call in (
            lambda: plugin.seatgate_check_connection(product="hubspot", settings=settings, ctx=ctx),
            lambda: list(
                plugin.seatgate_pull_users(
                    product="hubspot", settings=settings, since=None, ctx=ctx
                )
            ),
        ):
            with pytest.raises(AuthFailed) as raised:
                call()
            exc: BaseException | None = raised.value
            while exc is not None:
                shown += [str(exc), repr(exc), *map(repr, exc.args)]
                exc = exc.__cause__ or exc.__context__
    shown.append(caplog.text)
    assert not [text for text in shown if SENTINEL in text]


def test_a_good_token_never_shows_in_debug_logs_of_a_pull(
    ctx: RequestContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with HubSpotSandbox(50, access_token=SENTINEL) as sb:
        sb.inject("rate_limit")
        sb.inject("server_error")
        assert len(flat(pull(sb, ctx))) == 50
    assert SENTINEL not in caplog.text


# -- install ------------------------------------------------------------------------------------


def test_install_is_idempotent_and_uninstall_reverses_it(sandbox: HubSpotSandbox) -> None:
    settings = settings_of(sandbox)
    assert plugin.seatgate_install(account="Acme Ltd", product="hubspot", settings=settings)
    assert sandbox.installations == {"Acme Ltd"}
    assert set(sandbox.groups) == {"seatgate_acme_ltd"}
    assert plugin.seatgate_install(account="Acme Ltd", product="hubspot", settings=settings)
    assert sandbox.installations == {"Acme Ltd"} and len(sandbox.groups) == 1
    assert plugin.seatgate_install(account="Globex", product="hubspot", settings=settings)
    assert plugin.seatgate_uninstall(account="Acme Ltd", product="hubspot", settings=settings)
    assert sandbox.installations == {"Globex"}
    assert plugin.seatgate_uninstall(account="Acme Ltd", product="hubspot", settings=settings)
    assert sandbox.installations == {"Globex"}


def test_install_with_refused_credentials_fails(sandbox: HubSpotSandbox) -> None:
    bad = CONFIG_SCHEMA.validate(sandbox.bad_settings())
    with pytest.raises(AuthFailed):
        plugin.seatgate_install(account="Acme", product="hubspot", settings=bad)
    assert sandbox.installations == set()


# -- metadata and config -----------------------------------------------------------------------


def test_adapter_info() -> None:
    info = plugin.seatgate_adapter_info()
    assert info.products == ("hubspot",)
    assert set(info.features["hubspot"]) <= set(FEATURES)
    assert "managed_package" not in info.features["hubspot"]  # HubSpot has no managed package
    assert "agent_sync" in info.features["hubspot"]
    assert info.page_size == 500


def test_example_config_passes_the_schema() -> None:
    settings = CONFIG_SCHEMA.validate(EXAMPLE_CONFIG, resolve_env=False)
    assert settings["base_url"] == "https://api.hubapi.com"


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"base_url": "https://api.hubapi.com"}, "auth"),
        ({"access_token": "x", "timeout": "soon"}, "timeout"),
        ({"access_token": "x", "read_user_roles": "yes"}, "read_user_roles"),
        ({"access_token": "x", "client_id": "a", "token": "b"}, "token"),
        ({"client_id": "a", "client_secret": "b"}, "auth"),
    ],
)
def test_a_bad_config_is_refused_in_one_line(config: dict[str, Any], named: str) -> None:
    with pytest.raises(BadInput) as raised:
        CONFIG_SCHEMA.validate(config)
    message = str(raised.value)
    assert named in message and "\n" not in message


@pytest.mark.parametrize(
    "url",
    ["http://api.hubapi.com", "http://10.0.0.5:8080", "ftp://127.0.0.1", "api.hubapi.com"],
)
def test_plain_http_is_refused_for_real_hosts(url: str, ctx: RequestContext) -> None:
    settings = CONFIG_SCHEMA.validate({"access_token": "x", "base_url": url})
    with pytest.raises(BadInput) as raised:
        plugin.seatgate_check_connection(product="hubspot", settings=settings, ctx=ctx)
    assert "https" in str(raised.value) and ctx.requests == 0


def test_an_unknown_product_is_refused(sandbox: HubSpotSandbox, ctx: RequestContext) -> None:
    with pytest.raises(BadInput):
        plugin.seatgate_check_connection(
            product="salesforce", settings=settings_of(sandbox), ctx=ctx
        )


def test_errors_are_adapter_errors_with_one_line(
    sandbox: HubSpotSandbox, ctx: RequestContext
) -> None:
    sandbox.inject("quota")
    with pytest.raises(AdapterError) as raised:
        plugin.seatgate_check_connection(product="hubspot", settings=settings_of(sandbox), ctx=ctx)
    assert "\n" not in str(raised.value) and "correlation id" in str(raised.value)


# -- the sandbox's counters and caches (the benchmark's fair comparison) -------------------------


def test_token_requests_are_counted_apart_and_dropped_caches_render_the_same(
    oauth_sandbox: HubSpotSandbox, ctx: RequestContext
) -> None:
    def seen() -> list[tuple[str, str | None, bool, tuple[str, ...]]]:
        return sorted(
            (u.external_id, u.email, u.active, u.roles) for u in flat(pull(oauth_sandbox, ctx))
        )

    first = seen()
    oauth_sandbox.drop_caches()
    assert seen() == first and len(first) == 1234
    assert oauth_sandbox.auth_requests == 2  # one token per pull, beside the listing pages
    assert oauth_sandbox.requests - oauth_sandbox.auth_requests == 2 * (3 + 1)


def test_the_sandbox_renders_each_owner_as_its_model_says(sandbox: HubSpotSandbox) -> None:
    # The sandbox writes owner JSON by hand for speed; it must be what json.dumps would send.
    sandbox.store.change([5], first_name='Zoë "Q" \\ O\'Brien', roles=[])
    sandbox.store.change([6], roles=["Sales Team", "Support Team"])
    sandbox.store.deactivate([7])
    for n in (1, 5, 6, 7):
        user = sandbox.store.by_number[n]
        assert json.loads(sandbox._render(user)) == sandbox.owner(user)


def test_pull_closed_early_leaves_no_request_running(
    sandbox: HubSpotSandbox, ctx: RequestContext
) -> None:
    pages = plugin.seatgate_pull_users(
        product="hubspot", settings=settings_of(sandbox), since=None, ctx=ctx
    )
    next(pages)
    pages.close()  # cancels the page read ahead, or waits for it if it has started
    assert not [t for t in threading.enumerate() if t.name.startswith("hubspot-pull")]
    assert sandbox.requests in (1, 2)  # page 1; page 2 only if the worker had started it


# -- the next cursor, read from the page's end -----------------------------------------------------

_text = st.lists(
    st.sampled_from(['"', "\\", '"paging"', ":", "}", "{", "a", "é", " "]), max_size=6
).map("".join)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | _text,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["paging", "next", "after", "x", "é"]), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(
    owners=st.lists(st.dictionaries(st.sampled_from(["id", "paging", "email"]), _json), max_size=3),
    paging=st.none() | _json,
    paging_first=st.booleans(),
    indent=st.sampled_from([None, 1]),
)
def test_the_tail_cursor_is_the_parsed_pages_cursor(
    owners: list[dict[str, Any]], paging: Any, paging_first: bool, indent: int | None
) -> None:
    # Whatever the page holds ("paging" keys in owners, quotes and braces in strings, members in
    # another order), a cursor read from the page's end is the one its parse finds, or none is
    # found and the page is parsed whole.
    members: list[tuple[str, Any]] = [("results", owners)]
    if paging is not None:
        members.insert(0 if paging_first else 1, ("paging", paging))
    body = json.dumps(dict(members), indent=indent, ensure_ascii=False).encode()
    data = parse_page(body)
    nxt = data.get("paging", {}).get("next") if isinstance(data.get("paging"), dict) else None
    expected = nxt.get("after") if isinstance(nxt, dict) else None
    found, after = tail_cursor(body)
    if found:
        assert after == (str(expected) if expected else None)
    # HubSpot's own shape, paging last (or no "paging" anywhere), never needs the whole parse
    # (unless the paging itself holds a "paging" key).
    last = paging is not None and not paging_first and '"paging"' not in json.dumps(paging)
    assert found or not (last or b'"paging"' not in body)


def test_the_tail_cursor_of_the_sandbox_pages_is_read_without_a_parse(
    sandbox: HubSpotSandbox,
) -> None:
    page = {"results": [{"id": "1"}], "paging": {"next": {"after": "MTAw", "link": "x"}}}
    assert tail_cursor(json.dumps(page).encode()) == (True, "MTAw")
    assert tail_cursor(b'{"results":[]}') == (True, None)
    assert tail_cursor(json.dumps({"paging": page["paging"], "results": []}).encode()) == (
        False,
        None,
    )


def test_a_page_whose_paging_differs_from_its_tail_is_malformed(
    sandbox: HubSpotSandbox, ctx: RequestContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    from seatgate.adapters.hubspot import adapter

    # A tail read wrongly would send the next request to the wrong page: the page's own parse
    # catches it before its users are used.
    monkeypatch.setattr(adapter, "tail_cursor", lambda body: (True, None))
    with pytest.raises(MalformedResponse, match="paging"):
        pull(sandbox, ctx)
