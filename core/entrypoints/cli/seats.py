"""``seatgate seats`` (assign, unassign, grandfather, list, buy) and ``seatgate check``: Manage
Seats and the entitlement check."""

from __future__ import annotations

import sys
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

import click

from ...domain.vocabulary import Feature
from ...errors import BadInput
from . import Context, params, pass_ctx, plural, table

if TYPE_CHECKING:
    from rich.console import Console

    from ...services.seats import SeatResult

FEATURES = tuple(Feature)


@click.group()
def seats() -> None:
    """Manage Seats: assign licensed seats to integration users, and buy more."""


def _emit_result(ctx: Context, result: SeatResult, kind: str) -> None:
    data = result.as_dict(kind)

    def human(console: Console) -> None:
        done = result.unassigned if kind == "unassign" else result.newly_assigned
        verb = {"assign": "assigned", "unassign": "unassigned", "grandfather": "grandfathered"}[
            kind
        ]
        console.print(
            f"{verb} {plural(len(done), 'seat')} on {result.product} for {result.account}"
        )
        for refusal in result.refused:
            console.print(f"  refused {refusal['email']}: {refusal['reason']}")
        overage = " — in overage: no user can be added" if result.in_overage else ""
        console.print(
            f"seats: {result.assigned_count} assigned of {result.contracted} contracted{overage}"
        )

    ctx.emit(data, human)


def _run(ctx: Context, kind: str, fn: Callable[[], SeatResult]) -> None:
    from ...services.seats import SeatsRefused

    try:
        result = fn()
    except SeatsRefused as exc:
        exc.json_extra = exc.result.as_dict(kind)  # type: ignore[attr-defined]
        raise
    _emit_result(ctx, result, kind)
    if result.refused:
        sys.exit(1)


def _emails(emails: tuple[str, ...], from_file: list[str] | None) -> list[str]:
    """EMAIL arguments and/or one address per line of --from-file (``-`` for stdin): argv tops
    out near 90,000 addresses, a file does not."""
    listed = list(emails) + list(from_file or ())
    if not listed:
        raise BadInput("emails", "none", "EMAIL arguments or --from-file FILE (one per line)")
    return listed


_from_file = click.option(
    "--from-file",
    type=params.LINES,
    help="Read emails from FILE, one per line ('-' for stdin), besides any EMAIL arguments: UTF-8 "
    "(with or without BOM); blank lines and lines starting with # (however indented) are skipped.",
)


@seats.command("assign")
@click.argument("account", type=params.ACCOUNT)
@click.argument("product", type=params.PRODUCT)
@click.argument("emails", metavar="[EMAIL...]", type=params.EMAIL, nargs=-1)
@_from_file
@pass_ctx
def assign(
    ctx: Context, account: str, product: str, emails: tuple[str, ...], from_file: list[str] | None
) -> None:
    """Assign seats of PRODUCT to users; refused beyond the hard cap or while in overage."""
    wanted = _emails(emails, from_file)
    _run(ctx, "assign", lambda: ctx.app.seats.assign(account, product, wanted, ctx.actor))


@seats.command("unassign")
@click.argument("account", type=params.ACCOUNT)
@click.argument("product", type=params.PRODUCT)
@click.argument("emails", metavar="[EMAIL...]", type=params.EMAIL, nargs=-1)
@_from_file
@pass_ctx
def unassign(
    ctx: Context, account: str, product: str, emails: tuple[str, ...], from_file: list[str] | None
) -> None:
    """Take seats back (the bill does not go down within the term)."""
    wanted = _emails(emails, from_file)
    _run(ctx, "unassign", lambda: ctx.app.seats.unassign(account, product, wanted, ctx.actor))


@seats.command("grandfather")
@click.argument("account", type=params.ACCOUNT)
@click.argument("product", type=params.PRODUCT)
@pass_ctx
def grandfather(ctx: Context, account: str, product: str) -> None:
    """Enablement: seat every active integration user, even above capacity (once)."""
    _run(ctx, "grandfather", lambda: ctx.app.seats.grandfather(account, product, ctx.actor))


@seats.command("list")
@click.argument("account", type=params.ACCOUNT)
@click.argument("product", type=params.PRODUCT, required=False)
@pass_ctx
def list_(ctx: Context, account: str, product: str | None) -> None:
    """List seat holders, with counts against the contract."""
    listing = ctx.app.seats.list(account, product)
    data = listing.as_dict()

    def human(console: Console) -> None:
        for c, n in listing.counts:
            flag = " (in overage)" if n.in_overage else ""
            console.print(f"{c.product}: {n.assigned} of {plural(n.contracted, 'seat')}{flag}")
        grid = table("product", "email", "active", "assigned at", "grandfathered")
        for r in listing.seats:
            grid.add_row(
                r.product,
                r.email,
                "yes" if r.active else "no",
                str(r.assigned_at),
                "yes" if r.grandfathered else "",
            )
        console.print(grid)

    ctx.emit(data, human)


@seats.command("buy")
@click.argument("account", type=params.ACCOUNT)
@click.argument("product", type=params.PRODUCT)
@click.option(
    "--quantity", required=True, type=params.SEAT_CHANGE, help="Seats to add (1 to 1,000,000)."
)
@click.option("--yes", "confirm", is_flag=True, help="Commit the purchase (else: summary only).")
@click.option(
    "--idempotency-key",
    "key",
    type=params.LABEL,
    help="Makes a retry a no-op (generated when absent).",
)
@pass_ctx
def buy(
    ctx: Context, account: str, product: str, quantity: int, confirm: bool, key: str | None
) -> None:
    """Buy seats, co-termed with the contract: shows the purchase summary; --yes commits."""
    data = ctx.app.purchases.buy_seats(
        account, product, quantity, ctx.actor, confirm=confirm, idempotency_key=key
    )

    def human(console: Console) -> None:
        from ...domain.pricing import price_text

        console.print(
            f"{product} on {account}: {data['quantity_before']} -> "
            f"{plural(data['quantity_after'], 'seat')} "
            f"at {price_text(Decimal(data['unit_price']), data['currency'], data['charge_model'])}; "
            f"{data['prorated_rest_of_term']} {data['currency']} for the rest of the term "
            f"({data['rest_of_term']['start']} to {data['rest_of_term']['end']}), "
            f"{data['per_billing_period']} {data['currency']} per full billing period"
        )
        if not data["committed"]:
            console.print("summary only, nothing bought: add --yes to buy")
        else:
            again = " (a retry: nothing new was bought)" if data.get("replayed") else ""
            console.print(f"bought{again}; idempotency key {data['idempotency_key']}")

    if not data["committed"]:
        data = {**data, "note": "summary only: add --yes to buy"}
    ctx.emit(data, human)


@click.command("check")
@click.argument("account", type=params.ACCOUNT)
@click.argument("product", type=params.PRODUCT)
@click.argument("email", type=params.EMAIL)
@click.argument("feature", type=params.FEATURE, metavar=f"FEATURE ({'|'.join(FEATURES)})")
@pass_ctx
def check(ctx: Context, account: str, product: str, email: str, feature: str) -> None:
    """May EMAIL use FEATURE of PRODUCT now? Exit 0 allowed, 1 denied, 2 bad input."""
    decision = ctx.app.check(account, product, email, feature)
    data = decision.as_dict()
    if ctx.json:
        ctx.emit(data)
    else:
        # Plain text: a check runs at every login, and rich costs a tenth of a second to load.
        verdict = "allowed" if decision.allowed else "denied"
        policy = decision.policy_revision or "none (before the first revision)"
        click.echo(
            f"{verdict}: {decision.reason} (phase {decision.phase}, policy {policy}; "
            f"{decision.assigned} of {plural(decision.contracted, 'seat')} assigned)"
        )
        if decision.access_ends:
            click.echo(f"warning: without a seat, access ends on {decision.access_ends}")
    sys.exit(0 if decision.allowed else 1)


def register(main: click.Group) -> None:
    main.add_command(seats)
    main.add_command(check)
