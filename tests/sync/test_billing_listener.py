"""The billing core listens to activations (seed 002, "Auto Install": users added to activated
roles are added to the contract for billing purposes when it does not cover them)."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from seatgate.core.bootstrap import App
from seatgate.core.plugins.default_billing import PLUGIN_NAME
from seatgate.core.services.commitments import AUTO_INSTALL_ACTOR
from seatgate.core.storage.tables import commitments


def test_the_billing_listener_is_registered_on_the_apps_plugin_manager(
    installed: Callable[..., App],
) -> None:
    app = installed()
    assert app.plugins.pm.has_plugin(PLUGIN_NAME)


def test_auto_install_above_an_auto_expand_contract_is_recorded_for_billing(
    installed: Callable[..., App],
) -> None:
    app = installed(seats=5, mode="auto_expand", activated_roles=["Agent"])  # 20 Agents of 40
    result = app.sync.sync("acme", "memory")
    assert result.summary.seated == 20
    with app.db.read() as conn:
        rows = list(conn.execute(sa.select(commitments).where(commitments.c.action == "add_users")))
    (row,) = rows
    assert row.actor == AUTO_INSTALL_ACTOR
    assert row.detail["added"] == 20 and row.detail["above_contract"] == 15
    assert row.price_shown > 0
