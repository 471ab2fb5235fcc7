"""Tester report item 1 over HTTP: a seat quantity no contract can hold is refused at once (400,
nothing written), whatever its size — never a quote that runs for minutes."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient

from seatgate.core.storage.tables import purchases

from .conftest import ACME, World


def test_a_quantity_beyond_the_contracts_bound_is_refused_at_once(
    client: TestClient, world: World
) -> None:
    base = f"/v1/accounts/{ACME}/products/salesforce/seats"
    before = world.core.contracts.get(ACME, "salesforce").quantity
    for quantity in (10**23, 2_000_000, 1_000_001 - before):
        summary = client.get(
            f"{base}/purchase-summary", params={"quantity": quantity}, headers=world.h("billing")
        )
        assert summary.status_code == 400, summary.text
        assert summary.json()["code"] == "bad_input" and "quantity" in summary.json()["detail"]
        bought = client.post(
            f"{base}/purchases",
            json={"quantity": quantity},
            headers={**world.h("billing"), "Idempotency-Key": f"big-{quantity}"},
        )
        assert bought.status_code == 400, bought.text
    fits = client.get(
        f"{base}/purchase-summary",
        params={"quantity": 1_000_000 - before},
        headers=world.h("billing"),
    )
    assert fits.status_code == 200 and fits.json()["quantity_after"] == 1_000_000
    assert world.core.contracts.get(ACME, "salesforce").quantity == before
    with world.core.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(purchases)).scalar() == 0
