"""Issue 18 over HTTP: install links (admin tokens), add-on plans (partner tokens) and webhooks
(admin tokens). Each route is one call of the service ``seatgate install-link``, ``addon`` and
``webhook`` call (docs/orders.md); the rules, refusals and audit rows are the services'.

- Install links: made, listed, revoked and redeemed by an admin token of the link's account (the
  redeeming token's actor must hold Install or Manage there, as in the CLI). The token of a link
  travels in the body of the redeem request, never in a URL (URLs end up in logs and proxies).
  The console's ``/install/{token}`` page is the console's, not this module's.
- Add-ons: a ``partner`` token (``seatgate token create ACCOUNT --role partner --partner P``)
  activates and deactivates the add-on plans of the products its partner publishes; an admin
  token reaches the same service call and is refused by it (403 ``not_authorized``, remedy
  ``partner_activates``, audited: seed 002, add-on plans are not the admin's to choose). The
  add-on list is the account's for admin and billing tokens, and the partner's products' only
  for a partner token.
- Webhooks: endpoints, the delivery log and redelivery. The background sender is
  :mod:`.sender`, started by the app's lifespan.

No ``from __future__ import annotations``: FastAPI reads the routes' annotations at run time.
"""

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from ...bootstrap import App
from ...domain import bounds
from ...domain.env_refs import EnvScope
from ...domain.links import DEFAULT_DAYS, MAX_DAYS
from ...services.paging import DEFAULT_LIMIT
from ...services.tokens import Principal, Scope
from .documents import json_response
from .params import printable_path

__all__ = ["orders_router"]

ACCOUNT = "/v1/accounts/{account}"
PRODUCT = "/v1/accounts/{account}/products/{product}"
_ID_MAX = 2**31 - 1  # ids are 32-bit integers on every database


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InstallLinkBody(_Body):
    email: str = Field(max_length=254, description="The admin the link is mailed to.")
    days: int = Field(default=DEFAULT_DAYS, description=f"Days the link works (1 to {MAX_DAYS}).")


class RedeemBody(_Body):
    token: str = Field(
        max_length=200, description="The install link's token (sgl_..., the last part of its URL)."
    )
    config: dict[str, Any] = Field(
        description="The adapter's settings; secrets as ${ENV_VAR} references."
    )


class AddOnBody(_Body):
    seats: int | None = Field(
        default=None, description="Per-seat add-ons: how many (default: the contracted quantity)."
    )
    unit_price: Decimal | None = Field(
        default=None,
        description="The contracted monthly price, in the contract's currency (default: listed).",
    )


class WebhookBody(_Body):
    url: str = Field(max_length=2048, description="https://, or http:// to a loopback address.")
    events: list[str] = Field(
        min_length=1, max_length=50, description='Event names, or ["*"] for every event.'
    )


def orders_router(
    core: App, requires: Callable[..., Callable[..., Awaitable[Principal]]]
) -> APIRouter:
    """The routes of issue 18 over ``core``; ``requires(*scopes)`` is the app's gate."""
    admin_token = Annotated[Principal, Depends(requires(Scope.ADMIN))]
    # An admin reaches the add-on service and is refused there (audited, with the seed's reason).
    addon_token = Annotated[Principal, Depends(requires(Scope.PARTNER, Scope.ADMIN))]
    addon_reader = Annotated[
        Principal, Depends(requires(Scope.ADMIN, Scope.BILLING, Scope.PARTNER))
    ]
    limit_q = Annotated[int, Query(description="Items per page (1 to 1000).")]
    cursor_q = Annotated[str | None, Query(description="next_cursor of the previous page.")]
    endpoint_p = Annotated[int, Path(ge=1, le=_ID_MAX, description="The endpoint's id.")]
    delivery_p = Annotated[int, Path(ge=1, le=_ID_MAX, description="The delivery's id.")]

    api = APIRouter(dependencies=[Depends(printable_path)])

    # -- install links ------------------------------------------------------------------------------
    @api.post(
        f"{PRODUCT}/install-links",
        tags=["install links"],
        summary="Make and mail a single-use install link (order-form contracts)",
        status_code=201,
    )
    def create_install_link(
        account: str, product: str, body: InstallLinkBody, who: admin_token
    ) -> Response:
        """The link is signed, expires after ``days``, works once and is mailed through
        ``SEATGATE_SMTP_URL`` (``mail``: sent, failed or queued). The token and URL are in
        this answer once."""
        made = core.install_links.create(account, product, body.email, who.actor, days=body.days)
        return json_response(made.as_dict(), 201)

    @api.get(f"{ACCOUNT}/install-links", tags=["install links"], summary="Install links, paged")
    def install_links(
        account: str, _: admin_token, cursor: cursor_q = None, limit: limit_q = DEFAULT_LIMIT
    ) -> Response:
        page = core.listings.install_links(account, cursor=cursor, limit=limit)
        return json_response(page.as_dict("links"))

    @api.delete(
        f"{ACCOUNT}/install-links/{{link}}",
        tags=["install links"],
        summary="Revoke an unused install link",
    )
    def revoke_install_link(account: str, link: str, who: admin_token) -> Response:
        return json_response(core.install_links.revoke(account, link, who.actor).as_dict())

    @api.post(
        f"{ACCOUNT}/install-links/redeem",
        tags=["install links"],
        summary="Install the product a link names, under its order-form contract",
    )
    def redeem_install_link(account: str, body: RedeemBody, who: admin_token) -> Response:
        """No purchase, no price change; ``next`` is ``add_users``. An expired, used, revoked,
        altered or another account's link is one problem (409 or 400) and changes nothing."""
        # A tenant's config names only the account's own variables (docs/http.md).
        done = core.install_links.redeem(
            body.token, body.config, who.actor, account=account, env_scope=EnvScope.ACCOUNT
        )
        return json_response(done.as_dict())

    # -- add-ons --------------------------------------------------------------------------------------
    @api.post(
        f"{PRODUCT}/addons/{{addon}}",
        tags=["add-ons"],
        summary="The partner activates an add-on plan (partner tokens)",
        status_code=201,
    )
    def activate_addon(
        account: str,
        product: str,
        addon: str,
        who: addon_token,
        body: Annotated[AddOnBody | None, Body()] = None,
    ) -> Response:
        """Billed from today under the contract's frequency and term, co-termed (an ``add_on``
        invoice line). Only the partner who publishes ``product`` may: 403 otherwise."""
        opts = body or AddOnBody()
        seats = None if opts.seats is None else bounds.count(opts.seats, "seats")
        price = None if opts.unit_price is None else bounds.unit_price(opts.unit_price)
        info = core.addons.activate(
            account,
            product,
            addon,
            partner=who.partner,
            actor=who.actor,
            seats=seats,
            unit_price=price,
        )
        return json_response(info.as_dict(), 201)

    @api.delete(
        f"{PRODUCT}/addons/{{addon}}",
        tags=["add-ons"],
        summary="The partner deactivates an add-on plan, at the end of the term",
    )
    def deactivate_addon(account: str, product: str, addon: str, who: addon_token) -> Response:
        info = core.addons.deactivate(account, product, addon, partner=who.partner, actor=who.actor)
        return json_response(info.as_dict())

    @api.get(f"{ACCOUNT}/addons", tags=["add-ons"], summary="Add-on activations, paged")
    def addons(
        account: str,
        who: addon_reader,
        product: Annotated[str | None, Query(description="Only this product.")] = None,
        cursor: cursor_q = None,
        limit: limit_q = DEFAULT_LIMIT,
    ) -> Response:
        page = core.listings.addons(
            account, product=product, partner=who.partner, cursor=cursor, limit=limit
        )
        return json_response(page.as_dict("addons"))

    # -- webhooks -------------------------------------------------------------------------------------
    @api.post(
        f"{ACCOUNT}/webhooks",
        tags=["webhooks"],
        summary="Add an endpoint (its signing secret is in this answer once)",
        status_code=201,
    )
    def add_webhook(account: str, body: WebhookBody, who: admin_token) -> Response:
        made = core.webhooks.add(account, body.url, body.events, who.actor)
        return json_response(made.as_dict(), 201)

    @api.get(f"{ACCOUNT}/webhooks", tags=["webhooks"], summary="Endpoints, paged")
    def webhooks(
        account: str, _: admin_token, cursor: cursor_q = None, limit: limit_q = DEFAULT_LIMIT
    ) -> Response:
        page = core.listings.webhooks(account, cursor=cursor, limit=limit)
        return json_response(page.as_dict("endpoints"))

    @api.get(
        f"{ACCOUNT}/webhooks/deliveries",
        tags=["webhooks"],
        summary="The delivery log, newest first, paged",
    )
    def deliveries(
        account: str,
        _: admin_token,
        endpoint: Annotated[
            int | None, Query(ge=1, le=_ID_MAX, description="Only this endpoint's.")
        ] = None,
        status: Annotated[str | None, Query(description="pending, delivered or failed.")] = None,
        cursor: cursor_q = None,
        limit: limit_q = DEFAULT_LIMIT,
    ) -> Response:
        page = core.listings.deliveries(
            account, endpoint=endpoint, status=status, cursor=cursor, limit=limit
        )
        return json_response(page.as_dict("deliveries"))

    @api.get(
        f"{ACCOUNT}/webhooks/deliveries/{{delivery}}",
        tags=["webhooks"],
        summary="One delivery with its attempts",
    )
    def delivery(account: str, delivery: delivery_p, _: admin_token) -> Response:
        return json_response(core.webhooks.delivery(account, delivery).as_dict())

    @api.post(
        f"{ACCOUNT}/webhooks/deliveries/{{delivery}}/redeliver",
        tags=["webhooks"],
        summary="Send a delivery again (same event id and body)",
    )
    def redeliver(account: str, delivery: delivery_p, who: admin_token) -> Response:
        return json_response(core.webhooks.redeliver(account, delivery, who.actor).as_dict())

    @api.delete(f"{ACCOUNT}/webhooks/{{endpoint}}", tags=["webhooks"], summary="Remove an endpoint")
    def remove_webhook(account: str, endpoint: endpoint_p, who: admin_token) -> Response:
        return json_response(core.webhooks.remove(account, endpoint, who.actor).as_dict())

    @api.post(
        f"{ACCOUNT}/webhooks/{{endpoint}}/enable",
        tags=["webhooks"],
        summary="Send to an endpoint again (what it missed is due now)",
    )
    def enable_webhook(account: str, endpoint: endpoint_p, who: admin_token) -> Response:
        return json_response(core.webhooks.enable(account, endpoint, who.actor).as_dict())

    @api.post(
        f"{ACCOUNT}/webhooks/{{endpoint}}/disable",
        tags=["webhooks"],
        summary="Stop sending to an endpoint (its deliveries are kept)",
    )
    def disable_webhook(account: str, endpoint: endpoint_p, who: admin_token) -> Response:
        return json_response(core.webhooks.disable(account, endpoint, who.actor).as_dict())

    return api
