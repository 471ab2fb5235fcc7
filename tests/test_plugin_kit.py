"""The plugin kit's status and transport errors (core/plugins/kit.py), as every adapter gets them."""

from __future__ import annotations

import gc
import weakref

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from seatgate.core.errors import (
    AuthFailed,
    MalformedResponse,
    QuotaExhausted,
    RateLimited,
    TokenExpired,
    TransientError,
)
from seatgate.core.plugins import kit

PERMISSION = "Create on Seatgate_Installation__c"


def _write(status: int, **kwargs: object) -> Exception:
    return kit.refused_write(
        status, crm="Acme", action="write the marker", permission=PERMISSION, **kwargs
    )


@pytest.mark.parametrize("status", [400, 403, 404, 405, 409, 422])
def test_a_refused_write_names_the_permission(status: int) -> None:
    error = _write(status, detail="INSUFFICIENT_ACCESS")
    assert isinstance(error, AuthFailed)
    assert str(error) == (
        f"Acme refused to write the marker ({status}, INSUFFICIENT_ACCESS): the integration user "
        f"needs {PERMISSION}"
    )


def test_a_write_meets_throttling_expiry_and_outages_as_any_request_does() -> None:
    assert isinstance(_write(401, can_refresh=True), TokenExpired)
    assert isinstance(_write(401), AuthFailed)
    assert isinstance(_write(429, retry_after=3.0), RateLimited)
    assert isinstance(_write(429, retry_after=3600.0), QuotaExhausted)
    assert isinstance(_write(503), TransientError)
    assert isinstance(_write(408), TransientError)


@given(status=st.integers(min_value=400, max_value=599), detail=st.text(max_size=40))
def test_a_write_answered_with_an_error_status_never_passes_for_done(
    status: int, detail: str
) -> None:
    detail = " ".join(detail.split())  # the vendor's words, already one line
    error = _write(status, detail=detail)
    read = kit.error_for_status(status, crm="Acme", detail=detail, permission=PERMISSION)
    if status in (401, 408, 429) or status >= 500:
        assert type(error) is type(read)  # retried, refreshed or ended as for a read
    else:
        assert isinstance(error, AuthFailed) and PERMISSION in str(error)
    assert "\n" not in str(error)


def test_a_transport_error_names_the_kind_never_the_url() -> None:
    url = "https://acme.example/api/users?token=S3CRET"
    timeout = kit.transport_error("Acme", httpx.ReadTimeout(url), timed_out=True)
    assert str(timeout) == "Acme did not answer in time (ReadTimeout); retrying may succeed"
    refused = kit.transport_error("Acme", httpx.ConnectError(url), url_setting="login_url")
    assert str(refused) == "could not reach Acme (ConnectError); check login_url and the network"
    assert isinstance(timeout, TransientError) and "S3CRET" not in str(refused)


def test_pages_stops_a_listing_that_repeats_a_cursor() -> None:
    asked: list[str] = []

    def fetch(cursor: str) -> tuple[str, str | None]:
        asked.append(cursor)
        return f"page {cursor}", {"": "a", "a": "b", "b": "a"}[cursor]

    pages = kit.pages(fetch, "", name="kit-test", crm="Acme")
    assert next(pages) == "page "
    with pytest.raises(MalformedResponse, match="Acme handed back a page cursor"):
        list(pages)
    assert asked == ["", "a", "b"]


def test_the_kit_reads_the_vendors_throttle_headers() -> None:
    assert kit.throttle_wait({"Retry-After": "7"}) == 7.0
    assert kit.throttle_wait({"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}) == 10.0
    assert kit.throttle_wait({"OSvC-CREST-Next-Request-After": "250"}) == 0.25
    assert kit.throttle_wait({"Content-Type": "application/json"}) is None


def test_an_answer_is_freed_with_its_last_reference_not_by_the_collector() -> None:
    # httpx binds a response's stream to the response; the kit lets go of the read stream, so a
    # page's body is freed at once, also while a sync pauses the cyclic collector.
    body = b'{"rows": [' + b",".join([b'{"id": 1}'] * 1000) + b"]}"
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    paused = gc.isenabled()
    gc.disable()
    try:
        with kit.HttpClient("https://acme.example", transport=transport) as client:
            response = client.send("GET", "/users")
            assert response.json()["rows"][0] == {"id": 1}
            freed = weakref.ref(response)
            del response
            assert freed() is None
    finally:
        if paused:
            gc.enable()
