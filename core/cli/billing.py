"""``seatgate billing|plan|uninstall|ticket|catalog`` and ``seatgate seats buy``: purchases and
billing (seed 002, and the overage rule of seed 000)."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.table import Table

from .. import billing as billing_mod
from .. import catalog as catalog_mod
from .. import purchases
from ..billing import TICKET_KINDS
from ..domain import FREQUENCY_MONTHS
from . import Context, pass_ctx


def _print_invoice(console: Console, data: dict[str, Any], title: str) -> None:
    table = Table(
        "product", "kind", "description", "qty", "unit", "amount", "from", "to", title=title
    )
    for ln in data["lines"]:
        table.add_row(
            ln["product"], ln["kind"], ln["description"], str(ln["quantity"]),
            ln["unit_price"], ln["amount"], ln["start"], ln["end"],
        )  # fmt: skip
    console.print(table)
    console.print(f"total: {data['total']} {data['currency']}")


@click.group()
def billing() -> None:
    """Invoices: preview, idempotent runs, issued invoices, and the purchase summary."""


@billing.command("preview")
@click.argument("account")
@click.argument("product", required=False)
@click.option("--period", required=True, metavar="YYYY-MM", help="The month to bill.")
@pass_ctx
def preview(ctx: Context, account: str, product: str | None, period: str) -> None:
    """What ACCOUNT's invoice for the month holds as of now (writes nothing)."""
    data = billing_mod.preview(ctx.app, account, product, period)
    ctx.emit(
        data,
        lambda c: _print_invoice(c, data, f"{account} {data['period']} (issued and pending)"),
    )


@billing.command("run")
@click.option("--period", required=True, metavar="YYYY-MM", help="The month to bill.")
@pass_ctx
def run(ctx: Context, period: str) -> None:
    """Issue the month's invoices for all accounts; running it again issues nothing new."""
    data = billing_mod.run(ctx.app, period, ctx.actor)
    ctx.emit(
        data,
        lambda c: c.print(
            f"billing run {data['period']}: {data['count']} invoice(s) issued, total {data['total']}"
        ),
    )


@billing.command("invoices")
@click.argument("account")
@pass_ctx
def invoices(ctx: Context, account: str) -> None:
    """The invoices issued to ACCOUNT (they never change)."""
    data = billing_mod.invoices_of(ctx.app, account)

    def human(console: Console) -> None:
        if not data["invoices"]:
            console.print(f"no invoices issued to {account}")
        for inv in data["invoices"]:
            _print_invoice(console, inv, f"{inv['number']} ({inv['period']})")

    ctx.emit(data, human)


@billing.command("summary")
@click.argument("product")
@click.option("--plan", required=True, help="A base plan of PRODUCT (`seatgate catalog list`).")
@click.option("--users", required=True, type=int, help="How many users.")
@click.option("--frequency", default="monthly", show_default=True, help=", ".join(FREQUENCY_MONTHS))
@pass_ctx
def summary(ctx: Context, product: str, plan: str, users: int, frequency: str) -> None:
    """The purchase summary: an indicative price, never a bill."""
    data = purchases.purchase_summary(ctx.app, product, plan, users, frequency)
    ctx.emit(
        data,
        lambda c: c.print(
            f"{product} {plan} ({data['charge_model']}), {users} user(s): {data['per_period']} "
            f"{data['currency']} per {frequency} period at the listed {data['list_price']}/month "
            f"— {data['note']}"
        ),
    )


@click.group()
def plan() -> None:
    """Base plans of an installed product."""


@plan.command("change")
@click.argument("account")
@click.argument("product")
@click.option("--plan", "plan_name", required=True, help="The base plan to select.")
@pass_ctx
def plan_change(ctx: Context, account: str, product: str, plan_name: str) -> None:
    """Select another base plan: billed for all selected users at the then-listed price."""
    data = purchases.change_plan(ctx.app, account, product, plan_name, ctx.actor)
    ctx.emit(
        data,
        lambda c: c.print(
            f"{product} on {account}: plan {data['from']} -> {data['to']} from {data['effective']}"
            f"; {data['price_per_period']} {data['currency']} per billing period ({data['note']})"
        ),
    )


@click.command("uninstall")
@click.argument("account")
@click.argument("product")
@pass_ctx
def uninstall(ctx: Context, account: str, product: str) -> None:
    """Uninstall PRODUCT at the end of its current term."""
    data = purchases.uninstall(ctx.app, account, product, ctx.actor)
    ctx.emit(
        data,
        lambda c: c.print(f"{product} uninstalls from {account} on {data['effective']}; "
                          f"billing {data['billing']}"),
    )  # fmt: skip


@click.group()
def ticket() -> None:
    """Billing tickets with Support."""


@ticket.command("open")
@click.argument("account")
@click.argument("product")
@click.option("--kind", required=True, help=" or ".join(TICKET_KINDS))
@pass_ctx
def ticket_open(ctx: Context, account: str, product: str, kind: str) -> None:
    """Open a billing_cancellation or renewal_adjustment ticket."""
    data = purchases.open_ticket(ctx.app, account, product, kind, ctx.actor)
    ctx.emit(data, lambda c: c.print(f"ticket {data['ticket']} ({kind}) opened for {product}"))


@click.group()
def catalog() -> None:
    """The marketplace catalog (SEATGATE_CATALOG=FILE replaces the built-in one)."""


@catalog.command("list")
@click.argument("product", required=False)
@pass_ctx
def catalog_list(ctx: Context, product: str | None) -> None:
    """Plans and their then-listed monthly prices, as of now."""
    if product is not None:
        ctx.app._check_product(product)
    day = ctx.app.now().date()
    plans = catalog_mod.load().plans_at(day, product)
    data = {"as_of": day.isoformat(), "plans": [p.as_dict() for p in plans]}

    def human(console: Console) -> None:
        table = Table("product", "plan", "type", "charge model", "monthly price", "effective")
        for p in plans:
            table.add_row(
                p.product, p.name, "add-on (partner only)" if p.addon else "base",
                p.charge_model, f"{p.monthly_price} {p.currency}", str(p.effective),
            )  # fmt: skip
        console.print(table)
        console.print("prices are illustrative monthly equivalents")

    ctx.emit(data, human)


@click.command("buy")
@click.argument("account")
@click.argument("product")
@click.option("--quantity", required=True, type=int, help="Seats to add (1 or more).")
@click.option("--yes", "confirm", is_flag=True, help="Commit the purchase (else: summary only).")
@click.option("--idempotency-key", "key", help="Makes a retry a no-op (generated when absent).")
@pass_ctx
def buy(
    ctx: Context, account: str, product: str, quantity: int, confirm: bool, key: str | None
) -> None:
    """Buy seats, co-termed with the contract: shows the purchase summary; --yes commits."""
    data = purchases.buy_seats(
        ctx.app, account, product, quantity, ctx.actor, confirm=confirm, idempotency_key=key
    )

    def human(console: Console) -> None:
        console.print(
            f"{product} on {account}: {data['quantity_before']} -> {data['quantity_after']} seats "
            f"at {data['unit_price']} {data['currency']}/seat/month; "
            f"{data['prorated_rest_of_term']} for the rest of the term "
            f"({data['rest_of_term']['start']} to {data['rest_of_term']['end']}), "
            f"{data['per_billing_period']} per full billing period"
        )
        if not data["committed"]:
            console.print("summary only, nothing bought: add --yes to buy")
        else:
            again = " (a retry: nothing new was bought)" if data.get("replayed") else ""
            console.print(f"bought{again}; idempotency key {data['idempotency_key']}")

    ctx.emit(data, human)


def register(main: click.Group) -> None:
    main.add_command(billing)
    main.add_command(plan)
    main.add_command(uninstall)
    main.add_command(ticket)
    main.add_command(catalog)
    main.commands["seats"].add_command(buy)  # type: ignore[attr-defined]
