"""Pull N users from the Salesforce sandbox: bare simple-salesforce loop vs the adapter's full pull.

    .venv/bin/python bench/pull_salesforce.py --users 100000 --runs 3

Prints, per variant, the median seconds, users/s, requests served by the sandbox against the minimum
ceil(users / 2000), and peak RSS of this process (the sandbox runs in it too). A full sync into SQLite
through the engine goes next to these as a third function taking the sandbox and returning the
users synced.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from benchlib import measure
from simple_salesforce import Salesforce

from seatgate.adapters.salesforce import plugin
from seatgate.adapters.salesforce.adapter import (
    BATCH_SIZE,
    CONFIG_SCHEMA,
    LoopbackSession,
    build_query,
)
from seatgate.adapters.salesforce.sandbox import SalesforceSandbox
from seatgate.core.plugins import RequestContext


def raw_pull(sandbox: SalesforceSandbox, activated_roles: Sequence[str] = ()) -> int:
    """The minimal loop a developer writes with simple-salesforce: ``query_all_iter`` at 2000.
    Profile and role come with the user: activated roles need nothing more."""
    https = sandbox.url.replace("http://", "https://")
    sf = Salesforce(
        session_id=sandbox.SESSION_ID,
        instance_url=https,
        # simple-salesforce only speaks https; this session sends its calls to the plain sandbox.
        session=LoopbackSession(120, {https: sandbox.url}),
    )
    soql = build_query("salesforce", {}, None)  # the same SOQL the adapter sends
    headers = {"Sforce-Query-Options": f"batchSize={BATCH_SIZE}"}
    return sum(1 for _ in sf.query_all_iter(soql, headers=headers))


def adapter_pull(sandbox: SalesforceSandbox, auth: str = "session") -> int:
    """The adapter's full pull (``seatgate_pull_users`` with ``since=None``), users counted."""
    raw: dict[str, Any] = {**sandbox.settings(auth=auth), "timeout": 120}
    settings = CONFIG_SCHEMA.validate(raw, resolve_env=False)
    pages = plugin.seatgate_pull_users(
        product="salesforce",
        settings=settings,
        since=None,
        ctx=RequestContext(),
    )
    return sum(len(page.users) for page in pages)


def adapter_pull_password(sandbox: SalesforceSandbox) -> int:
    return adapter_pull(sandbox, auth="password")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    with SalesforceSandbox(args.users) as sandbox:
        # Render every user once, so no variant pays the sandbox's first-render cost.
        raw_pull(sandbox)
        print(f"Salesforce sandbox, {args.users} users, median of {args.runs} runs")
        measure("raw query_all_iter", raw_pull, sandbox, args.runs, BATCH_SIZE)
        measure("adapter (session id)", adapter_pull, sandbox, args.runs, BATCH_SIZE)
        measure("adapter (SOAP login)", adapter_pull_password, sandbox, args.runs, BATCH_SIZE)


if __name__ == "__main__":
    main()
