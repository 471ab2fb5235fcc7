"""The Salesforce adapter against its sandbox, over HTTP, with the real simple-salesforce client."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from seatgate.adapters.salesforce import plugin
from seatgate.adapters.salesforce.adapter import (
    BATCH_SIZE,
    CONFIG_SCHEMA,
    EXAMPLE_CONFIG,
    Client,
    LoopbackSession,
)
from seatgate.adapters.salesforce.sandbox import SalesforceSandbox
from seatgate.core.errors import (
    AdapterError,
    AuthFailed,
    BadInput,
    MalformedResponse,
    QuotaExhausted,
    TransientError,
)
from seatgate.core.plugins import ExternalUser, RequestContext, RetryPolicy

SENTINEL = "S3NT1NEL-sf-4c2a"


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def ctx(sleeps: Sleeps) -> RequestContext:
    return RequestContext(RetryPolicy(attempts=4, base_delay=0.5, max_delay=4, sleep=sleeps))


@pytest.fixture
def sandbox() -> Iterator[SalesforceSandbox]:
    with SalesforceSandbox(30) as sb:
        sb.page_size = 7
        yield sb


def settings(sb: SalesforceSandbox, **extra: Any) -> dict[str, Any]:
    return CONFIG_SCHEMA.validate(sb.settings(**extra), resolve_env=False)


def pull(
    sb: SalesforceSandbox,
    ctx: RequestContext,
    *,
    product: str = "salesforce",
    since: dt.datetime | None = None,
    **extra: Any,
) -> list[ExternalUser]:
    pages = plugin.seatgate_pull_users(
        product=product, settings=settings(sb, **extra), since=since, ctx=ctx
    )
    return [u for page in pages for u in page.users]


# -- pulls -------------------------------------------------------------------------------------


def test_full_pull_at_2000_a_page_streams_pages_without_duplicates(ctx: RequestContext) -> None:
    with SalesforceSandbox(4500) as sb:
        conf = settings(sb, auth="session")
        pages = plugin.seatgate_pull_users(product="salesforce", settings=conf, since=None, ctx=ctx)
        first = next(pages)
        # Streamed: page 1, and at most page 2 read ahead, never the whole set.
        assert len(first.users) == BATCH_SIZE and sb.requests in (1, 2)
        users = first.users + [u for page in pages for u in page.users]
        sizes_seen = sb.requests
    ids = [u.external_id for u in users]
    assert len(ids) == len(set(ids)) == 4500
    assert {u.email for u in users} == {u.email for u in sb.store.users}
    assert sizes_seen == ctx.requests == 3  # ceil(4500 / 2000), no login with a session id


def test_incremental_pull_is_inclusive_on_the_boundary(
    sandbox: SalesforceSandbox, ctx: RequestContext
) -> None:
    sandbox.store.change([4, 9, 11])
    boundary = sandbox.store.by_number[4].modified_at
    changed = pull(sandbox, ctx, since=boundary)
    assert [u.external_id for u in changed] == [sandbox.store.by_number[n].id for n in (4, 9, 11)]
    # A cursor with a sub-second part is floored, never rounded past the boundary user.
    later_in_second = pull(sandbox, ctx, since=boundary + dt.timedelta(milliseconds=600))
    assert {u.external_id for u in later_in_second} == {u.external_id for u in changed}
    after = pull(sandbox, ctx, since=boundary + dt.timedelta(seconds=1))
    assert [u.external_id for u in after] == [sandbox.store.by_number[n].id for n in (9, 11)]


def test_far_future_since_returns_nobody(sandbox: SalesforceSandbox, ctx: RequestContext) -> None:
    assert pull(sandbox, ctx, since=sandbox.store.now + dt.timedelta(days=365)) == []


def test_deactivated_users_come_back_inactive(
    sandbox: SalesforceSandbox, ctx: RequestContext
) -> None:
    sandbox.store.deactivate([3, 8])
    users = {u.external_id: u for u in pull(sandbox, ctx)}
    gone = {sandbox.store.by_number[n].id for n in (3, 8)}
    assert {i for i, u in users.items() if not u.active} == gone
    assert len(users) == 30


def test_roles_are_profile_user_role_permission_sets_and_package(
    sandbox: SalesforceSandbox, ctx: RequestContext
) -> None:
    ns = sandbox.NAMESPACE
    users = {u.external_id: u for u in pull(sandbox, ctx, namespace=ns, read_permission_sets=True)}
    four = users[sandbox.store.by_number[4].id]  # profile, role, permission set, package
    assert four.roles == (
        "Contact Center Supervisor",
        "Team Lead",
        "Seatgate_Voice",
        f"package:{ns}",
    )
    two = users[sandbox.store.by_number[2].id]  # no user role, no permission set
    assert two.roles == ("Standard User", f"package:{ns}")
    plain = {u.external_id: u for u in pull(sandbox, ctx)}
    assert plain[four.external_id].roles == ("Contact Center Supervisor", "Team Lead")
    assert four.modified_at == sandbox.store.by_number[4].modified_at


def test_each_product_pulls_its_own_licence_holders(
    sandbox: SalesforceSandbox, ctx: RequestContext
) -> None:
    by_n = sandbox.store.by_number
    package = pull(sandbox, ctx, namespace=sandbox.NAMESPACE)
    assert {u.external_id for u in package} == {by_n[n].id for n in by_n if n % 5}
    voice = pull(
        sandbox, ctx, product="salesforce_voice", voice_call_centers=[sandbox.CALL_CENTER_ID]
    )
    assert {u.external_id for u in voice} == {by_n[n].id for n in by_n if n % 2}
    assert {u.raw["CallCenterId"] for u in voice} == {sandbox.CALL_CENTER_ID}
    by_permission_set = pull(
        sandbox, ctx, product="salesforce_voice", voice_permission_set=sandbox.PERMISSION_SET
    )
    assert {u.external_id for u in by_permission_set} == {by_n[n].id for n in by_n if n % 4 == 0}
    sandbox.store.change([6], extra={"call_center": None})
    any_center = pull(sandbox, ctx, product="salesforce_voice")
    assert by_n[6].id not in {u.external_id for u in any_center} and len(any_center) == 29


def test_voice_selection_is_call_centers_or_permission_set_not_both(
    sandbox: SalesforceSandbox, ctx: RequestContext
) -> None:
    conf = settings(sandbox, voice_call_centers=["04v1"], voice_permission_set="Voice")
    with pytest.raises(BadInput) as raised:
        plugin.seatgate_pull_users(product="salesforce_voice", settings=conf, since=None, ctx=ctx)
    assert "not both" in str(raised.value) and "\n" not in str(raised.value)
    assert sandbox.requests == 0


# -- faults and the retry policy ----------------------------------------------------------------


def _after_first_page(sb: SalesforceSandbox, ctx: RequestContext, fault: str, times: int) -> int:
    pages = plugin.seatgate_pull_users(
        product="salesforce", settings=settings(sb), since=None, ctx=ctx
    )
    count = len(next(pages).users)
    sb.inject(fault, times)
    return count + sum(len(p.users) for p in pages)


def test_rate_limit_waits_the_retry_after_it_is_given(
    sandbox: SalesforceSandbox, ctx: RequestContext, sleeps: Sleeps
) -> None:
    sandbox.retry_after = 17
    assert _after_first_page(sandbox, ctx, "rate_limit", 2) == 30
    assert sleeps == [17.0, 17.0] and ctx.retries == 2


def test_server_errors_are_retried_then_fail_cleanly(
    sandbox: SalesforceSandbox, ctx: RequestContext, sleeps: Sleeps
) -> None:
    with pytest.raises(TransientError) as raised:
        _after_first_page(sandbox, ctx, "server_error", 4)
    assert ctx.retries == 3 and len(sleeps) == 3
    assert str(raised.value) == (
        "Salesforce answered 503 (SERVER_UNAVAILABLE); retrying may succeed"
    )


def test_one_server_error_is_absorbed(sandbox: SalesforceSandbox, ctx: RequestContext) -> None:
    assert _after_first_page(sandbox, ctx, "server_error", 1) == 30
    assert ctx.retries == 1


def test_daily_quota_stops_the_run_without_retries(
    sandbox: SalesforceSandbox, ctx: RequestContext, sleeps: Sleeps
) -> None:
    sandbox.inject("quota", 1)
    with pytest.raises(QuotaExhausted) as raised:
        pull(sandbox, ctx, auth="session")
    assert sandbox.requests == 1 and ctx.retries == 0 and sleeps == []
    assert "REQUEST_LIMIT_EXCEEDED" in str(raised.value)


def test_malformed_page_is_not_retried(sandbox: SalesforceSandbox, ctx: RequestContext) -> None:
    with pytest.raises(MalformedResponse):
        _after_first_page(sandbox, ctx, "malformed", 1)
    assert ctx.retries == 0


def test_repeated_page_locator_stops_instead_of_looping(
    sandbox: SalesforceSandbox, ctx: RequestContext
) -> None:
    sandbox.repeat_page_token = True
    with pytest.raises(MalformedResponse):
        pull(sandbox, ctx)
    assert sandbox.requests <= 4


def test_expired_session_logs_in_again_once_and_the_pull_goes_on(
    sandbox: SalesforceSandbox, ctx: RequestContext
) -> None:
    assert _after_first_page(sandbox, ctx, "expired_token", 1) == 30
    assert sandbox.logins == 2 and ctx.refreshes == 1 and ctx.retries == 0


def test_a_second_expiry_is_auth_failed_not_a_hidden_relogin_loop(
    sandbox: SalesforceSandbox, ctx: RequestContext
) -> None:
    with pytest.raises(AuthFailed):
        _after_first_page(sandbox, ctx, "expired_token", 2)
    # The client's own re-login (up to 3 more) is off: one login, one refresh, nothing else.
    assert sandbox.logins == 2 and ctx.refreshes == 1


def test_expired_session_id_cannot_be_refreshed(
    sandbox: SalesforceSandbox, ctx: RequestContext
) -> None:
    sandbox.inject("expired_token", 1)
    with pytest.raises(AuthFailed) as raised:
        pull(sandbox, ctx, auth="session")
    assert ctx.refreshes == 0 and sandbox.logins == 0
    assert "session_id" in str(raised.value)


@pytest.mark.parametrize("auth", ["password", "session", "jwt", "client"])
def test_refused_credentials_are_auth_failed_without_retries(
    auth: str, ctx: RequestContext, sleeps: Sleeps
) -> None:
    with SalesforceSandbox(3, auth=auth) as sb:
        bad = CONFIG_SCHEMA.validate(sb.bad_settings(), resolve_env=False)
        with pytest.raises(AuthFailed) as raised:
            plugin.seatgate_check_connection(product="salesforce", settings=bad, ctx=ctx)
        assert sb.requests == 1
    assert ctx.retries == 0 and sleeps == []
    assert "\n" not in str(raised.value)


def test_login_unavailable_is_retried(
    sandbox: SalesforceSandbox, ctx: RequestContext, sleeps: Sleeps
) -> None:
    sandbox.inject("server_error", 1)  # hits the SOAP login
    assert len(pull(sandbox, ctx)) == 30
    assert sandbox.logins == 1 and ctx.retries == 1 and len(sleeps) == 1


def test_jwt_flow_signs_with_the_configured_key(ctx: RequestContext) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    with SalesforceSandbox(5, auth="jwt") as sb:
        assert plugin.seatgate_check_connection(
            product="salesforce", settings=settings(sb), ctx=ctx
        )
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = other.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        with pytest.raises(AuthFailed):
            plugin.seatgate_check_connection(
                product="salesforce", settings=settings(sb, private_key=pem), ctx=ctx
            )
        assert sb.logins == 1


# -- secrets ------------------------------------------------------------------------------------


@pytest.mark.parametrize("auth", ["password", "session", "jwt", "client"])
def test_a_secret_never_reaches_logs_errors_or_reprs(
    auth: str, ctx: RequestContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with SalesforceSandbox(3, auth=auth) as sb:
        raw = sb.settings()
        for field in CONFIG_SCHEMA.fields:
            if field.secret and field.name in raw:
                raw[field.name] = SENTINEL
        conf = CONFIG_SCHEMA.validate(raw, resolve_env=False)
        shown = [str(conf), repr(conf), repr(plugin), str(plugin)]
        conn = Client("salesforce", conf)
        shown += [repr(conn), repr(conn.session)]
        with pytest.raises(AdapterError) as raised:
            list(
                plugin.seatgate_pull_users(product="salesforce", settings=conf, since=None, ctx=ctx)
            )
        exc: BaseException | None = raised.value
        while exc is not None:
            shown += [str(exc), repr(exc), *map(repr, exc.args)]
            exc = exc.__cause__ or exc.__context__
    shown.append(caplog.text)
    assert not [text for text in shown if SENTINEL in text]


# -- install ------------------------------------------------------------------------------------


def test_install_is_idempotent_and_uninstall_reverses_it(sandbox: SalesforceSandbox) -> None:
    conf = settings(sandbox)
    for product in ("salesforce", "salesforce_voice"):
        assert plugin.seatgate_install(account="acme/eu", product=product, settings=conf)
    assert plugin.seatgate_install(account="acme/eu", product="salesforce", settings=conf)
    # Only the product with the managed package writes its installation object (issue 12).
    assert sandbox.installations == {"acme/eu:salesforce"}
    assert sandbox.install_records["acme/eu:salesforce"]["Product__c"] == "salesforce"
    for _ in range(2):
        assert plugin.seatgate_uninstall(account="acme/eu", product="salesforce", settings=conf)
        assert sandbox.installations == set()


# -- config and TLS -----------------------------------------------------------------------------


def test_example_config_passes_and_a_bad_one_is_refused_in_one_line() -> None:
    CONFIG_SCHEMA.validate(EXAMPLE_CONFIG, resolve_env=False)
    with pytest.raises(BadInput) as raised:
        CONFIG_SCHEMA.validate({"username": "u", "password": "p"}, resolve_env=False)
    message = str(raised.value)
    assert "\n" not in message and "security_token" in message
    with pytest.raises(BadInput):
        CONFIG_SCHEMA.validate({**EXAMPLE_CONFIG, "timeout": "soon"}, resolve_env=False)


def test_plain_http_is_refused_for_a_real_host(ctx: RequestContext) -> None:
    conf = CONFIG_SCHEMA.validate(
        {"session_id": "x", "instance_url": "http://acme.my.salesforce.com"}, resolve_env=False
    )
    with pytest.raises(BadInput) as raised:
        plugin.seatgate_check_connection(product="salesforce", settings=conf, ctx=ctx)
    assert "https" in str(raised.value) and ctx.requests == 0


def test_only_loopback_urls_are_rewritten_to_http() -> None:
    real = Client(
        "salesforce", {"session_id": "x", "instance_url": "https://acme.my.salesforce.com"}
    )
    assert real.session.rewrites == {}
    local = Client("salesforce", {"session_id": "x", "instance_url": "http://127.0.0.1:8123"})
    assert isinstance(local.session, LoopbackSession)
    assert local.session.rewrites["https://127.0.0.1:8123"] == "http://127.0.0.1:8123"
    assert not any("salesforce.com" in prefix for prefix in local.session.rewrites)


# -- the sandbox speaks only the SOQL it knows ----------------------------------------------------


def _code(exc: SalesforceMalformedRequest) -> str:
    content: Any = exc.content
    return str(content[0]["errorCode"])


def test_sandbox_refuses_soql_it_does_not_know(sandbox: SalesforceSandbox) -> None:
    sf = Salesforce(
        session_id=sandbox.SESSION_ID,
        instance_url=sandbox.url.replace("http://", "https://"),
        session=LoopbackSession(5, {sandbox.url.replace("http", "https"): sandbox.url}),
    )
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sf.query("SELECT Idx FROM User")
    assert _code(raised.value) == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sf.query("SELECT Id FROM User WHERE Email LIKE 'a%'")
    assert _code(raised.value) == "MALFORMED_QUERY"
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sf.query("SELECT Id FROM User WHERE (CallCenterId != null OR UserType = 'Standard')")
    assert _code(raised.value) == "MALFORMED_QUERY"
    small = sf.query("SELECT Id FROM User", headers={"Sforce-Query-Options": "batchSize=50"})
    # batchSize is clamped to 200..2000 (the knob page_size=7 caps it further here).
    assert len(small["records"]) == 7 and small["totalSize"] == 30 and not small["done"]


# -- the sandbox's counters (the benchmark's "requests = the minimum") ---------------------------


@pytest.mark.parametrize(("auth", "logins"), [("password", 1), ("jwt", 1), ("session", 0)])
def test_logins_are_counted_apart_from_the_query_pages(
    sandbox: SalesforceSandbox, ctx: RequestContext, auth: str, logins: int
) -> None:
    assert len(pull(sandbox, ctx, auth=auth)) == 30
    assert sandbox.auth_requests == logins
    assert sandbox.requests - sandbox.auth_requests == 5  # 30 users at 7 a page


def test_pull_closed_early_leaves_no_request_running(ctx: RequestContext) -> None:
    with SalesforceSandbox(4500) as sb:
        conf = settings(sb, auth="session")
        pages = plugin.seatgate_pull_users(product="salesforce", settings=conf, since=None, ctx=ctx)
        next(pages)
        pages.close()  # cancels the page read ahead, or waits for it if it has started
        assert not [t for t in threading.enumerate() if t.name.startswith("salesforce-pull")]
        assert sb.requests in (1, 2)
