"""``seatgate adapters`` (list, enable, disable), ``seatgate install``, ``seatgate new-adapter`` and
``seatgate sandbox``: the adapters, per-account installations, and the tools of adapter authors."""

from __future__ import annotations

import importlib
import importlib.util
import json
import pkgutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ...errors import BadInput, NotFound
from . import Context, pass_ctx

if TYPE_CHECKING:
    from rich.console import Console

    from ...plugins.sandbox import Sandbox


@click.group()
def adapters() -> None:
    """CRM adapters: what is loaded, and where it came from."""


def list_adapters() -> dict[str, Any]:
    """The loaded adapters and the plugins that were skipped, as ``adapters list --json`` prints."""
    from ...plugins.manager import build_plugin_manager

    plugins = build_plugin_manager()
    return {
        "adapters": [adapter.as_dict() for adapter in plugins.registry],
        "problems": [
            {"name": p.name, "origin": p.origin, "reason": p.reason} for p in plugins.problems
        ],
    }


@adapters.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@pass_ctx
def adapters_list(ctx: Context, as_json: bool) -> None:
    """Name, products, version, gated features, config schema and origin of each adapter."""
    ctx.json = ctx.json or as_json
    data = list_adapters()

    def human(console: Console) -> None:
        from rich.table import Table

        table = Table("adapter", "products", "version", "features", "settings", "origin")
        for a in data["adapters"]:
            fields = a["config_schema"]["fields"] if isinstance(a["config_schema"], dict) else []
            table.add_row(
                a["name"],
                ", ".join(a["products"]),
                a["version"],
                "\n".join(f"{p}: {len(f)}" for p, f in a["features"].items()),
                f"{len(fields)} ({sum(f['required'] for f in fields)} required)",
                a["origin"],
            )
        console.print(table)
        for p in data["problems"]:
            click.echo(
                f"warning: plugin {p['name']} ({p['origin']}) skipped: {p['reason']}", err=True
            )

    ctx.emit(data, human)


@click.command("new-adapter")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where to create the package folder.",
)
@pass_ctx
def new_adapter(ctx: Context, name: str, directory: Path) -> None:
    """Write a working adapter package NAME: entry point, adapter, sandbox and a kit test."""
    from ..scaffold import new_adapter as write_adapter

    root = write_adapter(name, directory)
    ctx.emit(
        {"adapter": name, "path": str(root)},
        lambda c: c.print(f"adapter {name} written to {root}; cd there and run pytest"),
    )


def start_sandbox(name: str, users: int, port: int) -> Sandbox:
    """Start the sandbox of the built-in adapter ``name`` (its module-level ``SANDBOX`` class)."""
    import seatgate.adapters

    # The built-in adapters that ship a sandbox; a name is checked against them before import.
    known = sorted(
        m.name
        for m in pkgutil.iter_modules(seatgate.adapters.__path__)
        if m.ispkg and importlib.util.find_spec(f"seatgate.adapters.{m.name}.sandbox")
    )
    if name not in known:
        raise NotFound("adapter sandbox", name, f"one of {', '.join(known)}")
    module_name = f"seatgate.adapters.{name}.sandbox"
    module = importlib.import_module(module_name)
    sandbox_class = getattr(module, "SANDBOX", None)
    if sandbox_class is None:
        raise NotFound("adapter sandbox", name, f"{module_name} defines no SANDBOX")
    sandbox: Sandbox = sandbox_class(users=users, port=port)
    try:
        return sandbox.start()
    except ValueError:  # the port is taken (core.sandbox says so in its own words)
        raise BadInput("--port", port, "a free port, or 0 for any") from None


@click.command("sandbox")
@click.argument("name")
@click.option("--users", type=click.IntRange(min=0), default=100, show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Default: a free port.")
@pass_ctx
def sandbox(ctx: Context, name: str, users: int, port: int) -> None:
    """Serve adapter NAME's sandbox CRM on 127.0.0.1 until Ctrl-C, and print the settings to use."""
    sb = start_sandbox(name, users, port)
    try:
        # The sandbox's credentials are fake ones it made up, so they are shown in clear.
        settings = sb.settings()

        def human(console: Console) -> None:
            console.print(f"{name} sandbox with {users} users at {sb.url} (Ctrl-C to stop)")
            console.print("settings:")
            console.print(json.dumps(settings, indent=2), markup=False)

        ctx.emit({"adapter": name, "url": sb.url, "users": users, "settings": settings}, human)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sb.stop()


@click.command("install")
@click.argument("account")
@click.argument("product")
@click.option(
    "--config",
    "config_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSON or TOML settings; secrets as ${ENV_VAR} references.",
)
@click.option("--plan", help="Without a contract: the base plan to buy self-serve.")
@click.option("--users", type=int, help="Without a contract: how many users to buy.")
@click.option(
    "--yes", "confirm", is_flag=True, help="Commit a self-serve purchase (else: summary)."
)
@pass_ctx
def install_cmd(
    ctx: Context,
    account: str,
    product: str,
    config_file: Path,
    plan: str | None,
    users: int | None,
    confirm: bool,
) -> None:
    """Install PRODUCT's adapter on ACCOUNT (needs install or manage; a purchase commitment).
    Without a contract, --plan and --users buy it self-serve, month to month at the then-listed
    price: the purchase summary first, --yes to commit."""
    from .files import load_config_file

    config = load_config_file(config_file)
    result = ctx.app.installs.install(
        account, product, config, ctx.actor, plan=plan, users=users, confirm=confirm
    )

    def human(console: Console) -> None:
        bought = result.purchase
        if bought is not None:
            console.print(
                f"{product} {bought['plan']} ({bought['charge_model']}), {bought['users']} "
                f"user(s): {bought['per_period']} {bought['currency']} per month at the listed "
                f"{bought['list_price']}/month, month to month — {bought['note']}"
            )
        if not result.committed:
            console.print("summary only, nothing bought or installed: add --yes to buy")
            return
        verb = "reinstalled" if result.reinstalled else "installed"
        console.print(f"{verb} {product} on {account} (adapter {result.adapter})")
        if result.uninstall_withdrawn is not None:
            console.print(f"the uninstall effective {result.uninstall_withdrawn} is withdrawn")
        for key, value in result.settings.items():
            console.print(f"  {key} = {value}")

    ctx.emit(result.as_dict(), human)


def _toggle(enabled: bool) -> click.Command:
    verb = "enable" if enabled else "disable"

    @click.command(verb)
    @click.argument("account")
    @click.argument("product")
    @pass_ctx
    def command(ctx: Context, account: str, product: str) -> None:
        changed = ctx.app.installs.set_enabled(account, product, enabled, ctx.actor)
        state = "enabled" if enabled else "disabled"
        ctx.emit(
            {"account": account, "product": product, "enabled": enabled, "changed": changed},
            lambda c: c.print(
                f"{product} on {account} {'is now' if changed else 'was already'} {state}"
            ),
        )

    command.help = (
        "Resume syncs and checks of an installed adapter (no billing effect)."
        if enabled
        else "Pause an installed adapter: syncs stop, checks answer adapter_disabled "
        "(no billing effect)."
    )
    return command


adapters.add_command(_toggle(True))
adapters.add_command(_toggle(False))


def register(main: click.Group) -> None:
    main.add_command(adapters)
    main.add_command(install_cmd)
    main.add_command(new_adapter)
    main.add_command(sandbox)
