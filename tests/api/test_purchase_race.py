"""The kind behind "an idempotent purchase retried concurrently bills once": retries of one
purchase racing each other in the service, whatever the entrypoint (no HTTP here)."""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any

from .conftest import ACME, ADMIN, World


def test_racing_retries_of_one_purchase_buy_once_and_replay_the_rest(world: World) -> None:
    barrier = threading.Barrier(6)

    def buy(_: int) -> dict[str, Any]:
        barrier.wait()
        return world.core.purchases.buy_seats(
            ACME, "salesforce", 4, ADMIN, confirm=True, idempotency_key="race-1"
        )

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(buy, range(6)))
    assert sorted(r["replayed"] for r in results) == [False] + [True] * 5
    assert len({r["at"] for r in results}) == 1  # every retry answers the first purchase
    assert world.core.contracts.get(ACME, "salesforce").quantity == 3 + 4
    assert [c["action"] for c in world.core.billing.commitments(ACME)].count("seats_buy") == 1
