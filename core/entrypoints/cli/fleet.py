"""``seatgate worker``, ``seatgate beat`` and ``seatgate fleet``: syncs on a fleet of Celery workers
(issue 17, docs/fleet.md).

``worker`` runs the sync tasks; ``beat`` reads the schedule from the database every
``SEATGATE_BEAT_INTERVAL`` seconds and enqueues the due connectors; ``fleet dispatch`` is one such
tick now (for cron, or a test), ``fleet enqueue`` one run of one connector, ``fleet status`` what is
queued, running, recently finished, and which deliveries were skipped because the connector was
already running. All need the ``celery`` extra; ``fleet status`` needs only the database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ...clock import isoformat
from ...errors import BadInput
from . import Context, params, pass_ctx, table

if TYPE_CHECKING:
    from celery import Celery
    from rich.console import Console

    from ...services.ports.fleet import FleetTask

POOLS = ("solo", "prefork", "threads")
LOG_LEVELS = ("debug", "info", "warning", "error")


def _celery() -> Celery:
    """The fleet's Celery app on the environment's settings; one line when the extra is missing."""
    try:
        from ..worker.app import create_app
    except ImportError:
        raise BadInput(
            "installation", "seatgate", "the celery extra: pip install 'seatgate[celery]'"
        ) from None
    return create_app()


def _configure(ctx: Context) -> None:
    """Hand the global options to the worker's App; first build one here, so a bad --db or
    --policy is refused in one line before Celery starts (and not at each task or tick)."""
    from ..worker.app import WorkerConfig, configure

    _ = ctx.app  # built now: the policy file is read, the database opened (and migrated)
    ctx.close()

    as_of = ctx.clock.now() if not _system_clock(ctx) else None
    configure(WorkerConfig(db=ctx.db_url, as_of=as_of, policy=str(ctx.policy or "") or None))


def _system_clock(ctx: Context) -> bool:
    from ...clock import SystemClock

    return isinstance(ctx.clock, SystemClock)


@click.command("worker")
@click.option(
    "--concurrency",
    default=1,
    show_default=True,
    type=params.counted(64),
    help="Syncs this worker runs at once (processes of its pool).",
)
@click.option(
    "--pool",
    type=params.Choice("POOL", POOLS),
    default=None,
    help="Celery pool (default: solo for one at a time, prefork for more).",
)
@click.option("--hostname", type=params.LABEL, default=None, help="Celery node name.")
@click.option(
    "--loglevel", type=params.Choice("LEVEL", LOG_LEVELS), default="info", show_default=True
)
@pass_ctx
def worker_cmd(
    ctx: Context, concurrency: int, pool: str | None, hostname: str | None, loglevel: str
) -> None:
    """Run sync tasks from the broker (SEATGATE_BROKER_URL) against the database (--db)."""
    celery = _celery()
    _configure(ctx)
    settings = celery.conf.seatgate_settings
    argv = [
        "worker",
        f"--concurrency={concurrency}",
        f"--pool={pool or ('solo' if concurrency == 1 else 'prefork')}",
        f"--loglevel={loglevel.upper()}",
        f"--queues={settings.queue}",
        "--without-gossip",
        "--without-mingle",
    ]
    if hostname:
        argv.append(f"--hostname={hostname}")
    celery.worker_main(argv)


@click.command("beat")
@click.option(
    "--loglevel", type=params.Choice("LEVEL", LOG_LEVELS), default="info", show_default=True
)
@pass_ctx
def beat_cmd(ctx: Context, loglevel: str) -> None:
    """Enqueue every due connector, reading the schedule from the database at each tick
    (SEATGATE_BEAT_INTERVAL seconds). Run one beat per fleet."""
    celery = _celery()
    _configure(ctx)
    from ..worker.app import DispatchScheduler

    celery.Beat(scheduler=DispatchScheduler, loglevel=loglevel.upper(), max_interval=5).run()


@click.group("fleet")
def fleet() -> None:
    """The worker fleet: enqueue runs, see what is queued, running, finished or skipped."""


def _dispatched(rows: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "task": d.task,
            "account": d.account,
            "product": d.product,
            "task_id": d.task_id,
            **({"error": d.error} if d.error else {}),
        }
        for d in rows
    ]


@fleet.command("dispatch")
@pass_ctx
def fleet_dispatch(ctx: Context) -> None:
    """Enqueue every due connector now (one tick of beat), as of --as-of."""
    celery = _celery()
    from ..worker.app import dispatch

    sent = dispatch(celery, ctx.app)

    def human(console: Console) -> None:
        if not sent:
            console.print("no connector is due")
        for d in sent:
            said = f"not enqueued: {d.error}" if d.error else f"enqueued as task {d.task}"
            console.print(f"{d.account} {d.product}: {said}", markup=False)

    ctx.emit({"enqueued": _dispatched(sent)}, human)
    if any(d.error for d in sent):
        raise SystemExit(1)


@fleet.command("enqueue")
@click.argument("account", type=params.ACCOUNT)
@click.argument("product", type=params.PRODUCT)
@pass_ctx
def fleet_enqueue(ctx: Context, account: str, product: str) -> None:
    """Enqueue one run of ACCOUNT's PRODUCT connector now, due or not. If it is already running,
    the worker that gets it skips it and records the skip."""
    ctx.app.check_product(product)
    from ...services.installs import require_installation

    with ctx.app.uow.read() as uow:
        require_installation(uow, account, product)
    celery = _celery()
    from ..worker.app import enqueue_one

    sent = enqueue_one(celery, ctx.app, account, product)

    def human(console: Console) -> None:
        said = f"not enqueued: {sent.error}" if sent.error else f"enqueued as task {sent.task}"
        console.print(f"{account} {product}: {said}", markup=False)

    ctx.emit({"enqueued": _dispatched([sent])}, human)
    if sent.error:
        raise SystemExit(1)


def _task_dict(t: FleetTask) -> dict[str, Any]:
    return {
        "task": t.id,
        "account": t.account,
        "product": t.product,
        "state": t.state,
        "outcome": t.outcome,
        "enqueued_at": t.enqueued_at,
        "started_at": t.started_at,
        "finished_at": t.finished_at,
        "worker": t.worker,
        "deliveries": t.deliveries,
        "run": t.run_id,
        "pulled": t.pulled,
        "message": t.message,
    }


def _when(value: Any) -> str:
    return isoformat(value) if value is not None else ""


@fleet.command("status")
@click.option("--limit", default=20, show_default=True, type=params.counted(1000))
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@pass_ctx
def fleet_status(ctx: Context, limit: int, as_json: bool) -> None:
    """Queued, running and recently finished fleet runs, and skipped duplicate deliveries."""
    ctx.json = ctx.json or as_json
    status = ctx.app.fleet.status(limit)
    data = {
        "counts": status.counts,
        "queued": [_task_dict(t) for t in status.queued],
        "running": [_task_dict(t) for t in status.running],
        "finished": [_task_dict(t) for t in status.finished],
        "stale": [_task_dict(t) for t in status.stale],
        "skipped": [
            {
                "task": s.task,
                "account": s.account,
                "product": s.product,
                "at": s.at,
                "worker": s.worker,
                "reason": s.reason,
            }
            for s in status.skipped
        ],
    }

    def human(console: Console) -> None:
        counts = ", ".join(f"{n} {state}" for state, n in status.counts.items())
        console.print(f"fleet tasks: {counts}", markup=False)
        for title, rows in (
            ("queued", status.queued),
            ("running", status.running),
            ("recently finished", status.finished),
            ("stale (worker or message lost)", status.stale),
        ):
            grid = table(
                "task", "account", "product", "state", "enqueued", "worker", "runs", title=title
            )
            for t in rows:
                state = f"{t.state} ({t.outcome})" if t.outcome else t.state
                grid.add_row(
                    str(t.id),
                    t.account,
                    t.product,
                    state,
                    _when(t.enqueued_at),
                    t.worker,
                    str(t.deliveries),
                )
            if rows:
                console.print(grid)
        if status.skipped:
            grid = table("task", "account", "product", "at", "worker", "reason", title="skipped")
            for s in status.skipped:
                grid.add_row(str(s.task), s.account, s.product, _when(s.at), s.worker, s.reason)
            console.print(grid)

    ctx.emit(data, human)


def register(main: click.Group) -> None:
    main.add_command(worker_cmd)
    main.add_command(beat_cmd)
    main.add_command(fleet)
