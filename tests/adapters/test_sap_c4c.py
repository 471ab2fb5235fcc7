"""The SAP Cloud for Customer adapter against its sandbox, over HTTP: the OData wire format,
server paging, ``/Date()/`` values, both auth modes, OData errors, the configurable mapping, the
role changes of an incremental pull, and the CSRF-checked install writes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seatgate.adapters.sap_c4c import plugin
from seatgate.adapters.sap_c4c.adapter import (
    CONFIG_SCHEMA,
    EXAMPLE_CONFIG,
    LOOKBACK_SECONDS,
    SapC4CAdapter,
)
from seatgate.adapters.sap_c4c.client import (
    Client,
    encode_query,
    filter_literal,
    format_date,
    parse_date,
    quote_string,
)
from seatgate.adapters.sap_c4c.sandbox import (
    ROLES,
    FilterError,
    SapC4CSandbox,
    matches,
    odata_date,
    parse_filter,
)
from seatgate.core.errors import (
    AuthFailed,
    BadInput,
    MalformedResponse,
    QuotaExhausted,
    TransientError,
)
from seatgate.core.plugins import ExternalUser, RequestContext, RetryPolicy, SandboxUser

UTC = dt.UTC


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
def sandbox() -> Iterator[SapC4CSandbox]:
    # 2,345 employees at the server's real page of 1,000: pages of 1,000, 1,000 and 345.
    with SapC4CSandbox(2345) as sb:
        yield sb


@pytest.fixture
def small() -> Iterator[SapC4CSandbox]:
    with SapC4CSandbox(12) as sb:
        sb.page_size = 5
        yield sb


def settings_of(sb: SapC4CSandbox, **more: Any) -> dict[str, Any]:
    return CONFIG_SCHEMA.validate({**sb.settings(), **more}, resolve_env=False)


def pull(
    sb: SapC4CSandbox,
    ctx: RequestContext,
    since: dt.datetime | None = None,
    roles: frozenset[str] = frozenset(),
    **more: Any,
) -> list[list[ExternalUser]]:
    pages = plugin.seatgate_pull_users(
        product="sap_c4c",
        settings=settings_of(sb, **more),
        since=since,
        ctx=ctx,
        activated_roles=roles,
    )
    return [list(page.users) for page in pages]


def flat(pages: list[list[ExternalUser]]) -> list[ExternalUser]:
    return [u for page in pages for u in page]


def listings(sb: SapC4CSandbox, collection: str = "EmployeeCollection") -> list[Any]:
    return [r for r in sb.wire if r.path.rstrip("/").endswith(collection)]


# -- the wire format -------------------------------------------------------------------------------
def test_full_pull_asks_json_with_the_mapped_fields_roles_expanded_in_key_order(
    sandbox: SapC4CSandbox, ctx: RequestContext
) -> None:
    users = flat(pull(sandbox, ctx))
    assert len(users) == 2345
    first = listings(sandbox)[0]
    assert first.path == "/sap/c4c/odata/v1/c4codataapi/EmployeeCollection"
    assert first.arg("$format") == "json"
    assert first.arg("$expand") == "EmployeeUserBusinessRoleAssignment"
    assert first.arg("$orderby") == "ObjectID"
    assert first.arg("$select").split(",") == [
        "ObjectID",
        "Email",
        "UserLockedIndicator",
        "EntityLastChangedOn",
        "BusinessPartnerFormattedName",
        "UserID",
        "EmployeeUserBusinessRoleAssignment/BusinessRoleID",
    ]
    assert first.arg("$filter") is None
    assert first.headers["accept"] == "application/json"
    assert "x-csrf-token" not in first.headers, "a read needs no CSRF token"


def test_query_keeps_odata_dollars_and_escapes_spaces() -> None:
    query = encode_query(
        {
            "$format": "json",
            "$filter": "EntityLastChangedOn ge datetimeoffset'2024-05-01T10:00:00Z'",
        }
    )
    assert query == (
        "$format=json&$filter=EntityLastChangedOn%20ge%20datetimeoffset'2024-05-01T10:00:00Z'"
    )
    assert encode_query({"$filter": "AccountID eq 'a&b #1'"}) == (
        "$filter=AccountID%20eq%20'a%26b%20%231'"
    )
    assert quote_string("O'Brien") == "'O''Brien'"


def test_filter_literal_is_utc_to_the_microsecond_never_rounded_up() -> None:
    at = dt.datetime(2024, 5, 1, 12, 0, 0, 999999, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert filter_literal(at) == "datetimeoffset'2024-05-01T10:00:00.999999Z'"
    assert filter_literal(dt.datetime(2024, 5, 1, tzinfo=UTC)) == (
        "datetimeoffset'2024-05-01T00:00:00Z'"
    )


def test_check_connection_is_one_request_for_one_row(
    sandbox: SapC4CSandbox, ctx: RequestContext
) -> None:
    before = sandbox.requests
    assert plugin.seatgate_check_connection("sap_c4c", settings_of(sandbox), ctx) is True
    assert sandbox.requests - before == 1
    asked = listings(sandbox)[-1]
    assert (asked.arg("$top"), asked.arg("$select")) == ("1", "ObjectID")


# -- paging ----------------------------------------------------------------------------------------
def test_pages_are_the_servers_and_cost_the_minimum(
    sandbox: SapC4CSandbox, ctx: RequestContext
) -> None:
    before = sandbox.requests
    pages = pull(sandbox, ctx)
    assert [len(p) for p in pages] == [1000, 1000, 345]
    assert sandbox.requests - before == 3 == ctx.requests
    tokens = [r.arg("$skiptoken") for r in listings(sandbox)]
    assert tokens == [None, "1001", "2001"]
    # The next links keep the query: the later pages are as selective as the first.
    assert {r.arg("$select") for r in listings(sandbox)} == {listings(sandbox)[0].arg("$select")}
    ids = [u.external_id for u in flat(pages)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_a_row_pushed_onto_the_next_page_is_yielded_once(
    small: SapC4CSandbox, ctx: RequestContext
) -> None:
    """C4C's skip token counts rows: an employee created during the pull with a key before the
    page being read pushes a row already read onto the next page."""
    pages = plugin.seatgate_pull_users(
        product="sap_c4c",
        settings=settings_of(small),
        since=None,
        ctx=ctx,
        activated_roles=frozenset(),
    )
    first = next(pages).users
    stamp = small.store.now + dt.timedelta(seconds=1)
    early = SandboxUser(
        number=0,
        id="00163E03A0701ED20000000000000000",
        email="early@example.com",
        first_name="Early",
        last_name="Bird",
        active=True,
        roles=[ROLES[0]],
        created_at=stamp,
        modified_at=stamp,
    )
    small.store.users.append(early)
    small.store.by_number[0] = early
    small.store._clock = stamp
    # The read-ahead had already fetched page 2 before the insert; page 3 on starts one row late.
    rest = [u for page in pages for u in page.users]
    ids = [u.external_id for u in [*first, *rest]]
    assert len(ids) == len(set(ids)) == 12


def test_next_link_stays_on_the_tenant_and_the_collection(sandbox: SapC4CSandbox) -> None:
    client = Client(settings_of(sandbox))
    current = "/sap/c4c/odata/v1/c4codataapi/EmployeeCollection?$format=json&$top=5"
    here = sandbox.url + "/sap/c4c/odata/v1/c4codataapi/EmployeeCollection"
    assert client.next_url(f"{here}?$skiptoken=1001&$format=json", current) == (
        "/sap/c4c/odata/v1/c4codataapi/EmployeeCollection?$skiptoken=1001&$format=json"
    )
    # A relative link, and one without $format (the guide's Atom link has none).
    assert client.next_url("EmployeeCollection/?$skiptoken=1001", current) == (
        "/sap/c4c/odata/v1/c4codataapi/EmployeeCollection/?$skiptoken=1001&$format=json"
    )
    with pytest.raises(MalformedResponse, match="another host"):
        client.next_url(
            "https://evil.example/sap/c4c/odata/v1/c4codataapi/EmployeeCollection", current
        )
    with pytest.raises(MalformedResponse, match="another collection"):
        client.next_url(sandbox.url + "/sap/c4c/odata/v1/c4codataapi/AccountCollection", current)
    client.close()


@pytest.mark.parametrize(
    ("base_url", "link_origin"),
    [
        ("https://my123.crm.ondemand.com", "https://my123.crm.ondemand.com:443"),
        ("https://my123.crm.ondemand.com:443", "https://my123.crm.ondemand.com"),
        ("https://my123.crm.ondemand.com:443", "https://MY123.crm.ondemand.com"),
    ],
)
def test_a_next_link_that_writes_the_default_port_or_leaves_it_out_is_on_the_tenant(
    sandbox: SapC4CSandbox, base_url: str, link_origin: str
) -> None:
    """``https://h`` and ``https://h:443`` are one origin (RFC 6454): a tenant configured with
    the port, or answering links with it, had failed every pull at its second page."""
    client = Client({**settings_of(sandbox), "base_url": base_url})
    current = "/sap/c4c/odata/v1/c4codataapi/EmployeeCollection?$format=json&$top=5"
    link = f"{link_origin}/sap/c4c/odata/v1/c4codataapi/EmployeeCollection?$skiptoken=2"
    assert client.next_url(link, current) == (
        "/sap/c4c/odata/v1/c4codataapi/EmployeeCollection?$skiptoken=2&$format=json"
    )
    path = "/sap/c4c/odata/v1/c4codataapi/EmployeeCollection?$skiptoken=2"
    for elsewhere in ("https://my123.crm.ondemand.com:8443", "http://my123.crm.ondemand.com"):
        with pytest.raises(MalformedResponse, match="another host"):
            client.next_url(elsewhere + path, current)
    client.close()


# -- incremental pulls -----------------------------------------------------------------------------
def test_incremental_filters_on_the_stamp_inclusively(
    small: SapC4CSandbox, ctx: RequestContext
) -> None:
    small.store.change([4, 9])
    boundary = small.store.by_number[4].modified_at
    users = flat(pull(small, ctx, since=boundary))
    assert {u.email for u in users} == {"user000004@example.com", "user000009@example.com"}
    assert listings(small)[-1].arg("$filter") == (
        "(EntityLastChangedOn ge datetimeoffset'2025-01-01T00:00:13Z')"
    )
    assert [u.modified_at for u in users] == sorted(u.modified_at for u in users)
    # A naive cursor is UTC; one stamp later excludes the first change.
    later = flat(pull(small, ctx, since=boundary.replace(tzinfo=None) + dt.timedelta(seconds=1)))
    assert [u.email for u in later] == ["user000009@example.com"]


def test_incremental_with_a_scope_filter_sends_both(
    small: SapC4CSandbox, ctx: RequestContext
) -> None:
    small.store.change([2, 3])
    users = flat(
        pull(
            small,
            ctx,
            since=small.store.by_number[2].modified_at,
            filter="Email ne 'user000002@example.com'",
        )
    )
    assert {u.email for u in users} == {"user000003@example.com"}
    assert listings(small)[-1].arg("$filter") == (
        "(Email ne 'user000002@example.com') and "
        "(EntityLastChangedOn ge datetimeoffset'2025-01-01T00:00:13Z')"
    )


def test_role_granted_without_a_new_employee_stamp_is_read_with_activated_roles(
    small: SapC4CSandbox, ctx: RequestContext
) -> None:
    since = small.store.now + dt.timedelta(seconds=1)
    small.store.grant([7], ["Z_CTI_AGENT"])  # the employee's own stamp does not move
    small.store.change([3])
    before = small.requests
    users = flat(pull(small, ctx, since=since, roles=frozenset({"Z_CTI_AGENT"})))
    assert {u.email: u.roles for u in users} == {
        "user000003@example.com": (small.store.by_number[3].roles[0],),
        "user000007@example.com": ("Z_CTI_AGENT",),
    }
    # The changed employees, the changed assignments of the activated role, the employee by key.
    assert small.requests - before == 3
    grants = listings(small, "EmployeeUserBusinessRoleAssignmentCollection")[-1]
    assert grants.arg("$filter") == (
        "EntityLastChangedOn ge datetimeoffset'2025-01-01T00:00:13Z' and "
        "(BusinessRoleID eq 'Z_CTI_AGENT')"
    )
    assert listings(small)[-1].arg("$filter") == "(ObjectID eq '00163E03A0701ED20000000000000007')"


def test_role_changes_cost_nothing_without_activated_roles_or_when_switched_off(
    small: SapC4CSandbox, ctx: RequestContext
) -> None:
    since = small.store.now + dt.timedelta(seconds=1)
    small.store.grant([7], ["Z_CTI_AGENT"])
    assert flat(pull(small, ctx, since=since)) == []
    roles = frozenset({"Z_CTI_AGENT"})
    assert flat(pull(small, ctx, since=since, roles=roles, role_changes_collection="")) == []
    assert listings(small, "EmployeeUserBusinessRoleAssignmentCollection") == []
    # A full pull reads roles with the employees anyway.
    user7 = next(u for u in flat(pull(small, ctx)) if u.email == "user000007@example.com")
    assert user7.roles == ("Z_CTI_AGENT",)


def test_lookback_is_declared() -> None:
    info = plugin.seatgate_adapter_info()
    assert info.lookback_seconds == LOOKBACK_SECONDS == 600
    assert info.page_size == 1000 and info.supports_cursor


# -- /Date()/ values -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/Date(1714557600000)/", dt.datetime(2024, 5, 1, 10, 0, tzinfo=UTC)),
        ("/Date(1351534600660)/", dt.datetime(2012, 10, 29, 18, 16, 40, 660000, tzinfo=UTC)),
        ("/Date(1351534600660+0000)/", dt.datetime(2012, 10, 29, 18, 16, 40, 660000, tzinfo=UTC)),
        ("/Date(0+0060)/", dt.datetime(1969, 12, 31, 23, 0, tzinfo=UTC)),
        ("/Date(0-0030)/", dt.datetime(1970, 1, 1, 0, 30, tzinfo=UTC)),
        ("/Date(-1)/", dt.datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)),
    ],
)
def test_parse_date(raw: str, expected: dt.datetime) -> None:
    parsed = parse_date(raw)
    assert parsed == expected and parsed.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(
    "raw",
    [
        "2024-05-01T10:00:00Z",
        "/Date(abc)/",
        "/Date(1)",
        "/Date(1+60)/",
        "/Date(99999999999999999)/",
    ],
)
def test_parse_date_refuses(raw: str) -> None:
    with pytest.raises(ValueError):
        parse_date(raw)


_instants = st.datetimes(
    min_value=dt.datetime(1753, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
_offsets = st.none() | st.integers(min_value=-1439, max_value=1439)


@given(_instants, _offsets)
def test_dates_round_trip_exactly_through_the_sandbox_and_the_client(
    instant: dt.datetime, offset: int | None
) -> None:
    # Two writers (the sandbox's and the client's) and one reader agree to the millisecond.
    assert parse_date(odata_date(instant, offset)) == instant
    assert format_date(instant, offset) == odata_date(instant, offset)


@given(_instants)
def test_a_stamp_and_its_filter_literal_agree(instant: dt.datetime) -> None:
    literal = filter_literal(instant)[len("datetimeoffset'") : -1]
    tree = parse_filter(
        f"EntityLastChangedOn ge datetimeoffset'{literal}'", ["EntityLastChangedOn"]
    )
    assert matches(tree, {"EntityLastChangedOn": parse_date(odata_date(instant))})
    assert not matches(tree, {"EntityLastChangedOn": instant - dt.timedelta(milliseconds=1)})
    assert matches(tree, {"EntityLastChangedOn": instant + dt.timedelta(milliseconds=1)})


def test_stamps_with_an_offset_map_to_the_same_instant(
    small: SapC4CSandbox, ctx: RequestContext
) -> None:
    plain = {u.external_id: u.modified_at for u in flat(pull(small, ctx))}
    small.stamp_offset_minutes = 120
    shifted = {u.external_id: u.modified_at for u in flat(pull(small, ctx))}
    assert shifted == plain == {u.id: u.modified_at for u in small.store.users}


# -- auth ------------------------------------------------------------------------------------------
def test_basic_and_bearer_headers(ctx: RequestContext) -> None:
    with SapC4CSandbox(3, auth="bearer") as sb:
        assert len(flat(pull(sb, ctx))) == 3
        with Client(settings_of(sb)) as client:
            assert repr(client) == f"Client('{sb.url}', auth='bearer')"
            assert sb.access_token not in repr(client)
    with SapC4CSandbox(3) as sb:
        assert len(flat(pull(sb, ctx))) == 3
        client = Client(settings_of(sb))
        assert client.auth_headers()["Authorization"].startswith("Basic ")
        assert sb.password not in repr(client)
        client.close()


def test_both_auth_sets_are_refused(small: SapC4CSandbox) -> None:
    settings = settings_of(small, access_token="tok")
    with pytest.raises(BadInput, match="one set"):
        plugin.seatgate_check_connection("sap_c4c", settings, RequestContext())


def test_refused_password_is_one_line_and_not_retried(
    small: SapC4CSandbox, ctx: RequestContext
) -> None:
    with pytest.raises(AuthFailed) as raised:
        plugin.seatgate_check_connection("sap_c4c", settings_of(small, password="not-it"), ctx)
    message = str(raised.value)
    assert "refused the credentials" in message and "username and password" in message
    assert "not-it" not in message and "\n" not in message and "<html" not in message
    assert ctx.retries == 0


def test_expired_bearer_token_ends_the_pull_naming_the_token(ctx: RequestContext) -> None:
    with SapC4CSandbox(12, auth="bearer") as sb:
        sb.page_size = 5
        pages = plugin.seatgate_pull_users(
            product="sap_c4c",
            settings=settings_of(sb),
            since=None,
            ctx=ctx,
            activated_roles=frozenset(),
        )
        next(pages)
        sb.inject("expired_token")
        with pytest.raises(AuthFailed, match="access_token"):
            list(pages)
        assert ctx.retries == 0


def test_expired_basic_session_does_not_stop_a_pull(
    small: SapC4CSandbox, ctx: RequestContext
) -> None:
    small.inject("expired_token")
    assert len(flat(pull(small, ctx))) == 12  # Basic signs every request on again


# -- errors ----------------------------------------------------------------------------------------
def test_unknown_field_is_c4cs_400_naming_the_config(
    small: SapC4CSandbox, ctx: RequestContext
) -> None:
    with pytest.raises(MalformedResponse) as raised:
        pull(small, ctx, email_field="Mail")
    assert "Property Mail not found" in str(raised.value)
    assert "check filter and the field names" in str(raised.value)
    assert ctx.retries == 0


def test_cross_property_or_in_the_scope_filter_is_refused_as_c4c_does(
    small: SapC4CSandbox, ctx: RequestContext
) -> None:
    with pytest.raises(MalformedResponse, match="only supported on the same property"):
        pull(small, ctx, filter="CountryCode eq 'US' or Email eq 'x@example.com'")


def test_unknown_collection_names_the_settings(small: SapC4CSandbox, ctx: RequestContext) -> None:
    with pytest.raises(MalformedResponse, match="check service_path and collection"):
        pull(small, ctx, collection="EmployeeColection")


def test_a_setting_that_is_no_odata_name_is_refused_before_any_request(
    small: SapC4CSandbox, ctx: RequestContext
) -> None:
    with pytest.raises(BadInput, match="config email_field"):
        pull(small, ctx, email_field="Email,Password")
    assert small.requests == 0


def test_503_with_retry_after_waits_as_asked(
    small: SapC4CSandbox, ctx: RequestContext, sleeps: Sleeps
) -> None:
    small.busy_retry_after = 7
    small.inject("server_error")
    assert len(flat(pull(small, ctx))) == 12
    assert sleeps == [7.0]


def test_fair_use_lockout_ends_the_run_without_retrying(
    small: SapC4CSandbox, ctx: RequestContext
) -> None:
    small.inject("quota")
    with pytest.raises(QuotaExhausted, match="3600 s"):
        pull(small, ctx)
    assert ctx.retries == 0


def test_a_timeout_is_retried_then_transient(small: SapC4CSandbox, sleeps: Sleeps) -> None:
    small.timeout_seconds = 2.0
    settings = settings_of(small, timeout=0.6)
    ctx = RequestContext(RetryPolicy(attempts=2, sleep=sleeps))
    small.inject("timeout")
    assert plugin.seatgate_check_connection("sap_c4c", settings, ctx) is True
    assert ctx.retries == 1 and ctx.requests == 2
    small.inject("timeout", times=2)
    with pytest.raises(TransientError, match="did not answer in time"):
        plugin.seatgate_check_connection(
            "sap_c4c", settings, RequestContext(RetryPolicy(attempts=2, sleep=sleeps))
        )


@pytest.mark.parametrize(
    ("shape", "said"),
    [("envelope", "without d.results"), ("record", "without a valid ObjectID")],
)
def test_malformed_pages(small: SapC4CSandbox, ctx: RequestContext, shape: str, said: str) -> None:
    small.malformed_shape = shape
    small.inject("malformed")
    with pytest.raises(MalformedResponse, match=said):
        pull(small, ctx)
    assert ctx.retries == 0


def test_atom_is_what_a_client_without_format_json_gets(small: SapC4CSandbox) -> None:
    import httpx

    answer = httpx.get(
        small.url + "/sap/c4c/odata/v1/c4codataapi/EmployeeCollection",
        auth=(small.username, small.password),
    )
    assert answer.headers["content-type"].startswith("application/atom+xml")


def test_server_filter_grammar() -> None:
    props = ["ObjectID", "Email"]
    tree = parse_filter("(ObjectID eq 'a' or ObjectID eq 'b') and not Email eq null", props)
    assert matches(tree, {"ObjectID": "b", "Email": "x"})
    assert not matches(tree, {"ObjectID": "c", "Email": "x"})
    for bad in ("Nope eq 1", "ObjectID eq 'a' or Email eq 'b'", "ObjectID eq", "(ObjectID eq 'a'"):
        with pytest.raises(FilterError):
            parse_filter(bad, props)


# -- the mapping -----------------------------------------------------------------------------------
def test_mapping_locks_users_roles_and_names(small: SapC4CSandbox, ctx: RequestContext) -> None:
    small.store.deactivate([3])
    small.store.by_number[5].extra["user_id"] = ""  # an employee without a business user
    small.store.change([5], roles=[])
    small.store.change([6], roles=["Z_SALES_REP", "Z_CTI_AGENT"])
    users = {u.email: u for u in flat(pull(small, ctx))}
    assert users["user000003@example.com"].active is False
    assert users["user000003@example.com"].raw == {"UserID": "USER000003", "locked": True}
    assert users["user000005@example.com"].active is False
    assert users["user000005@example.com"].roles == ()
    assert users["user000006@example.com"].roles == ("Z_SALES_REP", "Z_CTI_AGENT")
    assert users["user000006@example.com"].name == small.store.by_number[6].name
    assert users["user000001@example.com"].external_id == small.store.by_number[1].id
    assert sum(u.active for u in users.values()) == 10
    # Every employee a user, as a tenant without business users in this collection wants it.
    relaxed = {u.email: u for u in flat(pull(small, ctx, user_id_field=""))}
    assert relaxed["user000005@example.com"].active is True


def test_mapping_is_configurable(small: SapC4CSandbox, ctx: RequestContext) -> None:
    users = flat(pull(small, ctx, name_field="LastName", roles_navigation=""))
    assert {u.name for u in users} <= {u.last_name for u in small.store.users}
    assert all(u.roles == () for u in users)
    asked = listings(small)[-1]
    assert asked.arg("$expand") is None
    assert "EmployeeUserBusinessRoleAssignment" not in asked.arg("$select")


def test_example_config_is_valid_and_keeps_its_secret_a_reference() -> None:
    assert CONFIG_SCHEMA.validate(EXAMPLE_CONFIG, resolve_env=False)["password"].reveal() == (
        "${SAP_C4C_PASSWORD}"
    )


# -- install and uninstall -------------------------------------------------------------------------
def test_install_fetches_a_csrf_token_then_writes_once(small: SapC4CSandbox) -> None:
    settings = settings_of(small)
    assert plugin.seatgate_install("acme", "sap_c4c", settings) is True
    lookup, write = list(small.wire)[-2:]
    assert lookup.method == "GET" and lookup.headers["x-csrf-token"] == "fetch"
    assert lookup.arg("$filter") == "AccountID eq 'acme' and Product eq 'sap_c4c'"
    assert write.method == "POST" and write.json() == {"AccountID": "acme", "Product": "sap_c4c"}
    assert write.headers["x-csrf-token"] in small.sessions.values()
    assert small.installations == {"acme"}
    assert plugin.seatgate_install("acme", "sap_c4c", settings) is True
    assert [r.method for r in small.wire].count("POST") == 1


def test_a_session_expired_between_token_and_write_fetches_a_new_token(
    small: SapC4CSandbox,
) -> None:
    settings = settings_of(small)
    small.inject("expired_token")  # hits the lookup: the session it opens is dropped at once
    assert plugin.seatgate_install("acme", "sap_c4c", settings) is True
    methods = [(r.method, r.path.rstrip("/").rsplit("/", 1)[-1]) for r in small.wire]
    assert methods == [
        ("GET", "SeatgateInstallationRootCollection"),
        ("POST", "SeatgateInstallationRootCollection"),  # 403 x-csrf-token: Required
        ("GET", "seatgate"),  # a new token from the service root
        ("POST", "SeatgateInstallationRootCollection"),
    ]
    assert small.installations == {"acme"}


def test_a_lost_answer_to_the_write_does_not_write_twice(
    small: SapC4CSandbox, sleeps: Sleeps
) -> None:
    adapter = SapC4CAdapter(RetryPolicy(attempts=3, sleep=sleeps))
    small.lost_write_answers = 1  # made, then answered 504
    assert adapter.seatgate_install("acme", "sap_c4c", settings_of(small)) is True
    assert len(small.records) == 1
    assert [r.method for r in small.wire].count("POST") == 1
    assert len(sleeps) == 1  # the retry asked whether the record exists, and found it


def test_a_refused_write_is_one_line_naming_the_permission(small: SapC4CSandbox) -> None:
    small.install_forbidden = True
    with pytest.raises(AuthFailed) as raised:
        plugin.seatgate_install("acme", "sap_c4c", settings_of(small))
    message = str(raised.value)
    assert "\n" not in message
    assert "SeatgateInstallationRootCollection" in message and "create, read and delete" in message
    assert small.installations == set()


def test_an_undeployed_installation_object_is_named(small: SapC4CSandbox) -> None:
    small.install_deployed = False
    with pytest.raises(MalformedResponse) as raised:
        plugin.seatgate_install("acme", "sap_c4c", settings_of(small))
    message = str(raised.value)
    assert "no installation object at /sap/c4c/odata/cust/v1/seatgate/Seatgate" in message
    assert "install_collection" in message


def test_uninstall_removes_every_record_of_the_account(small: SapC4CSandbox) -> None:
    settings = settings_of(small)
    plugin.seatgate_install("acme", "sap_c4c", settings)
    plugin.seatgate_install("other", "sap_c4c", settings)
    assert plugin.seatgate_uninstall("acme", "sap_c4c", settings) is True
    assert small.installations == {"other"}
    assert plugin.seatgate_uninstall("acme", "sap_c4c", settings) is True
    assert small.installations == {"other"}


def test_no_installation_object_means_no_write(small: SapC4CSandbox) -> None:
    settings = settings_of(small, install_collection="")
    assert plugin.seatgate_install("acme", "sap_c4c", settings) is True
    assert plugin.seatgate_uninstall("acme", "sap_c4c", settings) is True
    assert small.requests == 0


def test_other_products_are_refused(small: SapC4CSandbox) -> None:
    with pytest.raises(BadInput):
        plugin.seatgate_install("acme", "hubspot", settings_of(small))
