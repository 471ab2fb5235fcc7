"""The Oracle B2C Service adapter against its sandbox, over HTTP: wire format, paging boundaries,
throttling, auth modes, errors and the mapping."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seatgate.adapters.oracle import plugin
from seatgate.adapters.oracle.adapter import (
    CONFIG_SCHEMA,
    EXAMPLE_CONFIG,
    LOOKBACK_SECONDS,
    MAX_ROWS,
    Client,
    Columns,
    options,
    parse_flag,
    parse_stamp,
    roql_stamp,
    to_users,
)
from seatgate.adapters.oracle.sandbox import OracleSandbox, parse_query, split_queries
from seatgate.core.bootstrap import App
from seatgate.core.errors import (
    AdapterError,
    AuthFailed,
    BadInput,
    MalformedResponse,
    QuotaExhausted,
    TransientError,
)
from seatgate.core.plugins import ExternalUser, RequestContext, RetryPolicy
from seatgate.core.plugins.manager import build_plugin_manager
from seatgate.core.testing.setup import account_with_contract

ADMIN = "admin@example.com"


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def ctx(sleeps: Sleeps) -> RequestContext:
    return RequestContext(RetryPolicy(attempts=3, sleep=sleeps))


@pytest.fixture
def sandbox() -> Iterator[OracleSandbox]:
    with OracleSandbox(45) as sb:
        sb.page_size = 20  # three pages: 20, 20, 5
        yield sb


def settings_of(sb: OracleSandbox, **more: Any) -> dict[str, Any]:
    return CONFIG_SCHEMA.validate({**sb.settings(), **more}, resolve_env=False)


def pull(
    sb: OracleSandbox, ctx: RequestContext, since: dt.datetime | None = None, **more: Any
) -> list[list[ExternalUser]]:
    pages = plugin.seatgate_pull_users(
        product="oracle_sc", settings=settings_of(sb, **more), since=since, ctx=ctx
    )
    return [list(p.users) for p in pages]


def flat(pages: list[list[ExternalUser]]) -> list[ExternalUser]:
    return [u for page in pages for u in page]


# -- wire format -------------------------------------------------------------------------------


def test_a_pull_sends_the_count_and_keyset_pages_as_roql(
    sandbox: OracleSandbox, ctx: RequestContext
) -> None:
    pages = pull(sandbox, ctx)
    assert [len(p) for p in pages] == [20, 20, 5]
    assert sandbox.requests == 3  # COUNT rode with the first page: no request for an empty one
    select = (
        "SELECT ID, UpdatedTime, Login, LookupName, Emails.Address, "
        "Attributes.PermanentlyDisabled, Attributes.AccountLocked, Profile.Name, StaffGroup.Name "
        "FROM Account WHERE (Emails.AddressType.ID = 0)"
    )
    assert list(sandbox.queries) == [
        "SELECT COUNT(ID) FROM Account WHERE (Emails.AddressType.ID = 0)",
        f"{select} AND ID > 0 ORDER BY ID LIMIT {MAX_ROWS}",
        f"{select} AND ID > 20 ORDER BY ID LIMIT {MAX_ROWS}",
        f"{select} AND ID > 40 ORDER BY ID LIMIT {MAX_ROWS}",
    ]


def test_every_call_carries_the_application_context_utc_and_the_echoed_qos_token(
    sandbox: OracleSandbox, ctx: RequestContext
) -> None:
    pull(sandbox, ctx, application_context="acme contact center sync")
    headers = sandbox.last_headers
    assert headers["osvc-crest-application-context"] == "acme contact center sync"
    assert headers["osvc-crest-time-utc"] == "yes"
    assert headers["authorization"] == "Basic"
    assert headers["osvc-crest-api-access-token"]  # the previous answer's, echoed
    assert sandbox.unechoed == 0


def test_the_site_refuses_a_call_without_the_application_context(sandbox: OracleSandbox) -> None:
    # What the header is for: Connect REST v1.4 answers 400 without it.
    s = sandbox.settings()
    answer = httpx.get(
        f"{sandbox.url}/services/rest/connect/v1.4/queryResults",
        params={"query": "SELECT ID FROM Account LIMIT 1"},
        auth=(s["username"], s["password"]),
    )
    assert answer.status_code == 400
    assert "Application-Context" in answer.json()["detail"]


def test_times_are_asked_in_utc_so_the_stamps_are_exact(
    sandbox: OracleSandbox, ctx: RequestContext
) -> None:
    users = {u.external_id: u for u in flat(pull(sandbox, ctx))}
    for account in sandbox.store.users:
        assert users[account.id].modified_at == account.modified_at


def test_an_application_context_over_40_characters_is_refused_before_any_request(
    sandbox: OracleSandbox, ctx: RequestContext
) -> None:
    with pytest.raises(BadInput) as raised:
        pull(sandbox, ctx, application_context="x" * 41)
    assert "40" in str(raised.value) and "\n" not in str(raised.value)
    assert sandbox.requests == 0
    assert (
        len(options(settings_of(sandbox, application_context="x" * 40)).application_context) == 40
    )


def test_the_adapter_declares_the_largest_page_and_a_lookback() -> None:
    info = plugin.seatgate_adapter_info()
    assert info.page_size == MAX_ROWS == 20_000
    assert info.lookback_seconds == LOOKBACK_SECONDS > 0
    assert info.products == ("oracle_sc",) and "managed_package" not in info.features["oracle_sc"]
    CONFIG_SCHEMA.validate(EXAMPLE_CONFIG, resolve_env=False)


def test_the_plugin_loads_as_a_builtin() -> None:
    plugins = build_plugin_manager(builtins=("seatgate.adapters.oracle",), strict=True)
    assert plugins.problems == []
    assert plugins.adapter("oracle_sc").adapter_info().name == "oracle"


# -- paging boundaries -------------------------------------------------------------------------


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(n=st.integers(min_value=0, max_value=45), page=st.integers(min_value=1, max_value=25))
def test_a_full_pull_reads_each_account_once_in_the_fewest_requests(
    sandbox: OracleSandbox, n: int, page: int
) -> None:
    sandbox.page_size = page
    before = sandbox.requests
    users = flat(pull(sandbox, RequestContext(), user_filter=f"ID <= {n}"))
    assert [u.external_id for u in users] == [str(i) for i in range(1, n + 1)]
    # With the count, the last page is known: ceil(n / page) requests, one when nobody matches.
    assert sandbox.requests - before == max(1, math.ceil(n / page))


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(n=st.integers(min_value=0, max_value=45), page=st.integers(min_value=1, max_value=25))
def test_without_the_count_the_pull_stops_at_the_first_empty_page(
    sandbox: OracleSandbox, n: int, page: int
) -> None:
    sandbox.page_size = page
    before = sandbox.requests
    users = flat(pull(sandbox, RequestContext(), user_filter=f"ID <= {n}", count_first=False))
    assert [u.external_id for u in users] == [str(i) for i in range(1, n + 1)]
    assert sandbox.requests - before == math.ceil(n / page) + 1
    assert not any("COUNT" in q for q in sandbox.queries)


def test_accounts_with_several_addresses_are_each_read_once_and_none_is_left_out(
    sandbox: OracleSandbox, ctx: RequestContext
) -> None:
    """Emails is a list field: with no address-type filter a page holds a row per address, and
    COUNT(ID) counts accounts. The pull counts the accounts it read, not the rows: it had
    stopped once the rows reached the count, before accounts 31-45 (a full sync then
    deactivated them)."""
    sandbox.more_addresses = {n: [f"alt{n}@example.com"] for n in range(1, 46)}
    users = flat(pull(sandbox, ctx, email_filter=""))
    assert [u.external_id for u in users] == [str(n) for n in range(1, 46)]
    assert users[0].email == sandbox.store.by_number[1].email  # the first address read is kept


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    addresses=st.lists(st.integers(min_value=0, max_value=3), min_size=45, max_size=45),
    page=st.integers(min_value=1, max_value=25),
    count_first=st.booleans(),
)
def test_every_account_is_read_once_however_many_rows_its_addresses_make(
    sandbox: OracleSandbox, addresses: list[int], page: int, count_first: bool
) -> None:
    sandbox.page_size = page
    sandbox.more_addresses = {
        n: [f"alt{k}.{n}@example.com" for k in range(extra)]
        for n, extra in enumerate(addresses, 1)
        if extra
    }
    users = flat(pull(sandbox, RequestContext(), email_filter="", count_first=count_first))
    assert [u.external_id for u in users] == [str(n) for n in range(1, 46)]


def test_a_site_without_count_is_read_with_count_first_off(
    sandbox: OracleSandbox, ctx: RequestContext
) -> None:
    sandbox.count_supported = False
    with pytest.raises(AdapterError) as raised:
        pull(sandbox, ctx)
    assert "400" in str(raised.value) and ctx.retries == 0
    assert len(flat(pull(sandbox, ctx, count_first=False))) == 45


def test_an_account_deleted_during_the_pull_costs_one_empty_page_and_no_error(
    sandbox: OracleSandbox, ctx: RequestContext
) -> None:
    pages = plugin.seatgate_pull_users(
        product="oracle_sc", settings=settings_of(sandbox), since=None, ctx=ctx
    )
    first = list(next(pages).users)
    gone = sandbox.store.by_number.pop(44)  # deleted in the CRM after the count was taken
    sandbox.store.users.remove(gone)
    rest = [u for page in pages for u in page.users]
    assert len(first) + len(rest) == 44
    assert sandbox.requests == 4  # the count promised one more account: one more (empty) page


def test_an_account_saved_during_the_pull_is_neither_skipped_nor_read_twice(
    sandbox: OracleSandbox, ctx: RequestContext
) -> None:
    pages = plugin.seatgate_pull_users(
        product="oracle_sc", settings=settings_of(sandbox), since=None, ctx=ctx
    )
    users = list(next(pages).users)
    sandbox.store.change([3, 30])  # keyset on ID: a new UpdatedTime moves nobody
    users += [u for page in pages for u in page.users]
    assert sorted(int(u.external_id) for u in users) == list(range(1, 46))


def test_a_page_size_above_the_api_maximum_is_refused(sandbox: OracleSandbox) -> None:
    with pytest.raises(BadInput) as raised:
        options(settings_of(sandbox, page_size=MAX_ROWS + 1))
    assert "20000" in str(raised.value)


def test_the_site_cuts_a_result_at_20000_rows_and_the_pull_still_reads_everyone() -> None:
    with OracleSandbox(MAX_ROWS + 3) as sb:
        ctx = RequestContext()
        pages = pull(sb, ctx, page_size=MAX_ROWS)
        assert [len(p) for p in pages] == [MAX_ROWS, 3]
        assert sb.requests == 2


# -- incremental pulls -------------------------------------------------------------------------


def test_an_incremental_pull_includes_its_boundary_and_floors_it_to_the_second(
    sandbox: OracleSandbox, ctx: RequestContext
) -> None:
    sandbox.store.change([4, 9])
    boundary = sandbox.store.by_number[4].modified_at
    assert {u.external_id for u in flat(pull(sandbox, ctx, since=boundary))} == {"4", "9"}
    later = boundary + dt.timedelta(microseconds=999_999)
    assert {u.external_id for u in flat(pull(sandbox, ctx, since=later))} == {"4", "9"}
    after = boundary + dt.timedelta(seconds=1)
    assert {u.external_id for u in flat(pull(sandbox, ctx, since=after))} == {"9"}
    assert "UpdatedTime >= '" + roql_stamp(after) + "'" in sandbox.queries[-1]


@given(st.datetimes(timezones=st.just(dt.UTC)))
def test_roql_stamp_floors_to_the_second(moment: dt.datetime) -> None:
    back = dt.datetime.fromisoformat(roql_stamp(moment))
    assert back <= moment < back + dt.timedelta(seconds=1)


# -- throttling --------------------------------------------------------------------------------


def test_the_wait_every_answer_asks_for_is_slept_before_the_next_call(
    sandbox: OracleSandbox, ctx: RequestContext, sleeps: Sleeps
) -> None:
    sandbox.next_request_after_ms = 250
    pull(sandbox, ctx)
    assert sleeps == [0.25, 0.25]  # three calls: a wait before the second and the third


def test_a_429_waits_its_next_request_after_once(
    sandbox: OracleSandbox, ctx: RequestContext, sleeps: Sleeps
) -> None:
    sandbox.next_request_after_ms = 100
    sandbox.retry_after = 7
    pages = plugin.seatgate_pull_users(
        product="oracle_sc", settings=settings_of(sandbox), since=None, ctx=ctx
    )
    next(pages)
    sandbox.inject("rate_limit")
    assert sum(len(p.users) for p in pages) == 25
    # The 429's 7 s are waited by the retry policy, not a second time before the retry.
    assert sorted(sleeps) == [0.1, 0.1, 7.0]
    assert ctx.retries == 1


def test_a_spent_allowance_ends_the_run_without_retrying(
    sandbox: OracleSandbox, ctx: RequestContext, sleeps: Sleeps
) -> None:
    sandbox.inject("quota")
    with pytest.raises(QuotaExhausted) as raised:
        pull(sandbox, ctx)
    assert ctx.retries == 0 and sleeps == []
    assert "\n" not in str(raised.value)


def test_a_timeout_is_retried(sandbox: OracleSandbox, ctx: RequestContext) -> None:
    sandbox.timeout_seconds = 1.5
    sandbox.inject("timeout")
    assert len(flat(pull(sandbox, ctx, timeout=0.5))) == 45
    assert ctx.retries == 1


def test_timeouts_past_the_attempts_fail_as_transient(
    sandbox: OracleSandbox, ctx: RequestContext
) -> None:
    sandbox.timeout_seconds = 1.0
    sandbox.inject("timeout", 3)
    with pytest.raises(TransientError) as raised:
        pull(sandbox, ctx, timeout=0.3)
    assert "did not answer in time" in str(raised.value)


def test_a_truncated_page_fails_without_retry(sandbox: OracleSandbox, ctx: RequestContext) -> None:
    pages = plugin.seatgate_pull_users(
        product="oracle_sc", settings=settings_of(sandbox), since=None, ctx=ctx
    )
    next(pages)
    sandbox.inject("truncated")
    with pytest.raises(MalformedResponse) as raised:
        list(pages)
    assert ctx.retries == 0 and "not JSON" in str(raised.value)


def test_a_result_set_whose_count_disagrees_with_its_rows_is_refused() -> None:
    # A shape the sandbox never sends (rows lost between Oracle and us): a transport answers.
    def answer(request: httpx.Request) -> httpx.Response:
        rows = [["1", "2025-01-01T00:00:00Z"]]
        return httpx.Response(200, json={"items": [{"count": 2, "columnNames": [], "rows": rows}]})

    opts = options(
        CONFIG_SCHEMA.validate(
            {"base_url": "https://site.example", "session_id": "s"}, resolve_env=False
        )
    )
    client = Client(opts, transport=httpx.MockTransport(answer))
    with client, pytest.raises(MalformedResponse, match="cut short"):
        client.query(RequestContext(), ["SELECT ID FROM Account"])


# -- auth modes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "scheme"),
    [("basic", "Basic"), ("session", "Session"), ("bearer", "Bearer"), ("oauth", "Bearer")],
)
def test_each_auth_mode_sends_its_scheme(auth: str, scheme: str, ctx: RequestContext) -> None:
    with OracleSandbox(5, auth=auth) as sb:
        assert len(flat(pull(sb, ctx))) == 5
        assert sb.last_headers["authorization"] == scheme
        assert sb.auth_requests == (1 if auth == "oauth" else 0)


def test_an_expired_oauth_token_is_refreshed_once(ctx: RequestContext) -> None:
    with OracleSandbox(12, auth="oauth") as sb:
        sb.page_size = 5
        pages = plugin.seatgate_pull_users(
            product="oracle_sc", settings=settings_of(sb), since=None, ctx=ctx
        )
        users = list(next(pages).users)
        sb.inject("expired_token")
        users += [u for page in pages for u in page.users]
        assert len(users) == 12
        assert ctx.refreshes == 1 and sb.tokens_issued == 2


@pytest.mark.parametrize(
    ("auth", "setting"), [("session", "session_id"), ("bearer", "access_token")]
)
def test_an_expired_session_or_static_token_names_what_to_renew(
    auth: str, setting: str, ctx: RequestContext
) -> None:
    with OracleSandbox(12, auth=auth) as sb:
        sb.inject("expired_token")
        with pytest.raises(AuthFailed) as raised:
            pull(sb, ctx)
        assert setting in str(raised.value) and "\n" not in str(raised.value)
        assert ctx.retries == 0


def test_two_sets_of_credentials_are_refused(sandbox: OracleSandbox) -> None:
    settings = settings_of(sandbox, session_id="abc")
    with pytest.raises(BadInput) as raised:
        options(settings)
    assert "basic and session" in str(raised.value)


def test_credentials_never_show_in_a_repr(sandbox: OracleSandbox) -> None:
    opts = options(settings_of(sandbox))
    with Client(opts) as client:
        for text in (repr(opts), repr(client), str(client.auth_headers().keys())):
            assert sandbox.password not in text


# -- errors ------------------------------------------------------------------------------------


def test_a_misspelt_field_shows_at_the_connection_check(
    sandbox: OracleSandbox, ctx: RequestContext
) -> None:
    settings = settings_of(sandbox, role_fields=["Profile.Nmae"])
    with pytest.raises(AdapterError) as raised:
        plugin.seatgate_check_connection(product="oracle_sc", settings=settings, ctx=ctx)
    message = str(raised.value)
    assert "400" in message and "role_fields" in message and "\n" not in message
    assert "Profile.Nmae" in message  # Oracle's own words say which field
    assert ctx.retries == 0


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("user_filter", "Login = 'a' ORDER BY Login"),
        ("user_filter", "ID > 1; DELETE"),
        ("user_filter", "ID > 1 LIMIT 5"),
        ("email_field", "Emails.Address, Password"),
        ("role_fields", ["Profile.Name", "1bad"]),
        ("install_object", "Installation"),
        ("base_url", "http://site.example"),
        ("timeout", 0),
    ],
)
def test_bad_settings_are_one_line_naming_the_setting(
    sandbox: OracleSandbox, key: str, value: Any
) -> None:
    with pytest.raises(BadInput) as raised:
        options(settings_of(sandbox, **{key: value}))
    assert key in str(raised.value) and "\n" not in str(raised.value)


def test_a_quoted_order_by_in_a_filter_is_a_value_not_paging(sandbox: OracleSandbox) -> None:
    assert options(settings_of(sandbox, user_filter="Login = 'order by'")).user_filter


def test_install_is_idempotent_and_uninstall_removes_the_record(sandbox: OracleSandbox) -> None:
    settings = settings_of(sandbox)
    assert plugin.seatgate_install(account="ACME Corp", product="oracle_sc", settings=settings)
    assert plugin.seatgate_install(account="ACME Corp", product="oracle_sc", settings=settings)
    assert sandbox.installations == {"ACME Corp"}
    (record,) = sandbox.records.values()
    assert record["Product"] == "oracle_sc" and record["InstallKey"].startswith("seatgate.")
    assert plugin.seatgate_uninstall(account="ACME Corp", product="oracle_sc", settings=settings)
    assert sandbox.records == {} and sandbox.installations == set()


def test_a_refused_install_write_names_the_permission(sandbox: OracleSandbox) -> None:
    sandbox.deny_writes = True
    with pytest.raises(AuthFailed) as raised:
        plugin.seatgate_install(account="acme", product="oracle_sc", settings=settings_of(sandbox))
    message = str(raised.value)
    assert "403" in message and "SeatGate.Installation" in message and "\n" not in message
    assert sandbox.records == {}


def test_a_missing_install_object_says_to_deploy_it(sandbox: OracleSandbox) -> None:
    settings = settings_of(sandbox, install_object="Acme.Nothing")
    with pytest.raises(AdapterError) as raised:
        plugin.seatgate_install(account="acme", product="oracle_sc", settings=settings)
    assert "Acme.Nothing" in str(raised.value) and "deploy" in str(raised.value)


def test_accounts_differing_in_odd_characters_get_their_own_installation(
    sandbox: OracleSandbox,
) -> None:
    settings = settings_of(sandbox)
    for account in ("o'brien", "o_brien", "o brien"):
        plugin.seatgate_install(account=account, product="oracle_sc", settings=settings)
    assert sandbox.installations == {"o'brien", "o_brien", "o brien"}
    plugin.seatgate_uninstall(account="o'brien", product="oracle_sc", settings=settings)
    assert sandbox.installations == {"o_brien", "o brien"}


# -- the mapping -------------------------------------------------------------------------------


def test_disabled_and_locked_accounts_are_inactive_and_roles_are_profile_and_group(
    sandbox: OracleSandbox, ctx: RequestContext
) -> None:
    sandbox.store.deactivate([2])
    sandbox.store.change([5], extra={"locked": True})
    sandbox.store.change([6], roles=["Agent", "Agent"])
    users = {u.external_id: u for u in flat(pull(sandbox, ctx))}
    assert users["2"].active is False and users["5"].active is False
    assert sum(not u.active for u in users.values()) == 2
    first = sandbox.store.by_number[1]
    assert users["1"].roles == tuple(first.roles) and len(first.roles) == 2
    assert users["6"].roles == ("Agent",)
    assert users["1"].email == first.email and users["1"].name == first.name
    assert users["1"].raw == {"login": "user000001"}


def test_the_assumed_columns_are_settings(sandbox: OracleSandbox, ctx: RequestContext) -> None:
    sandbox.store.deactivate([2])
    users = {
        u.external_id: u
        for u in flat(
            pull(
                sandbox,
                ctx,
                name_field="Name.First",
                role_fields=["StaffGroup.Name"],
                inactive_fields=[],
                email_filter="",
            )
        )
    }
    first = sandbox.store.by_number[1]
    assert users["1"].name == first.first_name
    assert users["1"].roles == (first.roles[1],)
    assert users["2"].active is True  # no inactive column: nobody is inactive
    assert "AddressType" not in sandbox.queries[-1]


def test_a_user_filter_restricts_the_accounts(sandbox: OracleSandbox, ctx: RequestContext) -> None:
    users = flat(pull(sandbox, ctx, user_filter="StaffGroup.Name = 'Contact Center'"))
    expected = {str(u.number) for u in sandbox.store.users if u.roles[1] == "Contact Center"}
    assert {u.external_id for u in users} == expected and 0 < len(expected) < 45


def test_rows_out_of_id_order_stop_the_pull_and_repeated_ids_are_dropped() -> None:
    row = ["{}", "2025-01-01T00:00:00.000Z", "l", "n", "e@x.com", "0", "0", "Agent", None]
    rows = [[row[0].format(i), *row[1:]] for i in (3, 3, 4)]
    users, last = to_users(rows, Columns(), 2)
    assert [u.external_id for u in users] == ["3", "4"] and last == 4
    assert users[0].roles == ("Agent",)
    with pytest.raises(MalformedResponse, match="ID order"):
        to_users([[row[0].format(i), *row[1:]] for i in (5, 4)], Columns(), 0)
    with pytest.raises(MalformedResponse, match="columns"):
        to_users([row[:4]], Columns(), 0)


@given(st.text(max_size=6))
def test_a_flag_is_true_false_or_refused(text: str) -> None:
    value = text.strip().lower()
    if value in {"1", "true", "yes", "y"}:
        assert parse_flag(text, "c") is True
    elif value in {"0", "false", "no", "n", ""}:
        assert parse_flag(text, "c") is False
    else:
        with pytest.raises(ValueError, match="not a boolean"):
            parse_flag(text, "c")


def test_stamps_with_and_without_a_zone_are_utc() -> None:
    utc = dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)
    assert parse_stamp("2024-05-01T10:00:00.000Z") == utc
    assert parse_stamp("2024-05-01T10:00:00") == utc
    assert parse_stamp("2024-05-01T12:00:00+02:00") == utc
    assert parse_stamp(None) is None and parse_stamp("") is None
    with pytest.raises(ValueError, match="does not parse"):
        parse_stamp("yesterday")


@pytest.mark.parametrize(
    ("at", "value", "problem"),
    [
        (1, "yesterday", "UpdatedTime: a time that does not parse: 'yesterday'"),
        (1, 20240501, "UpdatedTime: a time that is not a string (int)"),
        (5, "maybe", "Attributes.PermanentlyDisabled = 'maybe', not a boolean"),
        (3, ["n"], "a name that is no text"),
        (4, {"a": 1}, "an email that is no text"),
        (7, 3, "a role that is no text (int)"),
    ],
)
def test_an_unreadable_value_is_the_accounts_problem(at: int, value: Any, problem: str) -> None:
    """One account's value that cannot be read is that account's problem (the core quarantines
    it); the page goes on."""
    row = ["{}", "2025-01-01T00:00:00.000Z", "l", "n", "e@x.com", "0", "0", "Agent", None]
    bad = [*row]
    bad[at] = value
    rows = [[r[0].format(i), *r[1:]] for i, r in ((3, row), (4, bad), (5, row))]
    users, last = to_users(rows, Columns(), 2)
    assert [(u.external_id, u.problem) for u in users] == [("3", None), ("4", problem), ("5", None)]
    assert users[1].email == (None if at == 4 else "e@x.com") and last == 5


# -- the sandbox's ROQL ------------------------------------------------------------------------


def test_the_sandbox_splits_queries_outside_string_literals() -> None:
    assert split_queries("SELECT ID FROM Account WHERE Login = 'a;b';SELECT ID FROM Account;") == [
        "SELECT ID FROM Account WHERE Login = 'a;b'",
        "SELECT ID FROM Account",
    ]
    query = parse_query(
        "select ID from Account where (Login like 'u%' or ID in (1, 2)) and not ID = 3 "
        "order by UpdatedTime desc limit 5 offset 2"
    )
    assert (query.order, query.limit, query.offset) == (("UpdatedTime", True), 5, 2)


# -- through the sync engine -------------------------------------------------------------------


def test_a_sync_seats_the_holders_of_an_activated_profile_and_an_incremental_one_sees_a_change(
    app: App, sandbox: OracleSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = sandbox.settings()
    monkeypatch.setenv("ORACLE_SC_TEST_PASSWORD", raw["password"])
    config = {**raw, "password": "${ORACLE_SC_TEST_PASSWORD}", "activated_roles": ["Supervisor"]}
    account_with_contract(app, "acme", "oracle_sc", admin=ADMIN, seats=100)
    app.installs.install("acme", "oracle_sc", config, ADMIN)
    assert sandbox.installations == {"acme"}

    summary = app.sync.full_sync("acme", "oracle_sc")
    holders = sorted(u.email for u in sandbox.store.users if "Supervisor" in u.roles)
    assert summary.outcome == "succeeded" and summary.pulled == 45
    assert 0 < summary.seated == len(holders) < 45
    assert sorted(app.seats.seated_emails("acme", "oracle_sc")) == holders

    newcomer = next(u for u in sandbox.store.users if "Supervisor" not in u.roles)
    sandbox.store.change([newcomer.number], roles=["Supervisor", "Back Office"])
    app.clock.advance(hours=1)  # type: ignore[attr-defined]
    before = sandbox.requests
    again = app.sync.sync("acme", "oracle_sc").summary
    assert again.full is False and again.seated == 1
    assert newcomer.email in app.seats.seated_emails("acme", "oracle_sc")
    # The pull re-reads the lookback window before the cursor (LOOKBACK_SECONDS): the 45 users,
    # stamped a second apart, come again — the count and two pages — and change nothing else.
    assert again.pulled == 45 and again.updated == 1 and again.created == 0
    assert sandbox.requests - before == 3
