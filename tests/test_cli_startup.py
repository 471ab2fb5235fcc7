"""A fast CLI (issue 10): a command imports what it uses and nothing else.

``seatgate check`` runs at every login of a CTI that shells out to it, so its cost is mostly the
imports. These tests hold the two mechanisms that keep them small: the top-level commands are
loaded by module on first lookup (:data:`seatgate.core.entrypoints.cli.COMMANDS`), and the
composition root, the unit of work and the ports import a service or a repository only when it is
first used. The time itself is measured by ``bench/cli_startup.py``, never asserted here.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from seatgate.core.entrypoints.cli import COMMAND_MODULES, COMMANDS, main_group
from seatgate.core.testing.setup import ONE_SEAT_COMMANDS

CLI = "seatgate.core.entrypoints.cli"


def test_every_top_level_command_is_mapped_to_the_module_that_registers_it() -> None:
    registered: dict[str, str] = {}
    for module in COMMAND_MODULES:
        group = click.Group("probe")
        importlib.import_module(f"{CLI}.{module}").register(group)
        for name in group.commands:
            assert name not in registered, f"{name} registered by {registered[name]} and {module}"
            registered[name] = module
    # A command a module registers but COMMANDS does not name would be invisible until another
    # command of its module happened to be looked up: the map must be exactly what they register.
    assert registered == COMMANDS


def test_help_lists_every_command_and_a_lookup_finds_each() -> None:
    ctx = click.Context(main_group)
    assert main_group.list_commands(ctx) == sorted(COMMANDS)
    for name in COMMANDS:
        command = main_group.get_command(ctx, name)
        assert command is not None and command.name is not None
    assert main_group.get_command(ctx, "no-such-command") is None


def _modules_loaded_by(argv: list[str]) -> tuple[str, list[str]]:
    """(what the command printed, the modules loaded) in a fresh interpreter."""
    probe = (
        "import json, sys\n"
        f"from {CLI} import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False, timeout=120
    )
    *printed, modules = done.stdout.strip().splitlines()
    return "\n".join(printed), json.loads(modules)


def test_check_loads_one_command_module_one_service_and_no_other_layer(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/seatgate.db"
    for argv in ONE_SEAT_COMMANDS:
        base = ["--db", db, "--as-of", "2026-01-10", "--actor", "admin@acme.example"]
        done = CliRunner().invoke(main_group, [*base, *argv])
        assert done.exit_code == 0, done.output
    printed, modules = _modules_loaded_by(
        [
            "--db",
            db,
            "--as-of",
            "2026-03-20",
            "check",
            "acme",
            "salesforce",
            "ada@acme.example",
            "cti",
        ]
    )
    assert "allowed" in printed.lower(), printed
    loaded = set(modules)
    commands = {m.rsplit(".", 1)[1] for m in loaded if m.startswith(f"{CLI}.")}
    assert commands <= {"seats", "params", "files", "paging"}, commands
    services = {m for m in loaded if m.startswith("seatgate.core.services.")}
    services -= {m for m in services if m.startswith("seatgate.core.services.ports")}
    # stopping: the SIGTERM handler's note (a module of no imports, loaded before any command).
    assert services == {
        "seatgate.core.services.entitlement",
        "seatgate.core.services.stopping",
    }, services
    repositories = {m.rsplit(".", 1)[1] for m in loaded if ".storage.repositories." in m}
    # The snapshot reads the contract (contracts), its contracted quantity (billing, which
    # reads add-ons: orders); no other repository.
    assert repositories <= {"snapshots", "contracts", "billing", "orders"}, repositories
    heavy = {
        "alembic",
        "seatgate.core.domain.events",  # 16 attrs classes, for listeners and the outbox
        "sqlalchemy.dialects.postgresql",
        "iso4217",
        "httpx",
        "requests",
        "rich",
        "cryptography",
        "jinja2",
        "fastapi",
        "celery",
        "psycopg",
    }
    assert not heavy & loaded, heavy & loaded
