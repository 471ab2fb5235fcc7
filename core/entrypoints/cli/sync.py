"""``seatgate sync`` and ``seatgate runs list``: sync runs.

``sync`` exits 0 when the run succeeded, 1 when it failed, was halted by the deletion guard or was
skipped (another run of the connector holds a live lease), 2 on bad input (nothing written). Its
``--json`` names the interrupted runs it found (``interrupted``: run and start). ``sync --due`` exits 1 when any connector did not succeed; one failure
never stops the others.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from ...errors import BadInput
from . import Context, params, pass_ctx, plural, remedy_text, table
from .paging import emit_page, paged

if TYPE_CHECKING:
    from rich.console import Console

    from ...services.sync import SyncResult


@contextmanager
def _progress(ctx: Context, label: str) -> Iterator[Callable[[int], None] | None]:
    """A Rich progress line on a terminal; nothing for --json or a pipe (cron logs stay clean)."""
    if ctx.json or not ctx.console.is_terminal:
        yield None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

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


def _human(result: SyncResult) -> Callable[[Console], None]:
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
        console.print(
            f"  {plural(s.requests, 'request')}, {plural(s.retries, 'retry')}, {s.seconds:.2f}s"
        )
        for reason, n in sorted(result.quarantine_reasons.items()):
            console.print(f"  quarantined {n}: {reason}")
        if s.message:
            hint = remedy_text(result.remedy, {"account": s.account, "product": s.product})
            console.print(f"  {s.message}" + (f"; {hint}" if hint else ""))

    return show


@click.command("sync")
@click.argument("account", type=params.ACCOUNT, required=False)
@click.argument("product", type=params.PRODUCT, required=False)
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
        result = ctx.app.sync.sync(
            account, product, full=full, dry_run=dry_run, force=force, on_page=on_page
        )
    ctx.emit(_result_dict(result), _human(result))
    if result.outcome != "succeeded":
        sys.exit(1)


def _run_due(ctx: Context) -> None:
    results = ctx.app.sync.run_due()
    data = [
        {
            "account": r.account,
            "product": r.product,
            **(_result_dict(r.result) if r.result else {"outcome": r.outcome}),
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
@click.argument("account", type=params.ACCOUNT)
@click.argument("product", type=params.PRODUCT, required=False)
@click.option("--limit", default=50, show_default=True, type=params.counted(10_000))
@pass_ctx
def runs_list(ctx: Context, account: str, product: str | None, limit: int) -> None:
    """List the latest sync runs of ACCOUNT (optionally of one PRODUCT)."""
    rows = ctx.app.sync.runs(account, product, limit)

    def human(console: Console) -> None:
        grid = table("run", "product", "started", "outcome", "pulled", "+new ~upd -off", "seated")
        for r in rows:
            kind = "full" if r["full"] else "incr"
            grid.add_row(
                str(r["id"]),
                r["product"],
                r["started_at"].strftime("%Y-%m-%d %H:%M"),
                f"{r['outcome']} ({kind})",
                str(r["pulled"]),
                f"+{r['created']} ~{r['updated']} -{r['deactivated']}",
                f"{r['seated']} (+{r['waiting']} waiting)",
            )
        console.print(grid)
        for r in rows:
            if r["message"]:
                console.print(f"run {r['id']}: {r['message']}")

    ctx.emit(rows, human)


@runs.command("show")
@click.argument("run_id", metavar="RUN_ID", type=params.counted(2**31 - 1))
@click.option(
    "--account", "account", type=params.ACCOUNT, default=None, help="Only a run of this account."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@pass_ctx
def runs_show(ctx: Context, run_id: int, account: str | None, as_json: bool) -> None:
    """Show one sync run: counts, requests, retries, duration, outcome and error."""
    ctx.json = ctx.json or as_json
    run = ctx.app.listings.run(account, run_id)
    if run["outcome"] not in ("succeeded", "running") and run.get("message"):
        code = run["message"].split(":", 1)[0] if run["outcome"] == "failed" else run["outcome"]
        run = {**run, "error": {"code": code, "message": run["message"]}}

    def human(console: Console) -> None:
        kind = "full" if run["full"] else "incremental"
        console.print(
            f"run {run['id']}: {run['outcome']} {kind} sync of {run['product']} for "
            f"{run['account']}, started {run['started_at']:%Y-%m-%d %H:%M:%S}"
        )
        console.print(
            f"  pulled {run['pulled']}, created {run['created']}, updated {run['updated']}, "
            f"deactivated {run['deactivated']}, quarantined {run['quarantined']}"
        )
        console.print(
            f"  seated {run['seated']}, waiting for a seat {run['waiting']}, gated {run['gated']}, "
            f"agents synced {run['agents_synced']}"
        )
        console.print(
            f"  {plural(run['requests'], 'request')}, {plural(run['retries'], 'retry')}, "
            f"{run['seconds']:.2f}s"
        )
        if run.get("message"):
            console.print(f"  {run['message']}")

    ctx.emit(run, human)


@click.group("agents")
def agents() -> None:
    """The agent directory a sync keeps for each CRM (seed 002: users with an activated role)."""


@agents.command("list")
@click.argument("account", type=params.ACCOUNT)
@click.argument("product", type=params.PRODUCT)
@paged
@pass_ctx
def agents_list(
    ctx: Context, account: str, product: str, limit: int, cursor: str | None, as_json: bool
) -> None:
    """List the agents a sync of PRODUCT wrote for ACCOUNT, by email."""
    listing = ctx.app.listings.agents(account, product, cursor=cursor, limit=limit)
    columns = [("email", "email"), ("name", "name"), ("CRM id", "external_id")]
    emit_page(
        ctx,
        listing,
        "agents",
        [*columns, ("active", "active"), ("run", "run_id")],
        empty="no agent: sync the connector first",
        as_json=as_json,
    )


@click.group("quarantine")
def quarantine() -> None:
    """CRM records a sync could not use, and why."""


@quarantine.command("list")
@click.argument("account", type=params.ACCOUNT)
@click.argument("product", type=params.PRODUCT)
@paged
@pass_ctx
def quarantine_list(
    ctx: Context, account: str, product: str, limit: int, cursor: str | None, as_json: bool
) -> None:
    """List the records of PRODUCT's CRM quarantined now (as of the latest full sync)."""
    listing = ctx.app.listings.quarantined(account, product, cursor=cursor, limit=limit)
    emit_page(
        ctx,
        listing,
        "quarantined",
        [
            ("record id", "external_id"),
            ("email", "email"),
            ("reason", "reason"),
            ("since", "since"),
            ("last run", "run_id"),
        ],
        empty="nothing quarantined",
        as_json=as_json,
    )


def _result_dict(result: SyncResult) -> dict[str, Any]:
    """The ``--json`` document of a run: its counts, and for a run that did not succeed its error
    (``code``, ``message``) besides stderr."""
    data = result.as_dict()
    s = result.summary
    if s.outcome != "succeeded" and s.message:
        code = s.message.split(":", 1)[0] if s.outcome == "failed" else s.outcome
        data["error"] = {"code": code, "message": s.message}
        if result.remedy:
            data["error"]["remedy"] = result.remedy
    return data


def register(main: click.Group) -> None:
    main.add_command(sync_cmd)
    main.add_command(runs)
    main.add_command(agents)
    main.add_command(quarantine)
