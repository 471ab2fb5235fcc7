"""Pull N users from the ServiceNow sandbox: bare pysnow loop vs the adapter's full pull.

    .venv/bin/python bench/pull_servicenow.py --users 100000 --runs 3

Prints, per variant, the median seconds, users/s, requests served by the sandbox against the minimum
ceil(users / 10,000), and peak RSS. A full sync into SQLite through the engine goes next to these
as a third function taking the sandbox and returning the users synced.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import pysnow
from benchlib import measure

from seatgate.adapters.servicenow import plugin
from seatgate.adapters.servicenow.adapter import CONFIG_SCHEMA, MAX_PAGE, USER_FIELDS
from seatgate.adapters.servicenow.sandbox import ROLES, ServiceNowSandbox
from seatgate.core.plugins import RequestContext

# The same fields the adapter asks for (as bench/pull_salesforce.py sends the adapter's SOQL): the
# comparison is of two ways to read the same data.
FIELDS = list(USER_FIELDS)


def raw_pull(sandbox: ServiceNowSandbox, activated_roles: Sequence[str] = ()) -> int:
    """The minimal loop a developer writes with pysnow: offsets until a short page; with
    ``activated_roles``, the same loop over those roles' grants in sys_user_has_role first (what
    the adapter reads for auto install)."""
    settings = sandbox.basic_settings()
    client = pysnow.Client(
        host=settings["base_url"].split("://", 1)[1],
        use_ssl=False,
        user=settings["username"],
        password=settings["password"],
    )

    def loop(table: str, query: str, fields: list[str]) -> int:
        resource = client.resource(api_path=f"/table/{table}")
        count = offset = 0
        while True:
            page = resource.get(query=query, limit=MAX_PAGE, offset=offset, fields=fields).all()
            count += len(page)
            if len(page) < MAX_PAGE:
                return count
            offset += MAX_PAGE

    if activated_roles:
        query = "state=active^role.nameIN" + ",".join(activated_roles) + "^ORDERBYsys_id"
        loop("sys_user_has_role", query, ["user", "role.name"])
    return loop("sys_user", "ORDERBYsys_updated_on", FIELDS)


def adapter_pull(
    sandbox: ServiceNowSandbox,
    extra: dict[str, Any] | None = None,
    activated_roles: Sequence[str] = (),
) -> int:
    """The adapter's full pull (``seatgate_pull_users`` with ``since=None``), users counted."""
    raw = {**sandbox.basic_settings(), "timeout": 120, **(extra or {})}
    settings = CONFIG_SCHEMA.validate(raw, resolve_env=False)
    pages = plugin.seatgate_pull_users(
        product="servicenow",
        settings=settings,
        since=None,
        ctx=RequestContext(),
        activated_roles=frozenset(activated_roles),
    )
    return sum(len(page.users) for page in pages)


def adapter_pull_has_role(sandbox: ServiceNowSandbox) -> int:
    return adapter_pull(sandbox, activated_roles=ROLES)


def adapter_pull_roles_field(sandbox: ServiceNowSandbox) -> int:
    return adapter_pull(sandbox, {"roles_source": "roles_field"}, ROLES)


def adapter_pull_oauth(sandbox: ServiceNowSandbox) -> int:
    return adapter_pull(sandbox, {**sandbox.settings(), "timeout": 120}, ROLES)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    with ServiceNowSandbox(args.users) as sandbox:
        # Render every user once, so no variant pays the sandbox's first-render cost.
        raw_pull(sandbox)
        adapter_pull_roles_field(sandbox)
        print(f"ServiceNow sandbox, {args.users} users, median of {args.runs} runs")
        measure("raw pysnow loop", raw_pull, sandbox, args.runs, MAX_PAGE)
        measure(
            "raw loop, users + grants", lambda sb: raw_pull(sb, ROLES), sandbox, args.runs, MAX_PAGE
        )
        measure("adapter (no activated role)", adapter_pull, sandbox, args.runs, MAX_PAGE)
        measure("adapter (sys_user_has_role)", adapter_pull_has_role, sandbox, args.runs, MAX_PAGE)
        measure("adapter (roles field)", adapter_pull_roles_field, sandbox, args.runs, MAX_PAGE)
        measure("adapter (OAuth, has_role)", adapter_pull_oauth, sandbox, args.runs, MAX_PAGE)


if __name__ == "__main__":
    main()
