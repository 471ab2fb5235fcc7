"""The pure parts of issue 18: the webhook signature a receiver verifies, the backoff of retries,
install-link tokens and their states — right values and properties of each kind."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seatgate.core.domain.events import SeatsAssigned, SyncFinished
from seatgate.core.domain.links import link_id_of, link_state, token_for
from seatgate.core.domain.webhooks import (
    BACKOFF_BASE,
    BACKOFF_CAP,
    EVENT_NAMES,
    check_events,
    headers_for,
    payload_of,
    retry_delay,
    sign,
    verify,
    webhook_event_of,
)
from seatgate.core.errors import BadInput

T = dt.datetime(2026, 2, 10, 9, tzinfo=dt.UTC)


def test_the_signature_is_the_documented_hmac() -> None:
    body = b'{"id":"e1"}'
    expected = hmac.new(b"whsec_k", b"1770714000." + body, hashlib.sha256).hexdigest()
    assert sign("whsec_k", 1770714000, body) == f"v1={expected}"
    assert headers_for("e1", "whsec_k", body, T)["Seatgate-Timestamp"] == "1770714000"


@given(
    secret=st.text(min_size=1, max_size=60),
    body=st.binary(max_size=300),
    skew=st.integers(-300, 300),
)
def test_a_receiver_accepts_what_was_signed_within_the_window(
    secret: str, body: bytes, skew: int
) -> None:
    headers = headers_for("e1", secret, body, T)
    assert verify(secret, headers, body, T + dt.timedelta(seconds=skew))


@given(
    secret=st.text(min_size=1, max_size=60),
    body=st.binary(min_size=1, max_size=300),
    flip=st.integers(0, 10_000),
    late=st.integers(301, 10**6),
)
def test_a_receiver_rejects_an_altered_body_another_secret_or_a_replay(
    secret: str, body: bytes, flip: int, late: int
) -> None:
    headers = headers_for("e1", secret, body, T)
    i = flip % len(body)
    altered = body[:i] + bytes([body[i] ^ 1]) + body[i + 1 :]
    assert not verify(secret, headers, altered, T)
    assert not verify(secret + "x", headers, body, T)
    assert not verify(secret, headers, body, T + dt.timedelta(seconds=late))
    assert not verify(secret, {**headers, "Seatgate-Timestamp": "soon"}, body, T)


@given(attempts=st.integers(1, 200), jitter=st.floats(0, 1, exclude_max=True))
def test_retries_back_off_exponentially_with_jitter_up_to_the_cap(
    attempts: int, jitter: float
) -> None:
    backoff = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempts - 1))
    assert backoff / 2 <= retry_delay(attempts, jitter) <= backoff
    assert retry_delay(attempts, 0.0) == backoff / 2
    assert retry_delay(attempts + 1, 0.0) >= retry_delay(attempts, 0.0)


def test_event_names_and_payloads() -> None:
    assert check_events(["seat.assigned, invoice.issued", "seat.assigned"]) == (
        "seat.assigned", "invoice.issued",
    )  # fmt: skip
    assert check_events(["*"]) == EVENT_NAMES
    with pytest.raises(BadInput):
        check_events(["seats.assigned"])  # the domain's name, not the webhook's
    event = SeatsAssigned(
        account="acme", product="salesforce", at=T, emails=("a@x.io",), actor="b@x.io",
        reason="admin",
    )  # fmt: skip
    assert webhook_event_of(event) == "seat.assigned"
    assert payload_of(event, "seat.assigned") == {
        "id": event.id,
        "type": "seat.assigned",
        "occurred_at": "2026-02-10T09:00:00+00:00",
        "account": "acme",
        "product": "salesforce",
        "data": {"emails": ["a@x.io"], "actor": "b@x.io", "reason": "admin"},
    }
    run = SyncFinished(account="a", product="p", at=T, run_id=1, outcome="halted", full=True)
    assert webhook_event_of(run) == "sync.failed"
    assert webhook_event_of(SyncFinished(
        account="a", product="p", at=T, run_id=1, outcome="succeeded", full=True
    )) == "sync.finished"  # fmt: skip


def _signer(key: bytes):  # type: ignore[no-untyped-def]
    return lambda purpose, data: hmac.new(key + purpose.encode(), data, hashlib.sha256).digest()


@given(link=st.text(alphabet="0123456789abcdef", min_size=32, max_size=32), i=st.integers(0, 80))
def test_a_token_names_its_link_and_any_change_to_it_is_refused(link: str, i: int) -> None:
    token = token_for(_signer(b"k"), link)
    assert link_id_of(_signer(b"k"), token) == link
    with pytest.raises(BadInput):
        link_id_of(_signer(b"other"), token)
    j = i % len(token)
    if token[j] in "_.":
        return
    swapped = token[:j] + ("A" if token[j] != "A" else "B") + token[j + 1 :]
    with pytest.raises(BadInput):
        link_id_of(_signer(b"k"), swapped)


def test_link_states_by_the_clock() -> None:
    expires = T + dt.timedelta(days=14)
    assert link_state(T, expires, None, None) == "active"
    assert link_state(expires, expires, None, None) == "expired"
    assert link_state(T, expires, T, None) == "used"
    assert link_state(T, expires, None, T) == "revoked"
    assert link_state(T - dt.timedelta(hours=1), expires, T, None) == "active"  # as of before
