"""Pull N users from the Salesforce sandbox: bare simple-salesforce loop vs the adapter's full pull.

    .venv/bin/python bench/pull_salesforce.py --users 100000 --runs 3

Prints, per variant, the median seconds, users/s, requests served by the sandbox against the minimum
ceil(users / 2000), and peak RSS (of the whole process: the sandbox runs in it too). A full sync into
SQLite through the engine goes next to these as a third function taking the sandbox and returning
the users synced.
"""

from __future__ import annotations

import argparse
import math
import resource
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import requests
from simple_salesforce import Salesforce

from seatgate.adapters.salesforce import plugin
from seatgate.adapters.salesforce.sandbox import SalesforceSandbox
from seatgate.core.retry import RequestContext

LARGEST_PAGE = 2000
RAW_SOQL = (
    "SELECT Id, Username, Email, Name, IsActive, Profile.Name, UserRole.Name, SystemModstamp"
    " FROM User WHERE UserType = 'Standard'"
)


class _PlainHttp(requests.Session):
    """What a developer writes to reach a local org: simple-salesforce hard-codes https://."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.https = "https://" + base.split("://", 1)[1]
        self.base = base

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        target = url.decode() if isinstance(url, bytes) else url
        return super().request(method, target.replace(self.https, self.base), *args, **kwargs)


def raw_pull(sandbox: SalesforceSandbox) -> int:
    """The minimal loop a developer writes with simple-salesforce: query_all_iter at 2000 a page."""
    sf = Salesforce(
        session_id=sandbox.SESSION_ID,
        instance_url=sandbox.url.replace("http://", "https://"),
        session=_PlainHttp(sandbox.url),
    )
    headers = {"Sforce-Query-Options": f"batchSize={LARGEST_PAGE}"}
    return sum(1 for _ in sf.query_all_iter(RAW_SOQL, headers=headers))


def adapter_pull(sandbox: SalesforceSandbox, auth: str = "session") -> int:
    """The adapter's full pull (``seatgate_pull_users`` with ``since=None``), users counted."""
    schema = plugin.seatgate_adapter_info().config_schema
    settings = schema.validate(sandbox.settings(auth) | {"timeout": 120}, resolve_env=False)
    pages = plugin.seatgate_pull_users(
        product="salesforce", settings=settings, since=None, ctx=RequestContext()
    )
    return sum(len(page.users) for page in pages)


def adapter_pull_password(sandbox: SalesforceSandbox) -> int:
    return adapter_pull(sandbox, "password")


def peak_rss_mb() -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS.
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / (1024 * 1024)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def measure(
    name: str, fn: Callable[[SalesforceSandbox], int], sandbox: SalesforceSandbox, runs: int
) -> float:
    times, served = [], []
    count = 0
    for _ in range(runs):
        before = sandbox.requests
        start = time.perf_counter()
        count = fn(sandbox)
        times.append(time.perf_counter() - start)
        served.append(sandbox.requests - before)
    seconds = statistics.median(times)
    minimum = math.ceil(len(sandbox.store.users) / LARGEST_PAGE)
    print(
        f"{name:<26} users={count:>7}  {seconds:7.3f} s  {count / seconds:>9,.0f} users/s  "
        f"requests={int(statistics.median(served))} (min {minimum})  "
        f"peak RSS={peak_rss_mb():.0f} MB"
    )
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    with SalesforceSandbox(args.users) as sandbox:
        # Render every user once per field list, so no variant pays the sandbox's first render;
        # the password variant's login is then cached by the plugin, as between real sync runs.
        raw_pull(sandbox)
        adapter_pull_password(sandbox)
        print(f"Salesforce sandbox, {args.users} users, median of {args.runs} runs")
        raw = measure("raw simple-salesforce loop", raw_pull, sandbox, args.runs)
        adapter = measure("adapter (session id)", adapter_pull, sandbox, args.runs)
        measure("adapter (password login)", adapter_pull_password, sandbox, args.runs)
        print(f"adapter / raw = {adapter / raw:.2f}")


if __name__ == "__main__":
    main()
