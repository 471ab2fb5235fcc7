"""``seatgate install``, ``seatgate adapters enable|disable``, ``seatgate sync`` and
``seatgate runs list``: per-account installations and sync runs.

``sync`` exits 0 when the run succeeded, 1 when it failed or was halted by the deletion guard, 2 on
bad input (nothing written). ``sync --due`` exits 1 when any connector did not succeed; one failure
never stops the others.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from .. import installs
from .. import sync as sync_mod
from ..errors import BadInput
from . import Context, pass_ctx


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
@pass_ctx
def install_cmd(ctx: Context, account: str, product: str, config_file: Path) -> None:
    """Install PRODUCT's adapter on ACCOUNT (needs install or manage; a purchase commitment)."""
    config = installs.load_config_file(config_file)
    result = installs.install(ctx.app, account, product, config, ctx.actor)

    def human(console: Console) -> None:
        verb = "reinstalled" if result.reinstalled else "installed"
        console.print(f"{verb} {product} on {account} (adapter {result.adapter})")
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
        changed = installs.set_enabled(ctx.app, account, product, enabled, ctx.actor)
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


@contextmanager
def _progress(ctx: Context, label: str) -> Iterator[Callable[[int], None] | None]:
    """A Rich progress line on a terminal; nothing for --json or a pipe (cron logs stay clean)."""
    if ctx.json or not ctx.console.is_terminal:
        yield None
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed} users pulled"),
        TimeElapsedColumn(),
        console=ctx.console,
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=None)
        yield lambda pulled: progress.update(task, completed=pulled)


def _human(result: sync_mod.SyncResult) -> Callable[[Console], None]:
    def show(console: Console) -> None:
        s = result.summary
        kind = "full" if s.full else "incremental"
        dry = " (dry run: nothing written)" if result.dry_run else ""
        console.print(f"{s.outcome}: {kind} sync of {s.product} for {s.account}{dry}")
        console.print(
            f"  pulled {s.pulled}, created {s.created}, updated {s.updated}, "
            f"deactivated {s.deactivated}, quarantined {s.quarantined}"
        )
        console.print(
            f"  seated {s.seated}, waiting for a seat {result.waiting}, gated {s.gated}, "
            f"agents synced {s.agents_synced}"
        )
        console.print(f"  {s.requests} requests, {s.retries} retries, {s.seconds:.2f}s")
        for reason, n in sorted(result.quarantine_reasons.items()):
            console.print(f"  quarantined {n}: {reason}")
        if s.message:
            console.print(f"  {s.message}")

    return show


@click.command("sync")
@click.argument("account", required=False)
@click.argument("product", required=False)
@click.option("--full", is_flag=True, help="Pull every user (the only basis for deactivation).")
@click.option("--dry-run", is_flag=True, help="Do everything, then roll it all back.")
@click.option("--force", is_flag=True, help="Proceed past the deletion guard.")
@click.option("--due", is_flag=True, help="Run every enabled connector whose interval has passed.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@pass_ctx
def sync_cmd(
    ctx: Context,
    account: str | None,
    product: str | None,
    full: bool,
    dry_run: bool,
    force: bool,
    due: bool,
    as_json: bool,
) -> None:
    """Sync PRODUCT's users for ACCOUNT, or with --due every connector that is due."""
    ctx.json = ctx.json or as_json
    if due:
        if account or product or full or dry_run or force:
            raise BadInput(
                "sync --due arguments",
                " ".join(filter(None, [account, product])) or "flags",
                "nothing else: --due runs every due connector as configured",
            )
        _run_due(ctx)
        return
    if not account or not product:
        raise BadInput("sync arguments", account or "", "ACCOUNT PRODUCT, or --due")
    with _progress(ctx, f"sync {product} for {account}") as on_page:
        result = sync_mod.sync(
            ctx.app, account, product, full=full, dry_run=dry_run, force=force, on_page=on_page
        )
    ctx.emit(result.as_dict(), _human(result))
    if result.outcome != "succeeded":
        sys.exit(1)


def _run_due(ctx: Context) -> None:
    results = sync_mod.run_due(ctx.app)
    data = [
        {
            "account": r.account,
            "product": r.product,
            **(r.result.as_dict() if r.result else {"outcome": r.outcome}),
            "message": r.message,
        }
        for r in results
    ]

    def human(console: Console) -> None:
        if not results:
            console.print("no connector is due")
        for r in results:
            line = f"{r.account} {r.product}: {r.outcome}"
            if r.result is not None:
                s = r.result.summary
                line += f" (pulled {s.pulled}, agents synced {s.agents_synced})"
            if r.message:
                line += f" — {r.message}"
            console.print(line)

    ctx.emit({"runs": data}, human)
    if any(r.outcome != "succeeded" for r in results):
        sys.exit(1)


@click.group("runs")
def runs() -> None:
    """Sync runs: what each one pulled, wrote and how it ended."""


@runs.command("list")
@click.argument("account")
@click.argument("product", required=False)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@pass_ctx
def runs_list(ctx: Context, account: str, product: str | None, limit: int) -> None:
    """List the latest sync runs of ACCOUNT (optionally of one PRODUCT)."""
    with ctx.app.db.read() as conn:
        rows = sync_mod.list_runs(conn, account, product, limit)

    def human(console: Console) -> None:
        table = Table("run", "product", "started", "outcome", "pulled", "+new ~upd -off", "seated")
        for r in rows:
            kind = "full" if r["full"] else "incr"
            table.add_row(
                str(r["id"]),
                r["product"],
                r["started_at"].strftime("%Y-%m-%d %H:%M"),
                f"{r['outcome']} ({kind})",
                str(r["pulled"]),
                f"+{r['created']} ~{r['updated']} -{r['deactivated']}",
                f"{r['seated']} (+{r['waiting']} waiting)",
            )
        console.print(table)
        for r in rows:
            if r["message"]:
                console.print(f"run {r['id']}: {r['message']}")

    ctx.emit(rows, human)


def register(main: click.Group) -> None:
    main.add_command(install_cmd)
    main.add_command(sync_cmd)
    main.add_command(runs)
    adapters = main.commands.get("adapters")
    if not isinstance(adapters, click.Group):
        # The adapters concern (`adapters list`) owns this group when it is there.
        @click.group("adapters")
        def adapters_group() -> None:
            """Adapters: enable or disable them per account."""

        adapters = adapters_group
        main.add_command(adapters)
    adapters.add_command(_toggle(True))
    adapters.add_command(_toggle(False))
