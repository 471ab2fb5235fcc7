"""Pull N employees from the SAP C4C sandbox: a bare httpx loop vs the adapter's full pull.

    .venv/bin/python bench/pull_sap_c4c.py --users 100000 --runs 3

Prints, per variant, the median seconds, users/s, requests served by the sandbox against the
minimum ceil(users / 1,000) (C4C's server page), and peak RSS. ``raw_pull`` is also the baseline of
bench/adapter_sync.py.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import httpx
from benchlib import measure

from seatgate.adapters.sap_c4c import plugin
from seatgate.adapters.sap_c4c.adapter import CONFIG_SCHEMA, PAGE_SIZE, Options
from seatgate.adapters.sap_c4c.client import DEFAULT_SERVICE_PATH, encode_query
from seatgate.adapters.sap_c4c.sandbox import ROLES, SapC4CSandbox
from seatgate.core.plugins import RequestContext


def raw_pull(sandbox: Any, activated_roles: Sequence[str] = ()) -> int:
    """The minimal loop a developer writes with httpx: the same query as the adapter's (the same
    properties, roles expanded, in key order, as bench/pull_servicenow.py sends the adapter's
    fields), ``d.__next`` followed until a page comes without one. A full pull reads no role
    changes, so ``activated_roles`` changes nothing here."""
    settings = sandbox.settings()
    options = Options.of(CONFIG_SCHEMA.validate(settings, resolve_env=False))
    query = encode_query({"$format": "json", **options.employee_query()})
    url: str | None = f"{DEFAULT_SERVICE_PATH}/{options.collection}?{query}"
    count = 0
    with httpx.Client(
        base_url=settings["base_url"],
        auth=(settings["username"], settings["password"]),
        headers={"Accept": "application/json"},
        timeout=120,
    ) as http:
        while url:
            page = http.get(url).raise_for_status().json()["d"]
            count += len(page["results"])
            url = page.get("__next")
    return count


def adapter_pull(sandbox: Any, activated_roles: Sequence[str] = ()) -> int:
    """The adapter's full pull (``seatgate_pull_users`` with ``since=None``), users counted."""
    settings = CONFIG_SCHEMA.validate({**sandbox.settings(), "timeout": 120}, resolve_env=False)
    pages = plugin.seatgate_pull_users(
        product="sap_c4c",
        settings=settings,
        since=None,
        ctx=RequestContext(),
        activated_roles=frozenset(activated_roles),
    )
    return sum(len(page.users) for page in pages)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    with SapC4CSandbox(args.users) as sandbox:
        print(
            f"command: python bench/pull_sap_c4c.py --users {args.users} --runs {args.runs}\n"
            f"SAP C4C sandbox, {args.users} users, median of {args.runs} runs (each pull renders "
            "every employee anew)"
        )

        def cold(fn: Any) -> Any:
            def run(sb: SapC4CSandbox) -> int:
                sb.drop_caches()
                return int(fn(sb))

            return run

        measure("raw httpx loop", cold(raw_pull), sandbox, args.runs, PAGE_SIZE)
        measure("adapter", cold(adapter_pull), sandbox, args.runs, PAGE_SIZE)
        measure(
            "adapter (activated roles)",
            cold(lambda sb: adapter_pull(sb, ROLES)),
            sandbox,
            args.runs,
            PAGE_SIZE,
        )


if __name__ == "__main__":
    main()
