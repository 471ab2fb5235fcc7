"""``seatgate account``, ``contract`` and ``users``: who the customer is and what it bought."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import click
from rich.table import Table

from .. import accounts as accounts_mod
from .. import contracts as contracts_mod
from ..clock import parse_date
from ..domain import CHANNELS, FREQUENCY_MONTHS, PERMISSIONS, REGIONS, SEAT_MODES
from ..errors import BadInput
from . import Context, pass_ctx


@click.group()
def account() -> None:
    """Accounts and purchasing authority."""


@account.command("create")
@click.argument("name")
@click.option("--region", required=True, help=f"One of {', '.join(REGIONS)}.")
@pass_ctx
def account_create(ctx: Context, name: str, region: str) -> None:
    """Create an account in a region (the region sets its Manage Seats enablement date)."""
    acct = ctx.app.create_account(name, region)
    ctx.emit(
        {"account": acct.name, "region": acct.region},
        lambda c: c.print(f"account {acct.name} created in {acct.region}"),
    )


@account.command("grant")
@click.argument("name")
@click.argument("email")
@click.option("--permission", required=True, help=f"One of {', '.join(PERMISSIONS)}.")
@pass_ctx
def account_grant(ctx: Context, name: str, email: str, permission: str) -> None:
    """Give EMAIL the install or manage permission (purchasing authority, seed 002)."""
    with ctx.app.write() as conn:
        accounts_mod.grant(conn, name, email, permission, ctx.app.now(), actor=ctx.actor)
    ctx.emit(
        {"account": name, "email": email.strip().lower(), "permission": permission},
        lambda c: c.print(f"{email} may now {permission} in {name}"),
    )


@click.group()
def contract() -> None:
    """Contracts: plan, seats, price, billing frequency and term per product."""


@contract.command("create")
@click.argument("account_name", metavar="ACCOUNT")
@click.argument("product")
@click.option("--seats", type=int, required=True, help="Contracted seats (quantity).")
@click.option("--plan", required=True, help="Base plan.")
@click.option("--frequency", required=True, help=f"One of {', '.join(FREQUENCY_MONTHS)}.")
@click.option("--start", required=True, help="Term start date (YYYY-MM-DD).")
@click.option("--months", type=int, required=True, help="Term length in months.")
@click.option("--channel", default="order_form", show_default=True, help=", ".join(CHANNELS))
@click.option("--mode", default="hard_cap", show_default=True, help=", ".join(SEAT_MODES))
@click.option("--unit-price", "unit_price", help="Monthly price per seat (default: the catalog's).")
@click.option("--currency", default=None, help="ISO currency (default: the catalog's, else USD).")
@pass_ctx
def contract_create(
    ctx: Context,
    account_name: str,
    product: str,
    seats: int,
    plan: str,
    frequency: str,
    start: str,
    months: int,
    channel: str,
    mode: str,
    unit_price: str | None,
    currency: str | None,
) -> None:
    """Record what ACCOUNT bought for PRODUCT."""
    app = ctx.app
    start_date = parse_date(start, "--start")
    price: Decimal | None
    if unit_price is not None:
        price = contracts_mod.parse_money(unit_price, "--unit-price")
    else:
        listed = app.list_price(product, plan)
        if listed is None:
            raise BadInput(
                "--unit-price",
                None,
                f"an amount (the catalog lists no price for plan {plan!r} of {product})",
            )
        price, currency = listed[0], currency or listed[1]
    with app.write() as conn:
        made = contracts_mod.create_contract(
            conn,
            account_name,
            product,
            products=tuple(sorted(app.products())),
            seats=seats,
            plan=plan,
            frequency=frequency,
            start=start_date,
            months=months,
            unit_price=price,
            at=app.now(),
            channel=channel,
            mode=mode,
            currency=currency or "USD",
            actor=ctx.actor,
        )
    data = _contract_dict(made)
    ctx.emit(
        data,
        lambda c: c.print(
            f"{made.product} contract for {made.account}: {made.quantity} seats on {made.plan}, "
            f"{made.unit_price} {made.currency}/seat/month billed {made.frequency}, "
            f"{made.term_start} to {made.term_end} ({made.mode})"
        ),
    )


@contract.command("list")
@click.argument("account_name", metavar="ACCOUNT", required=False)
@pass_ctx
def contract_list(ctx: Context, account_name: str | None) -> None:
    """List contracts (of one account, or all)."""
    with ctx.app.db.read() as conn:
        if account_name:
            accounts_mod.get_account(conn, account_name)
        rows = [_contract_dict(c) for c in contracts_mod.list_contracts(conn, account_name)]

    def human(console: object) -> None:
        table = Table(
            "account",
            "product",
            "plan",
            "seats",
            "unit price",
            "frequency",
            "term",
            "channel",
            "mode",
        )
        for r in rows:
            table.add_row(
                r["account"],
                r["product"],
                r["plan"],
                str(r["seats"]),
                f"{r['unit_price']} {r['currency']}",
                r["frequency"],
                f"{r['term_start']} → {r['term_end']}",
                r["channel"],
                r["mode"],
            )
        ctx.console.print(table)

    ctx.emit({"contracts": rows}, human)


def _contract_dict(c: contracts_mod.Contract) -> dict[str, Any]:
    return {
        "account": c.account,
        "product": c.product,
        "plan": c.plan,
        "seats": c.quantity,
        "unit_price": str(c.unit_price),
        "currency": c.currency,
        "frequency": c.frequency,
        "term_start": c.term_start.isoformat(),
        "term_end": c.term_end.isoformat(),
        "channel": c.channel,
        "mode": c.mode,
        "grandfathered_at": c.grandfathered_at.isoformat() if c.grandfathered_at else None,
    }


@click.group()
def users() -> None:
    """Integration users of an account."""


@users.command("add")
@click.argument("account_name", metavar="ACCOUNT")
@click.argument("emails", metavar="EMAIL...", nargs=-1, required=True)
@click.option("--role", "roles", multiple=True, help="CRM role (repeatable), for auto install.")
@click.option("--name", default="", help="Display name (for a single user).")
@pass_ctx
def users_add(
    ctx: Context, account_name: str, emails: tuple[str, ...], roles: tuple[str, ...], name: str
) -> None:
    """Make users known to ACCOUNT before any CRM sync."""
    with ctx.app.write() as conn:
        added, known = accounts_mod.add_users(
            conn, account_name, emails, ctx.app.now(), roles=roles, actor=ctx.actor, name=name
        )
    ctx.emit(
        {"added": added, "already_known": known},
        lambda c: c.print(f"added {len(added)} user(s); {len(known)} already known"),
    )


def register(main: click.Group) -> None:
    main.add_command(account)
    main.add_command(contract)
    main.add_command(users)
