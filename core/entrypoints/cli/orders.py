"""Issue 18's commands: ``install-link`` (order-form installs by link), ``addon`` (add-on plans the
partner activates) and ``webhook`` (outbound events). Each calls one service method; the HTTP API
calls the same ones (docs/orders.md names the endpoint of each)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ...domain import bounds
from ...domain.links import DEFAULT_DAYS, MAX_DAYS
from ...domain.webhooks import EVENT_NAMES
from . import Context, params, pass_ctx, plural, remedy_text, table

if TYPE_CHECKING:
    from rich.console import Console

    from ...services.webhooks import DeliveryInfo

PARTNER = params.Checked("PARTNER", "partner", lambda value, what: bounds.text(value, what))
TOKEN = params.Checked("TOKEN", "token", lambda value, what: bounds.text(value, what))
LINK_ID = params.Checked("LINK", "link", lambda value, what: bounds.text(value, what))
ENDPOINT = params.counted(2**31 - 1)
EVENTS = params.Checked(
    "EVENTS", "events", lambda value, what: bounds.text(value, what, maximum=1000)
)
STATUS = params.Choice("STATUS", ("pending", "delivered", "failed"))


# -- install links ------------------------------------------------------------------------------------
@click.group("install-link")
def install_link() -> None:
    """Install links for order-form purchases (seed 002: "an Install Link sent to you via an
    email notification")."""


@install_link.command("create")
@click.argument("account", type=params.ACCOUNT)
@click.argument("product", type=params.PRODUCT)
@click.option("--email", type=params.EMAIL, required=True, help="The admin the link is sent to.")
@click.option(
    "--days",
    type=params.counted(MAX_DAYS),
    default=DEFAULT_DAYS,
    show_default=True,
    help=f"Days the link works (1 to {MAX_DAYS}).",
)
@pass_ctx
def link_create(ctx: Context, account: str, product: str, email: str, days: int) -> None:
    """Make a signed, single-use install link for ACCOUNT's order-form PRODUCT contract and mail
    it (SEATGATE_SMTP_URL; without it the mail is printed and kept in the outbox)."""
    made = ctx.app.install_links.create(account, product, email, ctx.actor, days=days)

    def human(console: Console) -> None:
        link = made.link
        console.print(
            f"install link {link.id} for {product} on {account}, to {link.email}, works once "
            f"until {link.expires_at:%Y-%m-%d %H:%M} UTC"
        )
        if made.mail == "sent":
            console.print(f"mailed to {link.email}")
        else:
            why = f" ({made.mail_error})" if made.mail_error else " (no SEATGATE_SMTP_URL)"
            console.print(f"not mailed{why}: the mail is in the outbox; here it is:")
            console.print(f"To: {link.email}\nSubject: {made.subject}\n\n{made.message}")
        console.print(f"link (shown once): {made.url}")

    ctx.emit(made.as_dict(), human)


@install_link.command("list")
@click.argument("account", type=params.ACCOUNT)
@pass_ctx
def link_list(ctx: Context, account: str) -> None:
    """ACCOUNT's install links and their state (never their tokens)."""
    links = ctx.app.install_links.list(account)

    def human(console: Console) -> None:
        grid = table("id", "product", "email", "state", "expires", "used by", "mail")
        for x in links:
            grid.add_row(
                x.id, x.product, x.email, x.state, f"{x.expires_at:%Y-%m-%d %H:%M}",
                x.used_by or "", x.mail,
            )  # fmt: skip
        console.print(grid)

    ctx.emit({"account": account, "links": [x.as_dict() for x in links]}, human)


@install_link.command("revoke")
@click.argument("account", type=params.ACCOUNT)
@click.argument("link_id", metavar="LINK", type=LINK_ID)
@pass_ctx
def link_revoke(ctx: Context, account: str, link_id: str) -> None:
    """Revoke an unused install link."""
    link = ctx.app.install_links.revoke(account, link_id, ctx.actor)
    ctx.emit(link.as_dict(), lambda c: c.print(f"install link {link.id} revoked"))


@install_link.command("redeem")
@click.argument("token", type=TOKEN)
@click.option(
    "--config",
    "config_file",
    required=True,
    type=params.FilePath(),
    help="JSON or TOML settings; secrets as ${ENV_VAR} references.",
)
@pass_ctx
def link_redeem(ctx: Context, token: str, config_file: Path) -> None:
    """Install the product an install link names, under its order-form contract (needs install
    or manage in its account): no purchase, no price change. Then add the intended users."""
    from .files import load_config_file

    config = load_config_file(config_file)
    done = ctx.app.install_links.redeem(token, config, ctx.actor)
    link = done.link
    then = remedy_text(done.next, {"account": link.account, "product": link.product})

    def human(console: Console) -> None:
        console.print(
            f"installed {link.product} on {link.account} under its order-form contract "
            f"(adapter {done.install.adapter}); nothing more is charged"
        )
        console.print(f"next: {then}")

    ctx.emit({**done.as_dict(), "next": then}, human)


# -- add-ons ------------------------------------------------------------------------------------------
@click.group("addon")
def addon() -> None:
    """Add-on plans, activated by the product's partner (seed 002)."""


@addon.command("activate")
@click.argument("account", type=params.ACCOUNT)
@click.argument("product", type=params.PRODUCT)
@click.argument("addon_name", metavar="ADDON", type=params.LABEL)
@click.option("--partner", type=PARTNER, help="The partner activating it (the product's).")
@click.option(
    "--seats", type=params.SEATS, help="Per-seat add-ons: how many (default: contracted)."
)
@click.option(
    "--unit-price",
    "unit_price",
    type=params.MONEY,
    help="The contracted monthly price (default: the listed one).",
)
@pass_ctx
def addon_activate(
    ctx: Context,
    account: str,
    product: str,
    addon_name: str,
    partner: str | None,
    seats: int | None,
    unit_price: Decimal | None,
) -> None:
    """The partner activates ADDON on ACCOUNT's PRODUCT contract from today, billed under the
    contract's frequency and term (--actor names the partner's person)."""
    info = ctx.app.addons.activate(
        account, product, addon_name, partner=partner, actor=ctx.actor, seats=seats,
        unit_price=unit_price,
    )  # fmt: skip

    def human(console: Console) -> None:
        what = (
            "per account" if info.charge_model == "per_account" else plural(info.quantity, "seat")
        )
        console.print(
            f"{addon_name} activated on {account}'s {product} contract by {info.partner} from "
            f"{info.effective}: {what} at {info.unit_price} {info.currency}/month; "
            f"{info.per_period} {info.currency} per billing period, {info.rest_of_term} "
            f"{info.currency} for the rest of this term"
        )

    ctx.emit(info.as_dict(), human)


@addon.command("deactivate")
@click.argument("account", type=params.ACCOUNT)
@click.argument("product", type=params.PRODUCT)
@click.argument("addon_name", metavar="ADDON", type=params.LABEL)
@click.option("--partner", type=PARTNER, help="The partner deactivating it (the product's).")
@pass_ctx
def addon_deactivate(
    ctx: Context, account: str, product: str, addon_name: str, partner: str | None
) -> None:
    """The partner deactivates ADDON: at the end of the current term, like an uninstall."""
    info = ctx.app.addons.deactivate(account, product, addon_name, partner=partner, actor=ctx.actor)
    ctx.emit(
        info.as_dict(),
        lambda c: c.print(f"{addon_name} ends on {info.ends}: billed until then"),
    )


@addon.command("list")
@click.argument("account", type=params.ACCOUNT)
@click.argument("product", type=params.PRODUCT, required=False)
@pass_ctx
def addon_list(ctx: Context, account: str, product: str | None) -> None:
    """ACCOUNT's add-on activations."""
    rows = ctx.app.addons.list(account, product)

    def human(console: Console) -> None:
        grid = table(
            "product", "add-on", "partner", "quantity", "monthly", "from", "ends", "status"
        )
        for r in rows:
            grid.add_row(
                r.product, r.addon, r.partner, str(r.quantity), f"{r.unit_price} {r.currency}",
                str(r.effective), str(r.ends or ""), r.status,
            )  # fmt: skip
        console.print(grid)

    ctx.emit({"account": account, "addons": [r.as_dict() for r in rows]}, human)


# -- webhooks -----------------------------------------------------------------------------------------
@click.group("webhook")
def webhook() -> None:
    """Outbound events: endpoints, deliveries, the sender."""


def _events(names: tuple[str, ...]) -> str:
    """The events of an endpoint as a person reads them: ``* (every event)`` for all of them."""
    if set(names) >= set(EVENT_NAMES):
        return "* (every event)"
    return ", ".join(names)


@webhook.command("add")
@click.argument("account", type=params.ACCOUNT)
@click.argument("url", type=params.URL)
@click.option(
    "--events",
    type=EVENTS,
    multiple=True,
    required=True,
    help="Event names, comma-separated or repeated, or * for all: " + ", ".join(EVENT_NAMES),
)
@pass_ctx
def webhook_add(ctx: Context, account: str, url: str, events: tuple[str, ...]) -> None:
    """Add an endpoint (needs manage). Its signing secret is printed once."""
    made = ctx.app.webhooks.add(account, url, events, ctx.actor)

    def human(console: Console) -> None:
        e = made.endpoint
        console.print(f"webhook {e.id} for {account}: {e.url} ({_events(e.events)})")
        console.print(f"signing secret (shown once, keep it): {made.secret}")

    ctx.emit(made.as_dict(), human)


@webhook.command("list")
@click.argument("account", type=params.ACCOUNT)
@pass_ctx
def webhook_list(ctx: Context, account: str) -> None:
    """ACCOUNT's endpoints (never their secrets)."""
    rows = ctx.app.webhooks.list(account)

    def human(console: Console) -> None:
        grid = table("id", "url", "events", "enabled", "failures", "disabled because")
        for r in rows:
            grid.add_row(
                str(r.id), r.url, _events(r.events), "yes" if r.enabled else "no",
                str(r.failures), r.disabled_reason,
            )  # fmt: skip
        console.print(grid)

    ctx.emit({"account": account, "endpoints": [r.as_dict() for r in rows]}, human)


def _endpoint_command(verb: str, help_text: str) -> click.Command:
    @click.command(verb, help=help_text)
    @click.argument("account", type=params.ACCOUNT)
    @click.argument("endpoint", type=ENDPOINT)
    @pass_ctx
    def command(ctx: Context, account: str, endpoint: int) -> None:
        info = getattr(ctx.app.webhooks, verb)(account, endpoint, ctx.actor)
        ctx.emit(info.as_dict(), lambda c: c.print(f"webhook {endpoint}: {verb}d"))

    return command


@webhook.command("deliver")
@click.argument("account", type=params.ACCOUNT, required=False)
@pass_ctx
def webhook_deliver(ctx: Context, account: str | None) -> None:
    """Send every delivery due now, once (for cron and tests); retries are scheduled by the
    clock, so run it again later."""
    run = ctx.app.webhooks.deliver(account)
    ctx.emit(
        run.as_dict(),
        lambda c: c.print(
            f"{plural(run.attempted, 'attempt')}: {run.delivered} delivered, {run.retrying} to "
            f"retry, {run.given_up} given up"
            + (f"; disabled endpoint(s) {run.disabled}" if run.disabled else "")
        ),
    )


@webhook.command("deliveries")
@click.argument("account", type=params.ACCOUNT)
@click.option("--endpoint", type=ENDPOINT, help="Only this endpoint's.")
@click.option("--status", type=STATUS, help="pending, delivered or failed.")
@click.option("--limit", type=params.counted(10_000), default=50, show_default=True)
@click.option("--delivery", "delivery_id", type=ENDPOINT, help="One delivery with its attempts.")
@pass_ctx
def webhook_deliveries(
    ctx: Context,
    account: str,
    endpoint: int | None,
    status: str | None,
    limit: int,
    delivery_id: int | None,
) -> None:
    """The delivery log, newest first."""
    service = ctx.app.webhooks
    if delivery_id is not None:
        one = service.delivery(account, delivery_id)
        ctx.emit(one.as_dict(), lambda c: _show_delivery(c, one))
        return
    rows = service.deliveries(account, endpoint=endpoint, status=status, limit=limit)

    def human(console: Console) -> None:
        grid = table("id", "endpoint", "event", "event id", "status", "attempts", "last", "next")
        for r in rows:
            last = r.last_error or (str(r.last_status) if r.last_status else "")
            grid.add_row(
                str(r.id), str(r.endpoint), r.event, r.event_id, r.status, str(r.attempts), last,
                f"{r.next_attempt_at:%Y-%m-%d %H:%M:%S}" if r.next_attempt_at else "",
            )  # fmt: skip
        console.print(grid)

    ctx.emit({"account": account, "deliveries": [r.as_dict() for r in rows]}, human)


def _when(instant: dt.datetime | None) -> str:
    return "" if instant is None else f"{instant:%Y-%m-%d %H:%M:%S} UTC"


def _show_delivery(console: Console, one: DeliveryInfo) -> None:
    """One delivery and its attempts, as a person reads them."""
    console.print(
        f"delivery {one.id}: {one.event} (event id {one.event_id}) to endpoint {one.endpoint} "
        f"{one.url}",
        markup=False,
    )
    console.print(f"status {one.status} after {plural(one.attempts, 'attempt')}", markup=False)
    if one.status == "pending" and one.next_attempt_at is not None:
        until = f", retried until {_when(one.retry_until)}" if one.retry_until else ""
        console.print(f"next attempt {_when(one.next_attempt_at)}{until}", markup=False)
    if one.delivered_at is not None:
        console.print(f"delivered {_when(one.delivered_at)}", markup=False)
    if one.log:
        grid = table("attempt", "at", "status", "error", "seconds")
        for n, attempt in enumerate(one.log, 1):
            code = attempt.get("status_code")
            grid.add_row(
                str(n), _when(attempt["at"]), "" if code is None else str(code),
                attempt.get("error") or "", f"{attempt.get('seconds', 0):.3f}",
            )  # fmt: skip
        console.print(grid)


@webhook.command("redeliver")
@click.argument("account", type=params.ACCOUNT)
@click.argument("delivery_id", metavar="DELIVERY", type=ENDPOINT)
@pass_ctx
def webhook_redeliver(ctx: Context, account: str, delivery_id: int) -> None:
    """Send a delivery again, same event id and body (needs manage)."""
    info = ctx.app.webhooks.redeliver(account, delivery_id, ctx.actor)
    ctx.emit(info.as_dict(), lambda c: c.print(f"delivery {delivery_id} is due again now"))


for _verb, _help in (
    ("remove", "Remove an endpoint (needs manage); its delivery log is kept."),
    ("enable", "Enable an endpoint again (needs manage): what it missed is sent."),
    ("disable", "Stop sending to an endpoint (needs manage); deliveries are kept."),
):
    webhook.add_command(_endpoint_command(_verb, _help))


def register(main: click.Group) -> None:
    main.add_command(install_link)
    main.add_command(addon)
    main.add_command(webhook)
