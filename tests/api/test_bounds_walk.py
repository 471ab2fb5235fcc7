"""Every parameter of every route read through the CLI's bounds (tester report items 1 and 4):
out-of-range quantities, periods, run ids, limits are a 400 naming the value and the range, never
a 500 and never minutes of work. The walk takes the routes from the app's own OpenAPI document, so
a route added later is walked too."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from .conftest import ACME, LiveServer, World, bearer

# Values a client may send where a number, a month, a name is expected.
HOSTILE = [
    "99999999999999999999999",
    "-99999999999999999999999",
    "0",
    "-1",
    "1000001",
    "2147483648",
    "9999-12",
    "0000-01",
    "2100-01",
    "1999-12",
    "1e400",
    "NaN",
    "x" * 5000,
    "%00",
    "%F0%9F%92%A5",
    "",
]
HOSTILE_JSON: list[Any] = [
    10**23,
    -(10**23),
    0,
    -1,
    1_000_001,
    2**31,
    1.5,
    1e308,
    "9999-12",
    "x" * 5000,
    None,
    True,
    [],
    {},
    [[[[[]]]]],
]
# A valid value per path parameter, so the walk reaches each route's own parameters.
PATH_VALUES = {
    "account": ACME,
    "product": "salesforce",
    "email": "u1@acme.example",
    "feature": "access",
    "run_id": "1",
}


def _operations(live: LiveServer) -> list[tuple[str, str, dict[str, Any]]]:
    document = httpx.get(f"{live.url}/openapi.json", timeout=10).json()
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "delete", "patch"}:
                found.append((method.upper(), path, operation))
    return found


def _body_schema(document: dict[str, Any], operation: dict[str, Any]) -> dict[str, Any]:
    content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    schema = content.get("schema", {})
    for option in schema.get("anyOf", [schema]):
        ref = option.get("$ref")
        if ref:
            return document["components"]["schemas"][ref.rsplit("/", 1)[1]]  # type: ignore[no-any-return]
    return {}


def _fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m[1], "x"), path)


def _no_server_error(answer: httpx.Response, what: str) -> None:
    assert answer.status_code < 500, f"{what}: {answer.status_code} {answer.text[:300]}"
    if answer.status_code >= 400:
        assert answer.headers["content-type"] == "application/problem+json", what
        assert "Traceback" not in answer.text and "\n" not in answer.json()["detail"], what


def test_every_route_refuses_out_of_range_values_with_a_4xx(live: LiveServer, world: World) -> None:
    document = httpx.get(f"{live.url}/openapi.json", timeout=10).json()
    walked = 0
    with httpx.Client(base_url=live.url, timeout=30) as http:
        for method, path, operation in _operations(live):
            token = "billing" if "billing" in operation.get("tags", []) else "admin"
            if "check" in operation.get("tags", []):
                token = "check"
            headers = {**bearer(world.tokens[token]), "Idempotency-Key": "walk"}
            params = operation.get("parameters", [])
            required = {
                p["name"]: "1" if p["name"] in {"quantity", "run"} else "2026-03"
                for p in params
                if p["in"] == "query" and p.get("required")
            }
            for param in params:
                for value in HOSTILE:
                    query = dict(required)
                    values = dict(PATH_VALUES)
                    if param["in"] == "path":
                        values[param["name"]] = value
                    elif param["in"] == "query":
                        query[param["name"]] = value
                    elif param["in"] == "header":
                        headers = {**headers, param["name"]: value[:1000]}
                    url = _fill(path, values)
                    answer = http.request(method, url, params=query, headers=headers)
                    _no_server_error(answer, f"{method} {url} {param['name']}={value[:30]!r}")
                    walked += 1
            schema = _body_schema(document, operation)
            for member in schema.get("properties", {}):
                for value in HOSTILE_JSON:
                    url = _fill(path, PATH_VALUES)
                    answer = http.request(
                        method, url, params=required, json={member: value}, headers=headers
                    )
                    _no_server_error(answer, f"{method} {url} {member}={str(value)[:30]}")
                    walked += 1
    assert walked > 300  # the walk reached the routes' parameters


@pytest.mark.parametrize(
    ("url", "field", "accepted"),
    [
        (
            "/products/salesforce/seats/purchase-summary?quantity=99999999999999999999999",
            "quantity",
            "a whole number of seats up to 1,000,000",
        ),
        (
            "/products/salesforce/seats/purchase-summary?quantity=1000001",
            "quantity",
            "a whole number of seats up to 1,000,000",
        ),
        ("/billing/preview?period=9999-12", "period", "a month from 2000-01 to 2099-12"),
        ("/billing/preview?period=0000-01", "period", "a month from 2000-01 to 2099-12"),
        ("/billing/preview?period=2100-01", "period", "a month from 2000-01 to 2099-12"),
        ("/billing/preview?period=1999-12", "period", "a month from 2000-01 to 2099-12"),
        (
            "/sync-runs/99999999999999999999999",
            "run id",
            "a whole number from 1 to 2,147,483,647",
        ),
        (
            "/quarantine?run=99999999999999999999999",
            "run",
            "a whole number from 1 to 2,147,483,647",
        ),
        ("/installs?limit=1001", "limit", "a whole number from 1 to 1,000"),
    ],
)
def test_out_of_range_is_a_400_naming_the_value_and_the_range(
    live: LiveServer, world: World, url: str, field: str, accepted: str
) -> None:
    token = "billing" if "billing" in url or "purchase" in url else "admin"
    answer = httpx.get(
        f"{live.url}/v1/accounts/{ACME}{url}", headers=bearer(world.tokens[token]), timeout=10
    )
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["code"] == "bad_input" and body["field"] == field
    value = url.rsplit("=", 1)[1] if "=" in url else url.rsplit("/", 1)[1]
    assert value in body["detail"] and accepted in body["detail"]


def test_a_purchase_beyond_the_range_is_refused_and_buys_nothing(
    live: LiveServer, world: World
) -> None:
    url = f"{live.url}/v1/accounts/{ACME}/products/salesforce/seats/purchases"
    headers = {**bearer(world.tokens["billing"]), "Idempotency-Key": "big"}
    for quantity in (10**23, 1_000_001, -(10**23), 0, -5):
        answer = httpx.post(url, json={"quantity": quantity}, headers=headers, timeout=10)
        assert answer.status_code == 400, answer.text
        assert answer.json()["field"] == "quantity"
        assert str(quantity) in answer.json()["detail"]
        if abs(quantity) > 1_000_000:
            assert "up to 1,000,000" in answer.json()["detail"]
        else:  # the service's rule: seats are never reduced within a term
            assert answer.json()["remedy"] == "renewal_adjustment_ticket"
    seats = httpx.get(
        f"{live.url}/v1/accounts/{ACME}/seats", headers=bearer(world.tokens["admin"]), timeout=10
    ).json()
    assert [p["contracted"] for p in seats["products"] if p["product"] == "salesforce"] == [3]
