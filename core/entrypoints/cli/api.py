"""``seatgate serve`` and ``seatgate token``: the HTTP API and its bearer tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from . import Context, params, pass_ctx, table

if TYPE_CHECKING:
    from rich.console import Console

ROLES = ("check", "admin", "billing", "partner")
FRESHNESS = ("auto", "fence", "notify", "version")


@click.command("serve")
@click.option(
    "--host",
    type=params.LABEL,
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on.",
)
@click.option("--port", default=8080, show_default=True, type=params.PORT)
@click.option("--workers", default=1, show_default=True, type=params.counted(64))
@click.option(
    "--rate-limit",
    type=params.LABEL,
    default="1000/second",
    show_default=True,
    help="Requests per token per worker (N/second, N/minute...).",
)
@click.option(
    "--max-body",
    default=1_048_576,
    show_default=True,
    type=params.counted(100 * 1_048_576),
    help="Largest request body, in bytes.",
)
@click.option(
    "--request-timeout",
    default=30.0,
    show_default=True,
    type=params.seconds(0.1, 3600),
    help="Seconds before a request answers 503.",
)
@click.option(
    "--freshness",
    default="auto",
    show_default=True,
    type=params.Choice("FRESHNESS", FRESHNESS),
    help="How workers learn of others' changes: fence (PostgreSQL: a version read per batch of "
    "checks), notify (PostgreSQL notifications only), version (a read per check).",
)
@click.option(
    "--sync-lag",
    default=0.5,
    show_default=True,
    type=params.seconds(0, 60),
    help="Seconds a check may answer behind a sync's writes (fence and notify; 0: never). Seat, "
    "contract and installation changes are never lagged.",
)
@click.option(
    "--webhook-interval",
    default=5.0,
    show_default=True,
    type=params.seconds(0, 3600),
    help="Seconds between runs of the background webhook sender in each worker (0: none; run "
    "`seatgate webhook deliver` from cron instead).",
)
@pass_ctx
def serve(
    ctx: Context,
    host: str,
    port: int,
    workers: int,
    rate_limit: str,
    max_body: int,
    request_timeout: float,
    freshness: str,
    sync_lag: float,
    webhook_interval: float,
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json, docs at /docs) until Ctrl-C, and send the
    webhooks that fall due in the background. Install-link mail goes through SEATGATE_SMTP_URL;
    links and webhook secrets need SEATGATE_SECRET_KEY (docs/orders.md)."""
    from ...clock import FixedClock, isoformat
    from ..http.server import serve as run
    from ..http.settings import Settings

    settings = Settings(
        rate_limit=rate_limit,
        max_body=max_body,
        request_timeout=request_timeout,
        freshness=freshness,
        sync_lag=sync_lag,
        webhook_interval=webhook_interval,
        db_url=ctx.db_url,
        policy=None if ctx.policy is None else str(ctx.policy),
        as_of=isoformat(ctx.clock.now()) if isinstance(ctx.clock, FixedClock) else None,
    )
    # Migrate (or refuse a bad URL) once, before any worker starts.
    ctx.app.db.dispose()
    run(settings, host=host, port=port, workers=workers)


@click.group("token")
def token() -> None:
    """Bearer tokens of the HTTP API: one account and one role each."""


@token.command("create")
@click.argument("account", type=params.ACCOUNT)
@click.option("--role", type=params.Choice("ROLE", ROLES), required=True, help=" | ".join(ROLES))
@click.option(
    "--actor",
    "token_actor",
    type=params.EMAIL,
    metavar="EMAIL",
    help="Whose Install or Manage permission the token's admin and billing acts use (a partner "
    "token: the partner's person).",
)
@click.option(
    "--partner",
    type=params.LABEL,
    help="Partner tokens: the partner they act for (a product's publisher in the catalog).",
)
@pass_ctx
def token_create(
    ctx: Context, account: str, role: str, token_actor: str | None, partner: str | None
) -> None:
    """Make a token for ACCOUNT; it is printed this once (only a digest is kept). A partner token
    (--role partner --partner P) activates and deactivates the add-on plans of the products P
    publishes in ACCOUNT, and nothing else."""
    issued = ctx.app.tokens.create(
        account, role, token_actor, created_by=ctx.actor, partner=partner
    )
    data = issued.as_dict()

    def human(console: Console) -> None:
        who = f", actor {issued.info.actor}" if issued.info.actor else ""
        if issued.info.partner:
            who += f", partner {issued.info.partner}"
        console.print(f"token {issued.info.id} ({role} for {account}{who}):", markup=False)
        console.print(issued.secret, markup=False)
        console.print("shown this once: store it now", markup=False)

    ctx.emit(data, human)


@token.command("list")
@click.argument("account", type=params.ACCOUNT, required=False)
@pass_ctx
def token_list(ctx: Context, account: str | None) -> None:
    """List tokens (of ACCOUNT, or all): ids, roles, actors, never the tokens."""
    tokens = ctx.app.tokens.list(account)

    def human(console: Console) -> None:
        shown = table("id", "account", "role", "actor", "partner", "created", "revoked")
        for t in tokens:
            shown.add_row(
                t.id,
                t.account,
                t.role,
                t.actor or "",
                t.partner or "",
                str(t.created_at),
                str(t.revoked_at or ""),
            )
        console.print(shown)

    ctx.emit({"tokens": [t.as_dict() for t in tokens]}, human)


@token.command("revoke")
@click.argument("token_id", metavar="TOKEN_ID", type=params.LABEL)
@pass_ctx
def token_revoke(ctx: Context, token_id: str) -> None:
    """Revoke a token: every server stops accepting it at once."""
    info, changed = ctx.app.tokens.revoke(token_id, by=ctx.actor)
    ctx.emit(
        {**info.as_dict(), "changed": changed},
        lambda c: c.print(
            f"token {token_id} {'revoked' if changed else 'was already revoked'}", markup=False
        ),
    )


def register(main: click.Group) -> None:
    main.add_command(serve)
    main.add_command(token)
