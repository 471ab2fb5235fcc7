"""Pull N operators from the Pega sandbox: the bare client loop vs the adapter's full pull.

    .venv/bin/python bench/pull_pega.py --users 100000 --runs 3

(a) ``raw_pull``: the loop a developer writes with the same httpx client (``Client``: the token,
the data view request, the JSON), keyset pages of 5,000 with the same query, no mapping;
(b) ``adapter_pull``: the adapter's ``seatgate_pull_users`` full pull (read-ahead, mapping to
users). Per case: median seconds, users/s, requests served against the minimum
ceil(users / 5,000) (the token request counted apart), and peak RSS.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Sequence
from typing import Any

from adapter_sync import RemoteSandbox
from benchlib import peak_rss_mb

from seatgate.adapters.pega import plugin
from seatgate.adapters.pega.adapter import (
    CONFIG_SCHEMA,
    MAX_PAGE,
    Client,
    Cursor,
    FieldMap,
    query_body,
)
from seatgate.adapters.pega.sandbox import OPERATORS_VIEW
from seatgate.core.plugins import RequestContext


def raw_pull(sandbox: Any, activated_roles: Sequence[str] = ()) -> int:
    """Every operator with the bare client: the adapter's own query (so both read the same data),
    keyset on pyUserIdentifier until a page says there is no more. Access groups come with the
    record: activated roles need nothing more."""
    settings = sandbox.settings()
    fields = FieldMap()
    ctx = RequestContext()
    count = 0
    with Client(settings["base_url"], settings["client_id"], settings["client_secret"]) as client:
        cursor = Cursor(1, None)
        while True:
            body = query_body(fields, cursor, since=None, page_size=MAX_PAGE)
            page = client.list_data_view(ctx, OPERATORS_VIEW, body)
            rows = page["data"]
            count += len(rows)
            if not rows or not page.get("hasMoreResults", len(rows) == MAX_PAGE):
                return count
            cursor = Cursor(1, rows[-1]["pyUserIdentifier"])


def adapter_pull(sandbox: Any) -> int:
    """The adapter's full pull; returns how many users it yielded."""
    settings = CONFIG_SCHEMA.validate(sandbox.settings(), resolve_env=False)
    pages = plugin.seatgate_pull_users(
        product="pega", settings=settings, since=None, ctx=RequestContext()
    )
    return sum(len(page.users) for page in pages)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"command: python bench/pull_pega.py --users {args.users} --runs {args.runs}")
    minimum = math.ceil(args.users / MAX_PAGE)
    print(f"goal: requests = ceil(users / 5,000) = {minimum} (+1 token); adapter ~ raw pull")
    # The sandbox serves from a process of its own (bench/adapter_sync.py's RemoteSandbox), and
    # drops what it rendered before each run: both cases pay the same server work, and neither
    # shares this process's GIL with the server.
    with RemoteSandbox("pega", args.users) as sandbox:
        # Peak RSS is the process's peak so far: the later case shows the larger of the two.
        for name, fn in (("raw client pull", raw_pull), ("adapter pull", adapter_pull)):
            times, users, requests = [], 0, (0, 0)
            for _ in range(args.runs):
                sandbox.drop_caches()
                before = sandbox.counts()
                start = time.perf_counter()
                users = fn(sandbox)
                times.append(time.perf_counter() - start)
                after = sandbox.counts()
                requests = (after[0] - before[0] - (after[1] - before[1]), after[1] - before[1])
            median = statistics.median(times)
            print(
                f"{name:<16} users={users:>7}  median {median:6.3f} s  {users / median:>9,.0f} "
                f"users/s  requests={requests[0]} (min {minimum}) + {requests[1]} token  "
                f"peak RSS={peak_rss_mb():.0f} MB"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
