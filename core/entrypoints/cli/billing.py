"""``seatgate billing|plan|uninstall|ticket|catalog``: purchases and billing (seed 002, and the
overage rule of seed 000)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from ...domain.vocabulary import Frequency, TicketKind
from . import Context, params, pass_ctx, plural, remedy_text, table

if TYPE_CHECKING:
    from rich.console import Console

FREQUENCIES = tuple(Frequency)
TICKET_KINDS = tuple(TicketKind)


def _print_invoice(console: Console, data: dict[str, Any], title: str) -> None:
    grid = table(
        "product", "kind", "description", "qty", "unit", "amount", "from", "to", title=title
    )
    for ln in data["lines"]:
        grid.add_row(
            ln["product"], ln["kind"], ln["description"], str(ln["quantity"]),
            ln["unit_price"], ln["amount"], ln["start"], ln["end"],
        )  # fmt: skip
    console.print(grid)
    console.print(f"total: {data['total']} {data['currency']}")


@click.group()
def billing() -> None:
    """Invoices: preview, idempotent runs, issued invoices, and the purchase summary."""


@billing.command("preview")
@click.argument("account", type=params.ACCOUNT)
@click.argument("product", type=params.PRODUCT, required=False)
@click.option("--period", type=params.PERIOD, required=True, help="The month to bill.")
@pass_ctx
def preview(ctx: Context, account: str, product: str | None, period: str) -> None:
    """What ACCOUNT's invoice for the month holds as of now (writes nothing)."""
    data = ctx.app.billing.preview(account, product, period)
    ctx.emit(
        data,
        lambda c: _print_invoice(c, data, f"{account} {data['period']} (issued and pending)"),
    )


@billing.command("run")
@click.option("--period", type=params.PERIOD, required=True, help="The month to bill.")
@pass_ctx
def run(ctx: Context, period: str) -> None:
    """Issue the month's invoices for all accounts; running it again issues nothing new. Exit 1
    when an account could not be billed (it is named; every other account was)."""
    data = ctx.app.billing.run(period, ctx.actor)

    def human(console: Console) -> None:
        console.print(
            f"billing run {data['period']}: {plural(data['count'], 'invoice')} issued, "
            f"total {data['total']}"
        )
        for skipped in data["skipped"]:
            console.print(f"  skipped {skipped['account']}: {skipped['reason']}", markup=False)

    ctx.emit(data, human)
    if data["skipped"]:
        sys.exit(1)


@billing.command("invoices")
@click.argument("account", type=params.ACCOUNT)
@pass_ctx
def invoices(ctx: Context, account: str) -> None:
    """The invoices issued to ACCOUNT (they never change)."""
    data = ctx.app.billing.invoices(account)

    def human(console: Console) -> None:
        if not data["invoices"]:
            console.print(f"no invoices issued to {account}")
        for inv in data["invoices"]:
            _print_invoice(console, inv, f"{inv['number']} ({inv['period']})")

    ctx.emit(data, human)


@billing.command("summary")
@click.argument("product", type=params.PRODUCT)
@click.option(
    "--plan",
    type=params.LABEL,
    required=True,
    help="A base plan of PRODUCT (`seatgate catalog list`).",
)
@click.option("--users", required=True, type=params.SEATS, help="How many users (1 to 1,000,000).")
@click.option(
    "--frequency",
    type=params.FREQUENCY,
    default="monthly",
    show_default=True,
    help=", ".join(FREQUENCIES),
)
@pass_ctx
def summary(ctx: Context, product: str, plan: str, users: int, frequency: str) -> None:
    """The purchase summary: an indicative price, never a bill."""
    data = ctx.app.purchases.summary(product, plan, users, frequency)
    ctx.emit(
        data,
        lambda c: c.print(
            f"{product} {plan} ({data['charge_model']}), {plural(users, 'user')}: {data['per_period']} "
            f"{data['currency']} per {frequency} period at the listed {data['list_price']}/month "
            f"— {data['note']}"
        ),
    )


@click.group()
def plan() -> None:
    """Base plans of an installed product."""


@plan.command("change")
@click.argument("account", type=params.ACCOUNT)
@click.argument("product", type=params.PRODUCT)
@click.option(
    "--plan", "plan_name", type=params.LABEL, required=True, help="The base plan to select."
)
@pass_ctx
def plan_change(ctx: Context, account: str, product: str, plan_name: str) -> None:
    """Select another base plan: billed for all selected users at the then-listed price."""
    data = ctx.app.purchases.change_plan(account, product, plan_name, ctx.actor)
    ctx.emit(
        data,
        lambda c: c.print(
            f"{product} on {account}: plan {data['from']} -> {data['to']} from {data['effective']}"
            f"; {data['price_per_period']} {data['currency']} per billing period ({data['note']})"
        ),
    )


@click.command("uninstall")
@click.argument("account", type=params.ACCOUNT)
@click.argument("product", type=params.PRODUCT)
@pass_ctx
def uninstall(ctx: Context, account: str, product: str) -> None:
    """Uninstall PRODUCT at the end of its current term."""
    data = ctx.app.purchases.uninstall(account, product, ctx.actor)
    how = remedy_text(data.pop("remedy", None), {"account": account, "product": product})
    if how:
        data["billing"] = f"{data['billing']}: {how}"
    ctx.emit(
        data,
        lambda c: c.print(f"{product} uninstalls from {account} on {data['effective']}; "
                          f"billing {data['billing']}"),
    )  # fmt: skip


@click.group()
def ticket() -> None:
    """Billing tickets with Support."""


@ticket.command("open")
@click.argument("account", type=params.ACCOUNT)
@click.argument("product", type=params.PRODUCT)
@click.option("--kind", type=params.TICKET_KIND, required=True, help=" or ".join(TICKET_KINDS))
@pass_ctx
def ticket_open(ctx: Context, account: str, product: str, kind: str) -> None:
    """Open a billing_cancellation or renewal_adjustment ticket."""
    data = ctx.app.purchases.open_ticket(account, product, kind, ctx.actor)
    ctx.emit(data, lambda c: c.print(f"ticket {data['ticket']} ({kind}) opened for {product}"))


@ticket.command("resolve")
@click.argument("account", type=params.ACCOUNT)
@click.argument("product", type=params.PRODUCT)
@click.argument("ticket_id", metavar="TICKET", type=params.counted(2**31 - 1))
@click.option(
    "--renewal-quantity",
    "renewal_quantity",
    type=params.counted(1_000_000, minimum=0),
    required=True,
    help="The contracted seats from the renewal the ticket adjusts.",
)
@pass_ctx
def ticket_resolve(
    ctx: Context, account: str, product: str, ticket_id: int, renewal_quantity: int
) -> None:
    """Support: set the renewal quantity of a renewal_adjustment ticket (audited; --actor names
    the Support agent)."""
    data = ctx.app.purchases.resolve_ticket(
        account, product, ticket_id, renewal_quantity=renewal_quantity, actor=ctx.actor
    )
    ctx.emit(
        data,
        lambda c: c.print(
            f"ticket {ticket_id}: {product} on {account} renews on {data['renewal']} with "
            f"{plural(renewal_quantity, 'contracted seat')}"
        ),
    )


@click.group()
def catalog() -> None:
    """The marketplace catalog (SEATGATE_CATALOG=FILE replaces the built-in one)."""


@catalog.command("list")
@click.argument("product", type=params.PRODUCT, required=False)
@pass_ctx
def catalog_list(ctx: Context, product: str | None) -> None:
    """Plans and their then-listed monthly prices, as of now."""
    if product is not None:
        ctx.app.check_product(product)
    day = ctx.app.now().date()
    plans = ctx.app.catalog().plans_at(day, product)
    data = {"as_of": day.isoformat(), "plans": [p.as_dict() for p in plans]}

    def human(console: Console) -> None:
        grid = table(
            "product", "partner", "plan", "type", "charge model", "monthly price", "effective"
        )
        for p in plans:
            grid.add_row(
                p.product, p.partner or "", p.name, "add-on (partner only)" if p.addon else "base",
                p.charge_model, f"{p.monthly_price} {p.currency}", str(p.effective),
            )  # fmt: skip
        console.print(grid)
        console.print("prices are illustrative monthly equivalents")

    ctx.emit(data, human)


def register(main: click.Group) -> None:
    main.add_command(billing)
    main.add_command(plan)
    main.add_command(uninstall)
    main.add_command(ticket)
    main.add_command(catalog)
