"""Benchmark: pull N HubSpot owners from the sandbox, bare client vs the adapter.

    .venv/bin/python bench/pull_hubspot.py --users 100000 --runs 3

(a) ``raw_pull``: the loop a developer would write with hubspot-api-client alone (models and all);
(b) ``adapter_pull``: the adapter's ``seatgate_pull_users`` full pull (live and archived owners).
For each: median seconds, users/s, requests made vs the minimum ceil(users / 500) per listing, and
peak RSS. A full sync into SQLite through the engine is meant to join as one more function of the
same shape, ``fn(sandbox) -> users``, in ``CASES``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence

import urllib3
from benchlib import peak_rss_mb, time_pull
from hubspot import HubSpot

from seatgate.adapters.hubspot import plugin
from seatgate.adapters.hubspot.adapter import CONFIG_SCHEMA, OWNERS_PAGE_MAX
from seatgate.adapters.hubspot.sandbox import HubSpotSandbox
from seatgate.core.plugins import RequestContext


def raw_pull(sandbox: HubSpotSandbox, activated_roles: Sequence[str] = ()) -> int:
    """Every owner, live then archived, with the bare client; returns how many. Teams come with
    the owner: activated roles need nothing more."""
    client = HubSpot(
        access_token=sandbox.access_token, host=sandbox.url, retry=urllib3.Retry(total=0)
    )
    api = client.crm.owners.owners_api
    count = 0
    for archived in (False, True):
        after = None
        while True:
            page = api.get_page(limit=OWNERS_PAGE_MAX, after=after, archived=archived)
            count += len(page.results)
            if page.paging is None or page.paging.next is None:
                break
            after = page.paging.next.after
    api.api_client.rest_client.pool_manager.clear()
    return count


def adapter_pull(sandbox: HubSpotSandbox) -> int:
    """The adapter's full pull; returns how many users it yielded."""
    settings = CONFIG_SCHEMA.validate(sandbox.settings())
    ctx = RequestContext()
    pages = plugin.seatgate_pull_users(product="hubspot", settings=settings, since=None, ctx=ctx)
    return sum(len(page.users) for page in pages)


CASES: dict[str, Callable[[HubSpotSandbox], int]] = {
    "raw client pull": raw_pull,
    "adapter pull": adapter_pull,
}


def measure(sandbox: HubSpotSandbox, fn: Callable[[HubSpotSandbox], int], runs: int) -> dict:
    users, median, requests = time_pull(fn, sandbox, runs)
    return {
        "users": users,
        "seconds": median,
        "users_per_s": users / median if median else float("inf"),
        "requests": requests,
        "peak_rss_mb": peak_rss_mb(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", choices=sorted(CASES), help="run one case (its own peak RSS)")
    args = parser.parse_args(argv)
    with HubSpotSandbox(args.users) as sandbox:
        live = sum(1 for u in sandbox.store.users if u.active)
        # One page per 500 live owners, and the archived listing answers at least one page.
        minimum = math.ceil(live / OWNERS_PAGE_MAX) + max(
            1, math.ceil((args.users - live) / OWNERS_PAGE_MAX)
        )
        print(f"HubSpot sandbox, {args.users} owners, median of {args.runs} runs")
        print(
            f"{'case':<18}{'seconds':>9}{'users/s':>11}{'requests':>10}{'min':>6}{'peak RSS':>11}"
        )
        # Peak RSS is the process's peak so far: cases run in order, so a later case shows the
        # larger of its own peak and the earlier ones'.
        for name, fn in CASES.items():
            if args.only and name != args.only:
                continue
            r = measure(sandbox, fn, args.runs)
            print(
                f"{name:<18}{r['seconds']:>9.2f}{r['users_per_s']:>11.0f}{r['requests']:>10}"
                f"{minimum:>6}{r['peak_rss_mb']:>8.0f} MB"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
