"""``seatgate account``, ``contract`` and ``users``: who the customer is and what it bought."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING

import click

from ...domain.timeline import SEED_REGIONS
from ...domain.vocabulary import Channel, ChargeModel, Frequency, Permission, SeatMode, UserStatus
from . import Context, params, pass_ctx, plural, table
from .paging import emit_page, paged

if TYPE_CHECKING:
    from rich.console import Console

CHANNELS = tuple(Channel)
FREQUENCIES = tuple(Frequency)
PERMISSIONS = tuple(Permission)
CHARGE_MODELS = tuple(ChargeModel)
SEAT_MODES = tuple(SeatMode)


@click.group()
def account() -> None:
    """Accounts and purchasing authority."""


@account.command("create")
@click.argument("name", type=params.ACCOUNT)
@click.option(
    "--region",
    type=params.REGION,
    required=True,
    help=f"A two-letter code ({', '.join(SEED_REGIONS)}...); the policy gives its enablement date.",
)
@click.option(
    "--admin", metavar="EMAIL", type=params.EMAIL, help="The account's first holder of manage."
)
@pass_ctx
def account_create(ctx: Context, name: str, region: str, admin: str | None) -> None:
    """Create an account in a region (the region sets its Manage Seats enablement date)."""
    app = ctx.app
    enablement = app.accounts.enablement(region)
    acct = app.accounts.create(name, region, admin=admin, actor=ctx.actor)
    data = {
        "account": acct.name,
        "region": acct.region,
        "admin": admin.strip().lower() if admin else None,
        "enablement": {**enablement.as_dict(), "note": enablement.note},
    }

    def human(c: Console) -> None:
        c.print(f"account {acct.name} created in {acct.region}: {enablement.note}")
        if admin:
            c.print(f"{data['admin']} holds manage (purchasing authority)")

    ctx.emit(data, human)


@account.command("grant")
@click.argument("name", type=params.ACCOUNT)
@click.argument("email", type=params.EMAIL)
@click.option(
    "--permission", type=params.PERMISSION, required=True, help=f"One of {', '.join(PERMISSIONS)}."
)
@pass_ctx
def account_grant(ctx: Context, name: str, email: str, permission: str) -> None:
    """Give EMAIL the install or manage permission (purchasing authority, seed 002). Only a
    holder of manage grants, except the first grant of an account nobody holds one in."""
    grant = ctx.app.accounts.grant(name, email, permission, ctx.actor)
    ctx.emit(
        grant.as_dict(),
        lambda c: c.print(f"{grant.email} may now {grant.permission} in {name}"),
    )


@account.command("revoke")
@click.argument("name", type=params.ACCOUNT)
@click.argument("email", type=params.EMAIL)
@click.option(
    "--permission", type=params.PERMISSION, required=True, help=f"One of {', '.join(PERMISSIONS)}."
)
@pass_ctx
def account_revoke(ctx: Context, name: str, email: str, permission: str) -> None:
    """Take the install or manage permission back from EMAIL (only a holder of manage)."""
    grant = ctx.app.accounts.revoke(name, email, permission, ctx.actor)
    ctx.emit(
        {**grant.as_dict(), "changed": grant.changed},
        lambda c: c.print(
            f"{grant.email} no longer holds {grant.permission} in {name}"
            if grant.changed
            else f"{grant.email} did not hold {grant.permission} in {name}"
        ),
    )


@click.group()
def commitments() -> None:
    """Purchase commitments (seed 002, "Purchasing Authority")."""


@commitments.command("list")
@click.argument("account_name", metavar="ACCOUNT", type=params.ACCOUNT)
@pass_ctx
def commitments_list(ctx: Context, account_name: str) -> None:
    """Who committed to what, when, at which price shown."""
    rows = ctx.app.billing.commitments(account_name)

    def human(console: Console) -> None:
        shown = table("at", "actor", "product", "action", "price shown", "detail")
        for r in rows:
            price = "" if r["price_shown"] is None else f"{r['price_shown']} {r['currency']}"
            detail = ", ".join(f"{k}={v}" for k, v in sorted(r["detail"].items()))
            shown.add_row(str(r["at"]), r["actor"], r["product"], r["action"], price, detail)
        console.print(shown)

    ctx.emit({"account": account_name, "commitments": rows}, human)


@click.group()
def contract() -> None:
    """Contracts: plan, seats, price, billing frequency and term per product."""


@contract.command("create")
@click.argument("account_name", metavar="ACCOUNT", type=params.ACCOUNT)
@click.argument("product", type=params.PRODUCT)
@click.option(
    "--seats", type=params.SEATS, required=True, help="Contracted seats (1 to 1,000,000)."
)
@click.option("--plan", type=params.LABEL, required=True, help="Base plan.")
@click.option(
    "--frequency", type=params.FREQUENCY, required=True, help=f"One of {', '.join(FREQUENCIES)}."
)
@click.option("--start", type=params.DATE, required=True, help="Term start date (YYYY-MM-DD).")
@click.option(
    "--months", type=params.MONTHS, required=True, help="Term length in months (1 to 120)."
)
@click.option(
    "--channel",
    type=params.CHANNEL,
    default="order_form",
    show_default=True,
    help=", ".join(CHANNELS),
)
@click.option(
    "--mode", type=params.MODE, default="hard_cap", show_default=True, help=", ".join(SEAT_MODES)
)
@click.option(
    "--unit-price",
    "unit_price",
    type=params.MONEY,
    help="Monthly price per seat, 0 to 100000.00 (default: the catalog's).",
)
@click.option(
    "--currency",
    type=params.LABEL,
    default=None,
    help="ISO currency (default: the catalog's, else USD).",
)
@click.option(
    "--charge-model",
    "charge_model",
    type=params.CHARGE_MODEL,
    default=None,
    help=f"An order-form plan of its own: {' or '.join(CHARGE_MODELS)} (default per_seat).",
)
@pass_ctx
def contract_create(
    ctx: Context,
    account_name: str,
    product: str,
    seats: int,
    plan: str,
    frequency: str,
    start: dt.date,
    months: int,
    channel: str,
    mode: str,
    unit_price: Decimal | None,
    currency: str | None,
    charge_model: str | None,
) -> None:
    """Record what ACCOUNT bought for PRODUCT. An order form may name a plan of its own, with
    --unit-price and --charge-model; a self-serve contract is a purchase (needs --actor with
    install or manage)."""
    app = ctx.app
    made = app.contracts.create(
        account_name,
        product,
        seats=seats,
        plan=plan,
        frequency=frequency,
        start=start,
        months=months,
        unit_price=unit_price,
        channel=channel,
        mode=mode,
        currency=currency,
        charge_model=charge_model,
        actor=ctx.actor,
    )
    view = app.contracts.view(made)
    from ...domain.pricing import price_text

    model = made.charge_model or app.catalog().charge_model(
        made.product, made.plan, made.term_start
    )
    ctx.emit(
        view.as_dict(),
        lambda c: c.print(
            f"{made.product} contract for {made.account}: {plural(made.quantity, 'seat')} on "
            f"{made.plan}, {price_text(made.unit_price, made.currency, model)} billed "
            f"{Frequency(made.frequency).adverb}, "
            f"{view.term[0]} to {view.term[1]} ({made.mode})"
        ),
    )


@contract.command("list")
@click.argument("account_name", metavar="ACCOUNT", type=params.ACCOUNT, required=False)
@pass_ctx
def contract_list(ctx: Context, account_name: str | None) -> None:
    """List contracts (of one account, or all)."""
    rows = [v.as_dict() for v in ctx.app.contracts.list(account_name)]

    def human(console: Console) -> None:
        grid = table(
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
            grid.add_row(
                str(r["account"]),
                str(r["product"]),
                str(r["plan"]),
                str(r["seats"]),
                f"{r['unit_price']} {r['currency']}",
                str(r["frequency"]),
                f"{r['term_start']} → {r['term_end']}",
                str(r["channel"]),
                str(r["mode"]),
            )
        console.print(grid)

    ctx.emit({"contracts": rows}, human)


@click.group()
def users() -> None:
    """Integration users of an account."""


@users.command("add")
@click.argument("account_name", metavar="ACCOUNT", type=params.ACCOUNT)
@click.argument("emails", metavar="EMAIL...", type=params.EMAIL, nargs=-1, required=True)
@click.option(
    "--role",
    "roles",
    type=params.LABEL,
    multiple=True,
    help="CRM role (repeatable), for auto install.",
)
@click.option("--name", type=params.NAME, default=None, help="Display name (for a single user).")
@pass_ctx
def users_add(
    ctx: Context,
    account_name: str,
    emails: tuple[str, ...],
    roles: tuple[str, ...],
    name: str | None,
) -> None:
    """Make users known to ACCOUNT before any CRM sync."""
    done = ctx.app.accounts.add_users(
        account_name, emails, roles=roles, name=name or "", actor=ctx.actor
    )
    ctx.emit(
        done.as_dict(),
        lambda c: c.print(
            f"added {plural(len(done.added), 'user')}; {len(done.already_known)} already known"
        ),
    )


@users.command("list")
@click.argument("account_name", metavar="ACCOUNT", type=params.ACCOUNT)
@click.option("--product", type=params.PRODUCT, default=None, help="Only users of this CRM.")
@click.option(
    "--status",
    type=params.Choice("STATUS", UserStatus),
    default=None,
    help="Only active or only inactive users.",
)
@paged
@pass_ctx
def users_list(
    ctx: Context,
    account_name: str,
    product: str | None,
    status: str | None,
    limit: int,
    cursor: str | None,
    as_json: bool,
) -> None:
    """List ACCOUNT's integration users by email: status, CRM roles, seats held."""
    listing = ctx.app.listings.users(
        account_name, product=product, status=status, cursor=cursor, limit=limit
    )
    columns = [("email", "email"), ("name", "name"), ("active", "active"), ("roles", "roles")]
    emit_page(
        ctx,
        listing,
        "users",
        [*columns, ("seats", "seats")],
        empty="no user matches",
        as_json=as_json,
    )


def register(main: click.Group) -> None:
    main.add_command(account)
    main.add_command(commitments)
    main.add_command(contract)
    main.add_command(users)
