"""Through a real uvicorn server on 127.0.0.1 (started by the test, in a thread of the test
process so that it reaches the in-memory CRM): the check, a chunked oversized body, the request
timeout, and an idempotent purchase retried concurrently."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from seatgate.core.entrypoints.http.app import create_app
from seatgate.core.storage.tables import commitments, purchases

from .conftest import ACME, USERS, LiveServer, World, bearer, make_core, seed

CHECK = "/v1/accounts/acme/products/memory/users/{email}/entitlements/cti"


def test_check_assign_unassign_over_the_network(live: LiveServer, world: World) -> None:
    with httpx.Client(base_url=live.url, timeout=10) as http:
        url = CHECK.format(email=USERS[0])
        assert http.get(url, headers=world.h("check")).json()["reason"] == "no_seat"
        done = http.post(
            "/v1/accounts/acme/products/memory/seats/assign",
            json={"emails": [USERS[0]]},
            headers=world.h("admin"),
        )
        assert done.status_code == 200
        assert http.get(url, headers=world.h("check")).json()["reason"] == "seated"
        http.post(
            "/v1/accounts/acme/products/memory/seats/unassign",
            json={"emails": [USERS[0]]},
            headers=world.h("admin"),
        )
        assert http.get(url, headers=world.h("check")).json()["reason"] == "no_seat"
        assert http.get("/readyz").status_code == 200


def test_a_chunked_body_over_the_cap_is_cut_off(live: LiveServer, world: World) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"emails": ["'
        for _ in range(200):
            yield b"x" * 8192
        yield b'"]}'

    with httpx.Client(base_url=live.url, timeout=10) as http:
        got = http.post(
            "/v1/accounts/acme/products/memory/seats/assign",
            content=chunks(),
            headers={**world.h("admin"), "content-type": "application/json"},
        )
    assert got.status_code == 413 and got.json()["code"] == "too_large"
    assert world.core.seats.list(ACME).seats == []


@pytest.fixture
def slow_server(
    db_url: str, crm: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    core, settings = make_core(db_url, request_timeout=0.5)
    tokens = seed(core, crm)
    release = threading.Event()

    def slow(*args: object, **kwargs: object) -> None:
        release.wait(5)

    monkeypatch.setattr(core.listings, "users", slow)
    try:
        with LiveServer(create_app(core, settings)) as server:
            yield server, tokens
            release.set()
    finally:
        core.close()


def test_a_request_over_its_time_answers_503(
    slow_server: tuple[LiveServer, dict[str, str]],
) -> None:
    server, tokens = slow_server
    started = time.monotonic()
    got = httpx.get(
        f"{server.url}/v1/accounts/acme/users", headers=bearer(tokens["admin"]), timeout=10
    )
    assert got.status_code == 503 and got.json()["code"] == "timeout"
    assert time.monotonic() - started < 3


def test_an_idempotent_purchase_retried_concurrently_bills_once(
    live: LiveServer, world: World
) -> None:
    url = f"{live.url}/v1/accounts/acme/products/salesforce/seats/purchases"
    headers = {**world.h("billing"), "Idempotency-Key": "po-77"}
    barrier = threading.Barrier(8)

    def buy(_: int) -> httpx.Response:
        barrier.wait()
        return httpx.post(url, json={"quantity": 2}, headers=headers, timeout=30)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(buy, range(8)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] * 7 + [201], [a.text for a in answers]
    keys = {a.json()["idempotency_key"] for a in answers}
    assert keys == {"po-77"}
    assert sum(not a.json()["replayed"] for a in answers) == 1
    assert world.core.contracts.get(ACME, "salesforce").quantity == 5
    with world.core.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(purchases)).scalar() == 1
        assert (
            conn.execute(
                sa.select(sa.func.count()).where(commitments.c.action == "seats_buy")
            ).scalar()
            == 1
        )
