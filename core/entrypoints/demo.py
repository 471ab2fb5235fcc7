"""``make demo``: the whole story, end to end, against a local Salesforce sandbox.

An account in the UK buys 150 Salesforce seats; its CRM has 200 integration users. Manage Seats is
enabled (grandfathering all 200: the account is in overage), a new agent appears in the CRM and
cannot be seated, restrictions begin and the unseated agent is denied, the admin buys seats, the
agent is seated, and the bill is previewed. Each step is the real CLI, printed as a user would type
it, against a throwaway SQLite database.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import tempfile
from pathlib import Path

from click.testing import CliRunner

from ..errors import SeatgateError
from .cli import main_group

ADMIN = "admin@acme.example"


def run(
    runner: CliRunner, *args: str, as_of: str, says: str, expect: tuple[int, ...] = (0,)
) -> str:
    """Print what the step shows (``says``), the command as a user would type it, and its output."""
    argv = ["--as-of", as_of, "--actor", ADMIN, *args]
    print(f"\n# {says}")
    print(f"$ seatgate {shlex.join(argv)}")
    result = runner.invoke(main_group, argv)
    print(result.output.rstrip())
    exit_code = result.exit_code
    if isinstance(result.exception, SeatgateError):  # what `seatgate` itself prints for it
        print(f"error: {result.exception}")
        exit_code = result.exception.exit_code
    elif result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    if exit_code not in expect:
        print(f"(unexpected exit code {result.exit_code})", file=sys.stderr)
        sys.exit(1)
    return result.output


def main() -> None:
    from seatgate.adapters.salesforce import plugin
    from seatgate.adapters.salesforce.sandbox import SalesforceSandbox

    with tempfile.TemporaryDirectory() as tmp, SalesforceSandbox(users=200) as crm:
        os.environ["SEATGATE_DATABASE_URL"] = f"sqlite:///{tmp}/demo.db"
        # A real config file names its secrets as ${ENV_VAR}; seatgate never stores them in clear.
        settings = crm.settings()
        schema = plugin.seatgate_adapter_info().config_schema
        for field in schema.fields:
            if field.secret and field.name in settings:
                env = f"SALESFORCE_{field.name.upper()}"
                os.environ[env] = str(settings[field.name])
                settings[field.name] = "${" + env + "}"
        config = Path(tmp, "salesforce.json")
        config.write_text(json.dumps(settings, indent=2))
        os.environ.setdefault("COLUMNS", "120")  # room for the invoice table
        runner = CliRunner()
        print(f"A Salesforce sandbox with 200 users is listening at {crm.url}")

        day0 = "2025-09-15T09:00:00Z"
        run(
            runner,
            "account",
            "create",
            "acme",
            "--region",
            "UK",
            as_of=day0,
            says="A customer account in the UK: the region decides its enforcement dates (seed 000).",
        )
        run(
            runner,
            "account",
            "grant",
            "acme",
            ADMIN,
            "--permission",
            "manage",
            as_of=day0,
            says="Its admin gets Manage: purchasing authority to install, buy and assign (seed 002).",
        )
        run(
            runner,
            "contract",
            "create",
            "acme",
            "salesforce",
            "--seats",
            "150",
            "--plan",
            "standard",
            "--frequency",
            "quarterly",
            "--start",
            "2025-10-01",
            "--months",
            "12",
            as_of=day0,
            says="The contract: 150 Salesforce seats, billed quarterly for a 12-month term.",
        )
        run(
            runner,
            "install",
            "acme",
            "salesforce",
            "--config",
            str(config),
            as_of=day0,
            says="Install the adapter: the config names its secrets as ${ENV} references only.",
        )
        run(
            runner,
            "sync",
            "acme",
            "salesforce",
            "--full",
            as_of=day0,
            says="A full sync pulls the CRM's 200 integration users into the account.",
        )

        run(
            runner,
            "billing",
            "run",
            "--period",
            "2025-10",
            as_of="2025-10-01T06:00:00Z",
            says="October's billing run invoices the first quarter of the contract.",
        )
        enabled = "2025-10-04T00:00:00Z"  # Manage Seats is enabled in the UK (seed 000)
        run(
            runner,
            "seats",
            "grandfather",
            "acme",
            "salesforce",
            as_of=enabled,
            says="Manage Seats is enabled: all 200 active users keep a seat, 50 above the contract.",
        )
        run(
            runner,
            "billing",
            "run",
            "--period",
            "2026-01",
            as_of="2026-01-01T06:00:00Z",
            says="January's run invoices the next quarter; the account is in overage.",
        )

        crm.store.add(1)  # a new agent appears in the CRM
        run(
            runner,
            "sync",
            "acme",
            "salesforce",
            as_of="2026-02-01T09:00:00Z",
            says="A new agent appeared in the CRM; in overage, the sync cannot seat it.",
        )
        newcomer = crm.store.users[-1].email
        run(
            runner,
            "check",
            "acme",
            "salesforce",
            newcomer,
            "cti",
            as_of="2026-02-01T09:05:00Z",
            says="Before restrictions begin, the unseated newcomer is still allowed (grace).",
            expect=(0,),
        )
        run(
            runner,
            "check",
            "acme",
            "salesforce",
            newcomer,
            "cti",
            as_of="2026-03-16T09:00:00Z",
            says="From the restriction date the unseated newcomer is denied: exit 1.",
            expect=(1,),
        )
        run(
            runner,
            "seats",
            "buy",
            "acme",
            "salesforce",
            "--quantity",
            "60",
            as_of="2026-03-16T10:00:00Z",
            says="The purchase summary for 60 more seats, co-termed: nothing is bought yet.",
        )
        run(
            runner,
            "seats",
            "buy",
            "acme",
            "salesforce",
            "--quantity",
            "60",
            "--yes",
            as_of="2026-03-16T10:01:00Z",
            says="--yes buys them: the account is out of overage.",
        )
        run(
            runner,
            "seats",
            "assign",
            "acme",
            "salesforce",
            newcomer,
            as_of="2026-03-16T10:02:00Z",
            says="Now the newcomer can be given a seat.",
        )
        run(
            runner,
            "check",
            "acme",
            "salesforce",
            newcomer,
            "cti",
            as_of="2026-03-16T10:03:00Z",
            says="Seated, the newcomer is allowed again.",
        )
        run(
            runner,
            "billing",
            "preview",
            "acme",
            "salesforce",
            "--period",
            "2026-04",
            as_of="2026-03-16T10:04:00Z",
            says="April's invoice as it stands: the seats bought are billed from the purchase.",
        )
        print("\nDemo finished: every step above is a real command against a real sandbox.")


if __name__ == "__main__":
    main()
