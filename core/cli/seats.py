"""``seatgate seats`` and ``seatgate check``: Manage Seats and the entitlement check."""

from __future__ import annotations

import sys
from typing import TextIO

import click
from rich.console import Console
from rich.table import Table

from .. import seats as seats_mod
from ..errors import BadInput
from ..records import FEATURES
from . import Context, pass_ctx


@click.group()
def seats() -> None:
    """Manage Seats: assign licensed seats to integration users."""


def _emit_result(ctx: Context, result: seats_mod.SeatResult, kind: str) -> None:
    data = result.as_dict(kind)

    def human(console: Console) -> None:
        done = result.unassigned if kind == "unassign" else result.newly_assigned
        verb = {"assign": "assigned", "unassign": "unassigned", "grandfather": "grandfathered"}[
            kind
        ]
        console.print(f"{verb} {len(done)} seat(s) on {result.product} for {result.account}")
        for refusal in result.refused:
            console.print(f"  refused {refusal['email']}: {refusal['reason']}")
        overage = " — in overage: no user can be added" if result.in_overage else ""
        console.print(
            f"seats: {result.assigned_count} assigned of {result.contracted} contracted{overage}"
        )

    ctx.emit(data, human)


def _run(ctx: Context, kind: str, fn: object) -> None:
    try:
        result = fn()  # type: ignore[operator]
    except seats_mod.SeatsRefused as exc:
        exc.json_extra = exc.result.as_dict(kind)  # type: ignore[attr-defined]
        raise
    _emit_result(ctx, result, kind)
    if result.refused:
        sys.exit(1)


def _emails(emails: tuple[str, ...], from_file: TextIO | None) -> list[str]:
    """EMAIL arguments and/or one address per line of --from-file (``-`` for stdin): argv tops
    out near 90,000 addresses, a file does not."""
    listed = list(emails)
    if from_file is not None:
        listed += [line.strip() for line in from_file if line.strip() and not line.startswith("#")]
    if not listed:
        raise BadInput("emails", "none", "EMAIL arguments or --from-file FILE (one per line)")
    return listed


_from_file = click.option(
    "--from-file",
    type=click.File("r"),
    help="Read emails from FILE, one per line ('-' for stdin), besides any EMAIL arguments.",
)


@seats.command("assign")
@click.argument("account")
@click.argument("product")
@click.argument("emails", metavar="[EMAIL...]", nargs=-1)
@_from_file
@pass_ctx
def assign(
    ctx: Context, account: str, product: str, emails: tuple[str, ...], from_file: TextIO | None
) -> None:
    """Assign seats of PRODUCT to users; refused beyond the hard cap or while in overage."""
    wanted = _emails(emails, from_file)
    _run(ctx, "assign", lambda: ctx.app.assign(account, product, wanted, ctx.actor))


@seats.command("unassign")
@click.argument("account")
@click.argument("product")
@click.argument("emails", metavar="[EMAIL...]", nargs=-1)
@_from_file
@pass_ctx
def unassign(
    ctx: Context, account: str, product: str, emails: tuple[str, ...], from_file: TextIO | None
) -> None:
    """Take seats back (the bill does not go down within the term)."""
    wanted = _emails(emails, from_file)
    _run(ctx, "unassign", lambda: ctx.app.unassign(account, product, wanted, ctx.actor))


@seats.command("grandfather")
@click.argument("account")
@click.argument("product")
@pass_ctx
def grandfather(ctx: Context, account: str, product: str) -> None:
    """Enablement: seat every active integration user, even above capacity (once)."""
    _run(ctx, "grandfather", lambda: ctx.app.grandfather(account, product, ctx.actor))


@seats.command("list")
@click.argument("account")
@click.argument("product", required=False)
@pass_ctx
def list_(ctx: Context, account: str, product: str | None) -> None:
    """List seat holders, with counts against the contract."""
    from .. import accounts as accounts_mod
    from .. import contracts as contracts_mod

    app = ctx.app
    with app.db.read() as conn:
        acct = accounts_mod.get_account(conn, account)
        rows = seats_mod.list_seats(conn, account, product)
        summary = []
        for c in contracts_mod.list_contracts(conn, account):
            if product and c.product != product:
                continue
            count = seats_mod.seat_count(conn, acct, c)
            summary.append(
                {
                    "product": c.product,
                    "contracted": count.contracted,
                    "assigned": count.assigned,
                    "in_overage": count.in_overage,
                    "mode": c.mode,
                }
            )
    data = {
        "account": account,
        "products": summary,
        "seats": [
            {
                "product": r["product"],
                "email": r["email"],
                "active": r["active"],
                "assigned_at": r["assigned_at"],
                "grandfathered": r["grandfathered"],
            }
            for r in rows
        ],
    }

    def human(console: Console) -> None:
        for s in summary:
            flag = " (in overage)" if s["in_overage"] else ""
            console.print(f"{s['product']}: {s['assigned']} of {s['contracted']} seats{flag}")
        table = Table("product", "email", "active", "assigned at", "grandfathered")
        for r in rows:
            table.add_row(
                r["product"],
                r["email"],
                "yes" if r["active"] else "no",
                str(r["assigned_at"]),
                "yes" if r["grandfathered"] else "",
            )
        console.print(table)

    ctx.emit(data, human)


@click.command("check")
@click.argument("account")
@click.argument("product")
@click.argument("email")
@click.argument("feature", metavar=f"FEATURE ({'|'.join(FEATURES)})")
@pass_ctx
def check(ctx: Context, account: str, product: str, email: str, feature: str) -> None:
    """May EMAIL use FEATURE of PRODUCT now? Exit 0 allowed, 1 denied, 2 bad input."""
    decision = ctx.app.check(account, product, email, feature)
    data = decision.as_dict()

    def human(console: Console) -> None:
        verdict = "[green]allowed[/]" if decision.allowed else "[red]denied[/]"
        console.print(
            f"{verdict}: {decision.reason} (phase {decision.phase}, policy "
            f"{decision.policy_revision}; {decision.assigned} of {decision.contracted} "
            "seats assigned)"
        )
        if decision.access_ends:
            console.print(f"warning: without a seat, access ends on {decision.access_ends}")

    ctx.emit(data, human)
    sys.exit(0 if decision.allowed else 1)


def register(main: click.Group) -> None:
    main.add_command(seats)
    main.add_command(check)
