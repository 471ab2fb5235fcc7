"""``seatgate adapters`` (list, enable, disable), ``seatgate install``, ``seatgate new-adapter`` and
``seatgate sandbox``: the adapters, per-account installations, and the tools of adapter authors."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import pkgutil
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ...errors import BadInput, NotFound
from . import Context, params, pass_ctx, plural, table

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
        grid = table("adapter", "products", "version", "features", "settings", "origin")
        for a in data["adapters"]:
            fields = a["config_schema"]["fields"] if isinstance(a["config_schema"], dict) else []
            grid.add_row(
                a["name"],
                ", ".join(a["products"]),
                a["version"],
                "\n".join(f"{p}: {len(f)}" for p, f in a["features"].items()),
                f"{len(fields)} ({sum(f['required'] for f in fields)} required)",
                a["origin"],
            )
        console.print(grid)
        for p in data["problems"]:
            click.echo(
                f"warning: plugin {p['name']} ({p['origin']}) skipped: {p['reason']}", err=True
            )

    ctx.emit(data, human)


@click.command("new-adapter")
@click.argument("name", type=params.LABEL)
@click.option(
    "--dir",
    "directory",
    type=params.DirPath(),
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


def sandbox_config(name: str, settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """A config file for the sandbox's ``settings`` as a user would write it — each secret as a
    ``${NAME_FIELD}`` reference (``install`` refuses secrets in clear) — and the environment
    those references need (the sandbox's own made-up credentials)."""
    from ...plugins.manager import build_plugin_manager

    secret: set[str] = set()
    for adapter in build_plugin_manager().registry:
        if adapter.name == name and hasattr(adapter.info.config_schema, "fields"):
            secret = {f.name for f in adapter.info.config_schema.fields if f.secret}
    config: dict[str, Any] = {}
    env: dict[str, str] = {}
    for key, value in settings.items():
        if key in secret:
            var = f"{name}_{key}".upper()
            env[var] = str(value)
            config[key] = "${" + var + "}"
        else:
            config[key] = value
    return config, env


def _exports(env: dict[str, str]) -> list[str]:
    return [f"export {var}={shlex.quote(value)}" for var, value in env.items()]


def _serve_in_background(name: str, users: int, port: int) -> tuple[int, dict[str, Any]]:
    """Start ``seatgate sandbox NAME --serve`` as a process of its own session (it outlives this
    one and the terminal) and return its pid and the first line it prints: its URL and settings."""
    argv = [
        sys.executable, "-c", "from seatgate.core.entrypoints.cli import main; main()",
        "sandbox", name, "--users", str(users), "--port", str(port), "--serve",
    ]  # fmt: skip
    child = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        text=True,
    )
    assert child.stdout is not None and child.stderr is not None
    line = child.stdout.readline()  # the child prints one line once it serves, or exits
    if not line:
        error = child.stderr.read().strip().removeprefix("error: ")
        child.wait()
        raise BadInput("sandbox", name, error or "a sandbox that starts")
    child.stdout.close()
    child.stderr.close()
    return child.pid, json.loads(line)


def _write_config(path: Path | None, config: dict[str, Any]) -> None:
    """Write the sandbox's settings to ``path`` (if given); :class:`BadInput` naming it when it
    cannot be written (a directory removed meanwhile, no permission)."""
    if path is None:
        return
    try:
        path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise BadInput(
            "--config", str(path), f"a file seatgate can write ({exc.strerror})"
        ) from None


@click.command("sandbox")
@click.argument("name", type=params.LABEL)
@click.option("--users", type=params.counted(1_000_000, minimum=0), default=100, show_default=True)
@click.option("--port", type=params.PORT, default=0, help="Default: a free port.")
@click.option(
    "--config",
    "config_file",
    type=params.OutputFile(),
    help="Write the settings to FILE, secrets as ${ENV} references (for `seatgate install`).",
)
@click.option(
    "--background",
    is_flag=True,
    help="Serve from a process of its own and return; prints `export` lines for eval and the "
    "pid in SEATGATE_SANDBOX_PID.",
)
@click.option("--serve", is_flag=True, hidden=True, help="Internal: the --background process.")
@pass_ctx
def sandbox(
    ctx: Context,
    name: str,
    users: int,
    port: int,
    config_file: Path | None,
    background: bool,
    serve: bool,
) -> None:
    """Serve adapter NAME's sandbox CRM on 127.0.0.1 until Ctrl-C (or, with --background, until
    `kill $SEATGATE_SANDBOX_PID`), and print the settings to install it with.

    The settings name the sandbox's made-up secrets as ${ENV} references; the `export` lines
    printed set them (`eval "$(seatgate sandbox NAME --background --config FILE)"`)."""
    if background:
        pid, started = _serve_in_background(name, users, port)
        config, env = sandbox_config(name, started["settings"])
        try:
            _write_config(config_file, config)
        except BadInput:
            os.kill(pid, signal.SIGTERM)  # nobody would learn its pid: stop it
            raise
        data = {**started, "pid": pid, "config": config, "env": env}

        def lines(console: Console) -> None:
            # Output for `eval`: comments, and export lines only.
            click.echo(f"# {name} sandbox with {users} users at {started['url']} (pid {pid})")
            if config_file is not None:
                click.echo(f"# settings written to {config_file}; stop it: kill {pid}")
            for line in _exports({**env, "SEATGATE_SANDBOX_PID": str(pid)}):
                click.echo(line)

        ctx.emit(data, lines)
        return
    sb = start_sandbox(name, users, port)
    try:
        # The sandbox's credentials are fake ones it made up, so they are shown in clear.
        settings = sb.settings()
        if serve:  # the --background process: one line for the parent, then serve
            click.echo(
                json.dumps({"adapter": name, "url": sb.url, "users": users, "settings": settings})
            )
            sys.stdout.flush()
        else:
            config, env = sandbox_config(name, settings)
            _write_config(config_file, config)

            def human(console: Console) -> None:
                console.print(f"{name} sandbox with {users} users at {sb.url} (Ctrl-C to stop)")
                console.print("in another shell:", markup=False)
                for line in _exports(env):
                    console.print(f"  {line}", markup=False)
                if config_file is not None:
                    console.print(f"settings written to {config_file}", markup=False)
                else:
                    console.print("settings (save them as a config file for install):")
                    console.print(json.dumps(config, indent=2), markup=False)

            ctx.emit(
                {
                    "adapter": name,
                    "url": sb.url,
                    "users": users,
                    "settings": settings,
                    "config": config,
                    "env": env,
                },
                human,
            )
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sb.stop()


@click.command("install")
@click.argument("account", type=params.ACCOUNT)
@click.argument("product", type=params.PRODUCT)
@click.option(
    "--config",
    "config_file",
    required=True,
    type=params.FilePath(),
    help="JSON or TOML settings; secrets as ${ENV_VAR} references.",
)
@click.option(
    "--plan", type=params.LABEL, help="Without a contract: the base plan to buy self-serve."
)
@click.option(
    "--users", type=params.SEATS, help="Without a contract: how many users to buy (1 to 1,000,000)."
)
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
            from decimal import Decimal

            from ...domain.pricing import price_text

            listed = price_text(
                Decimal(bought["list_price"]), bought["currency"], bought["charge_model"]
            )
            console.print(
                f"{product} {bought['plan']} ({bought['charge_model']}), "
                f"{plural(bought['users'], 'user')}: {bought['per_period']} {bought['currency']} "
                f"per month at the listed {listed}, month to month — {bought['note']}"
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
    @click.argument("account", type=params.ACCOUNT)
    @click.argument("product", type=params.PRODUCT)
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
