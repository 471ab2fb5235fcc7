"""Webhook endpoints cannot make the server reach its own network (tester report item 13, SSRF):
the documented rule stays "https, or http to loopback"; a literal link-local (metadata), private
or reserved address is refused at ``webhook add``, and at each delivery the host's resolved
addresses are checked and the post goes to the address that was checked."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seatgate.core.bootstrap import App
from seatgate.core.clock import FixedClock
from seatgate.core.domain.webhooks import address_refusal
from seatgate.core.errors import BadInput
from seatgate.core.plugins.webhooks import HttpxPoster
from seatgate.core.storage.tables import webhook_endpoints

from .conftest import ADMIN, P, account, count, make_app, order_form
from .servers import Receiver

REFUSED = [
    "https://169.254.169.254/latest",  # the cloud metadata service
    "https://[::ffff:169.254.169.254]/latest",
    "https://[fe80::1]/x",
    "https://10.0.0.1/x",
    "https://172.16.5.4/x",
    "https://192.168.1.1/x",
    "https://[fd00:ec2::254]/x",
    "https://100.64.0.1/x",
    "https://0.0.0.0/x",
    "https://224.0.0.1/x",
    "https://240.0.0.1/x",
    "https://192.0.2.10/x",  # documentation range
]
ACCEPTED = [
    "https://hooks.example.com/x",  # a name: checked where it is resolved, at delivery
    "https://127.0.0.1:8443/x",
    "http://127.0.0.1:8080/x",
    "http://localhost:8080/x",
    "https://[::1]/x",
    "https://93.184.216.34/x",
]


@pytest.mark.parametrize("url", REFUSED)
def test_a_literal_internal_address_is_refused_at_add(app: App, url: str) -> None:
    account(app)
    with pytest.raises(BadInput) as refused:
        app.webhooks.add("acme", url, ["*"], ADMIN)
    message = str(refused.value)
    assert url in message and "not a " in message and "\n" not in message
    assert count(app, webhook_endpoints) == 0


def test_public_loopback_and_named_endpoints_are_accepted(app: App) -> None:
    account(app)
    for url in ACCEPTED:
        app.webhooks.add("acme", url, ["*"], ADMIN)
    assert count(app, webhook_endpoints) == len(ACCEPTED)


def test_the_operator_may_allow_private_ranges_but_never_metadata(
    db_url: str, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEATGATE_WEBHOOK_ALLOW_PRIVATE", "1")
    app = make_app(db_url, clock)
    try:
        account(app)
        app.webhooks.add("acme", "https://10.0.0.1/x", ["*"], ADMIN)
        with pytest.raises(BadInput, match="link-local"):
            app.webhooks.add("acme", "https://169.254.169.254/latest", ["*"], ADMIN)
    finally:
        app.close()


@pytest.fixture
def rebinding(db_url: str, clock: FixedClock) -> Iterator[tuple[App, list[str]]]:
    """An app whose poster resolves ``localhost`` to what the test says (a name re-pointed after
    ``webhook add``)."""
    answers: list[str] = ["127.0.0.1"]
    poster = HttpxPoster(timeout=5, resolve=lambda host, port: list(answers))
    app = make_app(db_url, clock, webhook_poster=poster)
    yield app, answers
    app.close()
    poster.close()


def test_a_name_resolving_to_metadata_at_delivery_is_not_posted_to(
    rebinding: tuple[App, list[str]], receiver: Receiver, clock: FixedClock
) -> None:
    app, answers = rebinding
    account(app)
    order_form(app, seats=2)
    url = receiver.url.replace("127.0.0.1", "localhost")
    receiver.secret = app.webhooks.add("acme", url, ["*"], ADMIN).secret
    app.accounts.add_users("acme", ["u@acme.example"])
    app.assign("acme", P, ["u@acme.example"], ADMIN)
    answers[:] = ["169.254.169.254"]
    receiver.now = app.now()
    run = app.webhooks.deliver().as_dict()
    assert run["delivered"] == 0 and run["attempted"] >= 1
    assert receiver.events == {}
    failed = [d for d in app.webhooks.deliveries("acme") if d.last_error]
    assert len(failed) == run["attempted"]
    for delivery in failed:
        assert "169.254.169.254" in delivery.last_error and "link-local" in delivery.last_error
    # The same name pointing at loopback again is delivered to, Host header and all.
    answers[:] = ["127.0.0.1"]
    clock.advance(seconds=3600)
    receiver.now = app.now()
    assert app.webhooks.deliver().as_dict()["delivered"] >= 1
    assert receiver.events and receiver.rejected == 0


def test_every_address_a_host_resolves_to_must_be_allowed() -> None:
    poster = HttpxPoster(timeout=1, resolve=lambda host, port: ["93.184.216.34", "10.1.2.3"])
    try:
        result = poster.post("https://hooks.example.com/x", b"{}", {})
    finally:
        poster.close()
    assert result.status is None and "10.1.2.3" in result.error and "private" in result.error


_V4 = st.integers(min_value=0, max_value=2**32 - 1).map(ipaddress.IPv4Address)
_V6 = st.integers(min_value=0, max_value=2**128 - 1).map(ipaddress.IPv6Address)


@given(st.one_of(_V4, _V6))
def test_only_global_and_loopback_addresses_are_allowed(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    judged = address
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        judged = address.ipv4_mapped
    allowed = address_refusal(address) is None
    internal = judged.is_link_local or judged.is_multicast or judged.is_unspecified
    assert allowed == (judged.is_loopback or (judged.is_global and not internal))
    if allowed or address_refusal(address, allow_private=True) is None:
        assert not judged.is_link_local and not judged.is_unspecified


@given(_V4)
def test_an_ipv4_mapped_address_is_judged_as_itself(address: ipaddress.IPv4Address) -> None:
    mapped = ipaddress.IPv6Address(f"::ffff:{address}")
    assert address_refusal(mapped) == address_refusal(address)
