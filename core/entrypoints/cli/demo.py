"""``seatgate demo`` (what ``make demo`` runs): the whole story, end to end, against seven local CRM
sandboxes.

An account in the UK buys each of the seven paid CRM integrations of seed 000 and installs them;
each connector syncs its CRM's users (one sandbox per CRM, started in this process and stopped at
the end). Then the rules at work, on Salesforce and HubSpot: Manage Seats is enabled and the users
above the contract are grandfathered (the account is in overage); a new agent appears in the CRM
and is gated; an admin's assignment is refused ``in_overage``; the unseated agent keeps access in
the transition and is denied once restrictions begin; the admin buys seats and seats the agent;
HubSpot, still in overage, is billed for it once overage billing begins.

Every step is the real CLI, printed as a user would type it, against a throwaway SQLite database.
``seatgate --json demo`` prints one JSON document instead: the per-connector counts under each
product's name, and every step with its command, exit code and JSON answer.
"""

from __future__ import annotations

import json
import os
import shlex
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import click
from click.testing import CliRunner

from ...errors import SeatgateError
from . import Context, pass_ctx

ADMIN = "admin@acme.example"
ACCOUNT = "acme"
USERS = 200

# product -> (adapter, contracted seats, activated roles for auto install)
CONNECTORS: dict[str, tuple[str, int, list[str]]] = {
    "salesforce": ("salesforce", 150, []),
    "salesforce_voice": ("salesforce", 120, []),
    "servicenow": ("servicenow", 60, ["sn_openframe_user"]),
    "hubspot": ("hubspot", 150, []),
    "oracle_sc": ("oracle", 250, []),
    "sap_c4c": ("sap_c4c", 250, []),
    "pega": ("pega", 250, []),
}
COUNTS = ("pulled", "seated", "gated", "agents_synced", "quarantined", "requests")


class Story:
    """Runs CLI steps in process and keeps what they answered."""

    def __init__(self, as_json: bool) -> None:
        from . import main_group

        self.main_group = main_group
        self.runner = CliRunner()
        self.as_json = as_json
        self.steps: list[dict[str, Any]] = []

    def invoke(self, argv: list[str]) -> tuple[int, str, Any]:
        """Run ``seatgate ARGV`` in process: (exit code, output, the exception if any)."""
        result = self.runner.invoke(self.main_group, argv)
        code = result.exit_code
        if isinstance(result.exception, SeatgateError):  # what `seatgate` itself would answer
            code = result.exception.exit_code
        elif result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return code, result.output, result.exception

    def run(self, *args: str, at: str, says: str, expect: tuple[int, ...] = (0,)) -> None:
        """One step, run once: ``says`` what it shows. With ``--json`` its JSON answer is kept;
        otherwise the command and its output are printed as a user would see them."""
        argv = ["--as-of", at, "--actor", ADMIN, *args]
        if self.as_json:
            code, output, exc = self.invoke(["--json", *argv])
            answer: Any = json.loads(output) if output.strip() else None
            if isinstance(exc, SeatgateError) and answer is None:
                answer = {"error": {"code": exc.code, "message": str(exc)}}
            self.steps.append(
                {"says": says, "command": ["seatgate", *argv], "exit_code": code, "answer": answer}
            )
        else:
            print(f"\n# {says}")
            print(f"$ seatgate {shlex.join(argv)}")
            code, output, exc = self.invoke(argv)
            print(output.rstrip() or (f"error: {exc}" if exc is not None else ""))
        if code not in expect:
            raise SystemExit(f"demo step failed (exit {code}): seatgate {shlex.join(argv)}")

    def last_run(self, product: str, at: str) -> dict[str, Any]:
        """The counts of the product's latest sync run (read-only: ``runs list --json``)."""
        code, output, _ = self.invoke(
            ["--json", "--as-of", at, "runs", "list", ACCOUNT, product, "--limit", "1"]
        )
        rows = json.loads(output) if code == 0 else []
        return dict(rows[0]) if rows else {}


@contextmanager
def sandboxes(tmp: Path) -> Iterator[dict[str, Path]]:
    """Start one sandbox per CRM (in this process) and write each product's config file, secrets
    as ``${ENV}`` references with the environment set; stop them all at the end."""
    from .adapters import sandbox_config, start_sandbox

    with ExitStack() as stack:
        started: dict[str, Any] = {}
        configs: dict[str, Path] = {}
        for product, (adapter, _, roles) in CONNECTORS.items():
            sb = started.get(adapter)
            if sb is None:
                sb = started[adapter] = start_sandbox(adapter, USERS, 0)
                stack.callback(sb.stop)
            config, env = sandbox_config(adapter, dict(sb.settings()))
            os.environ.update(env)
            if roles:
                config["activated_roles"] = roles
            path = tmp / f"{product}.json"
            path.write_text(json.dumps(config, indent=2))
            configs[product] = path
        yield configs


def story(as_json: bool) -> dict[str, Any]:
    """Run the demo; returns its JSON document (also what ``--json`` prints)."""
    began = time.perf_counter()
    story = Story(as_json)
    connectors: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        saved = {k: os.environ.get(k) for k in ("SEATGATE_DATABASE_URL", "COLUMNS")}
        os.environ["SEATGATE_DATABASE_URL"] = f"sqlite:///{tmp}/demo.db"
        os.environ.setdefault("COLUMNS", "120")  # room for the invoice table
        try:
            with sandboxes(Path(tmp)) as configs:
                day0 = "2025-09-15T09:00:00Z"
                story.run("account", "create", ACCOUNT, "--region", "UK", at=day0,
                          says="A customer account in the UK: the region sets its enforcement "
                               "dates (seed 000).")  # fmt: skip
                story.run("account", "grant", ACCOUNT, ADMIN, "--permission", "manage", at=day0,
                          says="Its admin holds Manage: purchasing authority (seed 002).")  # fmt: skip
                for product, (_, seats, _) in CONNECTORS.items():
                    story.run("contract", "create", ACCOUNT, product, "--seats", str(seats),
                              "--plan", "standard", "--frequency", "quarterly",
                              "--start", "2025-10-01", "--months", "12", at=day0,
                              says=f"It buys {seats} seats of {product} on a signed order form.")  # fmt: skip
                    story.run("install", ACCOUNT, product, "--config", str(configs[product]),
                              at=day0, says=f"It installs {product}: a purchase commitment; the "
                              "config names its secrets as ${ENV} references.")  # fmt: skip
                    story.run("sync", ACCOUNT, product, "--full", at=day0,
                              says=f"The {product} connector pulls its CRM's users.")  # fmt: skip
                    run = story.last_run(product, day0)
                    connectors[product] = {k: run.get(k, 0) for k in COUNTS}
                _rules(story)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    document = {
        "account": ACCOUNT,
        "connectors": connectors,
        "steps": story.steps,
        "seconds": round(time.perf_counter() - began, 1),
    }
    if not as_json:
        _print_connectors(connectors)
        print(f"\nDemo finished in {document['seconds']} s: every step above is a real command "
              "against a real sandbox.")  # fmt: skip
    return document


def _rules(story: Story) -> None:
    """The rules of the seeds at work, on Salesforce (bought its way out of overage) and HubSpot
    (left in overage, billed for it)."""
    enabled = "2025-10-04T00:00:00Z"  # Manage Seats is enabled in the UK (seed 000)
    for product in ("salesforce", "hubspot"):
        story.run("seats", "grandfather", ACCOUNT, product, at=enabled,
                  says=f"Enablement: every {product} user keeps a seat, even above the contract "
                       "(grandfathered); the account is now in overage.")  # fmt: skip
    crm = "2026-02-01T09:00:00Z"
    newcomer = "user000201@example.com"
    story.run("users", "add", ACCOUNT, newcomer, at=crm,
              says="A new agent joins the account.")  # fmt: skip
    story.run("seats", "assign", ACCOUNT, "salesforce", newcomer, at=crm, expect=(1,),
              says="In overage no user can be added: the assignment is refused in_overage "
                   "(seed 000).")  # fmt: skip
    story.run("check", ACCOUNT, "salesforce", "user000001@example.com", "cti", at=crm,
              says="A grandfathered agent works on: seated.")  # fmt: skip
    story.run("check", ACCOUNT, "servicenow", newcomer, "cti", at=crm,
              says="On ServiceNow (not in overage) the unseated newcomer keeps access in the "
                   "transition, warned of the date restrictions begin (grace).")  # fmt: skip
    story.run("check", ACCOUNT, "salesforce", newcomer, "cti", at="2026-03-16T09:00:00Z",
              expect=(1,), says="Restrictions begin on 2026-03-16: the unseated agent is "
                                "denied the CTI.")  # fmt: skip
    story.run("seats", "buy", ACCOUNT, "salesforce", "--quantity", "60",
              at="2026-03-16T10:00:00Z",
              says="The way out of overage: the purchase summary first, nothing bought.")  # fmt: skip
    story.run("seats", "buy", ACCOUNT, "salesforce", "--quantity", "60", "--yes",
              at="2026-03-16T10:01:00Z",
              says="Then the purchase, co-termed with the contract.")  # fmt: skip
    story.run("seats", "assign", ACCOUNT, "salesforce", newcomer, at="2026-03-16T10:02:00Z",
              says="Out of overage: the agent gets a seat.")  # fmt: skip
    story.run("check", ACCOUNT, "salesforce", newcomer, "cti", at="2026-03-16T10:03:00Z",
              says="And the CTI lets them in.")  # fmt: skip
    story.run("billing", "preview", ACCOUNT, "hubspot", "--period", "2026-07",
              at="2026-07-01T06:00:00Z",
              says="HubSpot stayed in overage past 2026-05-04: its users above the contract are "
                   "billed (seed 000).")  # fmt: skip


def _print_connectors(connectors: dict[str, dict[str, Any]]) -> None:
    print("\nOne line per connector (the full sync of each):")
    print(f"  {'product':<18}" + "".join(f"{name:>14}" for name in COUNTS))
    for product, counts in connectors.items():
        print(f"  {product:<18}" + "".join(f"{counts.get(n, 0):>14}" for n in COUNTS))


def main(as_json: bool = False) -> None:
    document = story(as_json)
    if as_json:
        print(json.dumps(document, indent=2, default=str))


@click.command("demo")
@pass_ctx
def demo(ctx: Context) -> None:
    """Install and sync all seven products against their sandboxes, then show the rules at work
    (in a throwaway database; --json: one document with each connector's counts)."""
    main(as_json=ctx.json)


def register(main_group: click.Group) -> None:
    main_group.add_command(demo)
