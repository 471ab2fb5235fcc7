"""Cross-account isolation for every route: walk the OpenAPI document and call each operation of
account ``acme`` with a token of account ``other`` (404 or 403 on each, nothing changed), with no
token (401), with acme's own ``check`` token (403 everywhere but the check), and with acme's own
``partner`` token (403 everywhere but the add-on list: the partner of salesforce may not touch the
memory app's add-ons either)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from .conftest import ACME, ADMIN, PRODUCT, USERS, World

OPEN = {"/healthz", "/readyz", "/metrics"}
VALUES = {
    "account": ACME,
    "product": "memory",
    "email": USERS[0],
    "feature": "cti",
    "run_id": "1",
    "link": "0" * 32,
    "addon": "insights",
    "endpoint": "1",
    "delivery": "1",
}
BODIES: dict[str, Any] = {
    "Emails": {"emails": [USERS[0]]},
    "InstallBody": {"config": {"instance": "memory-x", "api_key": "${KEY}"}},
    "PlanBody": {"plan": "premium"},
    "PurchaseBody": {"quantity": 1},
    "TicketBody": {"kind": "renewal_adjustment"},
    "SyncBody": {},
    "InstallLinkBody": {"email": "it@acme.example"},
    "RedeemBody": {"token": "sgl_x.y", "config": {"instance": "memory-x"}},
    "AddOnBody": {"seats": 2},
    "WebhookBody": {"url": "https://hooks.example.com/x", "events": ["*"]},
}
ORDER_ROUTES = 15  # issue 18: install links 4, add-ons 3, webhooks 8


@pytest.fixture(autouse=True)
def server_secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Before the world is built: its App reads the secret (webhooks and links need it).
    monkeypatch.setenv("SEATGATE_SECRET_KEY", "isolation-test-secret-0123456789abcdef")
    yield


@pytest.fixture
def orders(world: World) -> None:
    """acme has a webhook endpoint and a delivery (id 1 each) the walk's ids name."""
    world.core.webhooks.add(ACME, "http://127.0.0.1:9/hooks", ["*"], ADMIN)
    world.core.seats.assign(ACME, PRODUCT, [USERS[1]], ADMIN)


def operations(client: TestClient) -> list[tuple[str, str, Any]]:
    spec = client.get("/openapi.json").json()
    out = []
    for template, item in spec["paths"].items():
        if template in OPEN:
            continue
        url = re.sub(r"\{(\w+)\}", lambda m: VALUES[m.group(1)], template)
        for method, op in item.items():
            schema = (
                op.get("requestBody", {})
                .get("content", {})
                .get("application/json", {})
                .get("schema", {})
            )
            ref = schema.get("$ref") or next(
                (s["$ref"] for s in schema.get("anyOf", []) if "$ref" in s), ""
            )
            body = BODIES[ref.rsplit("/", 1)[-1]] if ref else None
            out.append((method.upper(), url, body))
    return out


def test_the_walk_covers_every_route(client: TestClient) -> None:
    ops = operations(client)
    assert len(ops) == 21 + ORDER_ROUTES
    assert {m for m, _, _ in ops} == {"GET", "POST", "PUT", "DELETE"}


@pytest.mark.parametrize("who", ["other", None, "check", "partner"])
def test_every_route_refuses_a_foreign_token_no_token_and_a_check_token(
    client: TestClient, world: World, orders: None, who: str | None
) -> None:
    before = snapshot(world)
    for method, url, body in operations(client):
        headers = {"Idempotency-Key": "walk-1"}
        if who is not None:
            headers.update(world.h(who))
        got = client.request(method, url, json=body, headers=headers, params={"quantity": 1})
        if who is None:
            expected: set[int] = {401}
        elif who == "other":
            expected = {404, 403}
        elif who == "check":
            expected = {200} if "/entitlements/" in url else {403}
        else:
            expected = {200} if method == "GET" and url.endswith("/addons") else {403}
        assert got.status_code in expected, (method, url, got.status_code, got.text)
        if got.status_code >= 400:
            assert got.headers["content-type"] == "application/problem+json"
    assert snapshot(world) == before


def snapshot(world: World) -> Any:
    core = world.core
    return (
        core.seats.list(ACME).as_dict(),
        [i.as_dict() for i in core.installs.list()],
        [c.as_dict() for c in core.contracts.list(ACME)],
        core.billing.commitments(ACME),
        core.listings.tickets(ACME).as_dict("tickets"),
        core.listings.runs(ACME).as_dict("runs"),
        core.listings.install_links(ACME).as_dict("links"),
        core.listings.addons(ACME).as_dict("addons"),
        core.listings.webhooks(ACME).as_dict("endpoints"),
        core.listings.deliveries(ACME).as_dict("deliveries"),
    )
