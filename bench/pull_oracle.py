"""Pull N staff accounts from the Oracle B2C Service sandbox: a bare httpx loop vs the adapter.

    .venv/bin/python bench/pull_oracle.py --users 100000 --runs 3

(a) ``raw_pull``: the loop a developer writes with httpx alone: the adapter's own ROQL (as
bench/pull_salesforce.py sends the adapter's SOQL, so both read the same data), ``COUNT(ID)`` in
the first request, keyset pages on ``ID`` of 20,000 rows until the count is reached;
(b) ``adapter_pull``: the adapter's ``seatgate_pull_users`` full pull (read-ahead, mapping,
the retry policy, the throttle header).
Prints, per case, the median seconds, users/s, requests served against the minimum
ceil(users / 20,000), and peak RSS.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import httpx
from benchlib import measure

from seatgate.adapters.oracle import plugin
from seatgate.adapters.oracle.adapter import (
    APP_CONTEXT_HEADER,
    CONFIG_SCHEMA,
    MAX_ROWS,
    UTC_HEADER,
    count_query,
    options,
    page_query,
)
from seatgate.adapters.oracle.sandbox import OracleSandbox
from seatgate.core.plugins import RequestContext


def raw_pull(sandbox: Any, activated_roles: Sequence[str] = ()) -> int:
    """Every staff account with a bare httpx client; returns how many rows came. Roles come in
    the same rows: activated roles need nothing more."""
    settings = sandbox.settings()
    opts = options(CONFIG_SCHEMA.validate(settings, resolve_env=False))
    headers = {APP_CONTEXT_HEADER: opts.application_context, UTC_HEADER: "yes"}
    path = f"{opts.api_path}/queryResults"
    with httpx.Client(
        base_url=settings["base_url"],
        auth=(settings["username"], settings["password"]),
        headers=headers,
        timeout=120,
    ) as client:
        query = ";".join([count_query(opts, None), page_query(opts, None, 0, MAX_ROWS)])
        items = client.get(path, params={"query": query}).raise_for_status().json()["items"]
        remaining = int(items[0]["rows"][0][0])
        rows = items[1]["rows"]
        count = len(rows)
        remaining -= len(rows)
        while rows and remaining > 0:
            query = page_query(opts, None, int(rows[-1][0]), MAX_ROWS)
            response = client.get(path, params={"query": query}).raise_for_status()
            rows = response.json()["items"][0]["rows"]
            count += len(rows)
            remaining -= len(rows)
    return count


def adapter_pull(sandbox: Any) -> int:
    """The adapter's full pull (``seatgate_pull_users`` with ``since=None``), users counted."""
    settings = CONFIG_SCHEMA.validate({**sandbox.settings(), "timeout": 120}, resolve_env=False)
    pages = plugin.seatgate_pull_users(
        product="oracle_sc", settings=settings, since=None, ctx=RequestContext()
    )
    return sum(len(page.users) for page in pages)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"command: python bench/pull_oracle.py --users {args.users} --runs {args.runs}")
    with OracleSandbox(args.users) as sandbox:
        # Render every account once, so no case pays the sandbox's first render.
        raw_pull(sandbox)
        print(
            f"Oracle B2C Service sandbox, {args.users} staff accounts, median of {args.runs} runs"
        )
        measure("raw httpx loop", raw_pull, sandbox, args.runs, MAX_ROWS)
        measure("adapter full pull", adapter_pull, sandbox, args.runs, MAX_ROWS)


if __name__ == "__main__":
    main()
