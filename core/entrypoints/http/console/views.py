"""The console's pages: each one reads or acts through the services the CLI and the HTTP API use
(``core.listings``, ``core.seats``, ``core.purchases``, ``core.installs``, ``core.billing``,
``core.install_links``...). No rule of the seeds is decided here: a refusal, a price or a date is
the service's, shown as it comes.

Every page needs a session (else a redirect to the sign-in page); the account in the path must be
the session's (else 404, the answer an account that does not exist gets); every POST needs its
form's CSRF token (else 403, nothing done). A service error is one line on the page, never a
traceback. Pages work without JavaScript: a form posts, the page answers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import jinja2
from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ....bootstrap import App
from ....clock import isoformat
from ....domain import bounds
from ....domain.env_refs import EnvScope
from ....domain.money import minor_unit
from ....errors import BadInput, SeatgateError
from ....plugins.config import mask_secrets
from ....services.seats import SeatsRefused
from ..params import printable_path
from . import csrf
from .session import (
    COOKIE,
    SESSION_SECONDS,
    Session,
    SignInRefused,
    clear_cookie,
    current,
    set_cookie,
    sign_in,
    sign_out,
)

__all__ = ["PAGE_SIZE", "console_router", "unknown_pages_router"]

T = TypeVar("T")

PAGE_SIZE = 50  # users per page of Manage Seats (the listing's keyset pages: any page costs one)
RUNS_PAGE = 25
_TEMPLATES = Path(__file__).parent / "templates"
# Pages hold account data: not cached, not framed, no scripts or styles but the console's own,
# and no Referer (the install link's URL carries its token).
_NO_STORE = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
}
_REASONS = {
    "capacity_reached": "capacity reached: every contracted seat is assigned",
    "in_overage": "in overage: more seats are assigned than contracted",
    "not_authorized": "not authorized: your user needs the Install or Manage permission",
}


def money(amount: Any, currency: str | None = None) -> str:
    """``1234.5`` → ``1,234.50 USD``, ``301`` → ``301 JPY``: the currency's ISO 4217 minor unit,
    as the services round (two decimals when the currency is not given or not ISO 4217's)."""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return str(amount)
    digits = 2
    if currency:
        with contextlib.suppress(BadInput):
            digits = minor_unit(currency)
    text = f"{value:,.{digits}f}"
    return f"{text} {currency}" if currency else text


def when(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return isoformat(value).replace("T", " ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return "" if value is None else str(value)


def reason_text(code: str) -> str:
    return _REASONS.get(code, code.replace("_", " "))


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = money
    env.filters["when"] = when
    env.filters["reason"] = reason_text
    env.filters["urlpart"] = lambda v: quote(str(v), safe="")
    return env


def _local(target: str | None, default: str) -> str:
    """A redirect target of this site only (a path, never ``//host`` or a scheme)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


def _error_line(exc: SeatgateError) -> str:
    return str(exc).replace("\n", " ")


class _Pages:
    def __init__(self, core: App) -> None:
        self.core = core
        self.env = _environment()

    # -- rendering ----------------------------------------------------------------------------------
    def render(
        self,
        request: Request,
        template: str,
        session: Session | None,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        page = self.env.get_template(template).render(
            session=session,
            csrf=session.csrf if session else "",
            account=session.account if session else None,
            path=request.url.path,
            **context,
        )
        return HTMLResponse(page, status_code=status, headers=_NO_STORE)

    def not_found(self, request: Request, session: Session | None) -> HTMLResponse:
        return self.render(
            request,
            "error.html",
            session,
            404,
            title="Not found",
            message="There is no such page in your account.",
        )

    def forbidden(self, request: Request, session: Session | None) -> HTMLResponse:
        return self.render(
            request,
            "error.html",
            session,
            403,
            title="Form refused",
            message="This form was not sent by this console page (its CSRF token is missing or "
            "wrong), so nothing was done. Reload the page and send the form again.",
        )

    # -- access ---------------------------------------------------------------------------------------
    async def session(self, request: Request) -> Session | None:
        return await run_in_threadpool(current, self.core, request)

    @staticmethod
    def to_login(request: Request) -> RedirectResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/console/login?{urlencode({'next': target})}", 303)

    async def page(self, request: Request, account: str | None) -> Session | Response:
        """The session of a GET, or the answer instead of the page (sign in, 404)."""
        session = await self.session(request)
        if session is None:
            return self.to_login(request)
        if account is not None and account != session.account:
            return self.not_found(request, session)
        return session

    async def act(
        self, request: Request, account: str | None
    ) -> tuple[Session, FormData] | Response:
        """The session and form of a POST, or the answer instead (sign in, 403, 404)."""
        session = await self.session(request)
        if session is None:
            return self.to_login(request)
        form = await request.form()
        sent = form.get("csrf")
        if not csrf.matches(sent if isinstance(sent, str) else None, session.csrf):
            return self.forbidden(request, session)
        if account is not None and account != session.account:
            return self.not_found(request, session)
        return session, form

    @staticmethod
    async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await run_in_threadpool(fn, *args, **kwargs)


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _count(text: str, name: str, low: int = 1, high: int = bounds.MAX_SEATS) -> int:
    """A whole number from a form field; :class:`BadInput` naming it otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise BadInput(name, text[:40], f"a whole number from {low} to {high:,}") from None
    if not low <= value <= high:
        raise BadInput(name, value, f"a whole number from {low} to {high:,}")
    return value


def _settings(text: str) -> dict[str, Any]:
    """The adapter's settings as typed in the install form: a JSON object (secrets as
    ``${ENV_VAR}`` references, which the install use case insists on)."""
    try:
        value = json.loads(text or "{}")
    except ValueError:
        raise BadInput(
            "settings", "(not JSON)", 'a JSON object, e.g. {"login_url": "https://..."}'
        ) from None
    if not isinstance(value, dict):
        raise BadInput("settings", type(value).__name__, "a JSON object")
    return value


_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")


def _echo(core: App, product: str | None, text: str) -> str:
    """The settings as typed, to show again in the form after an error, with every secret field
    that is not a ``${ENV_VAR}`` reference masked (by place: the adapter's schema names its secret
    fields, :func:`mask_secrets` the usual names) — a page never shows a secret, even the one
    just typed."""
    names: tuple[str, ...] = ()
    if product is not None:
        try:
            names = core.directory.secret_fields(product)
        except SeatgateError:
            names = ()
    try:
        value = json.loads(text)
    except ValueError:
        return mask_secrets(text, names)
    if not isinstance(value, dict):
        return mask_secrets(text, names)
    masked = {
        k: v if k not in names or (isinstance(v, str) and _REFERENCE.match(v)) else "***"
        for k, v in value.items()
    }
    return mask_secrets(json.dumps(masked, indent=2), names)


def console_router(core: App) -> APIRouter:
    """The console's routes over ``core`` (see the module's docstring)."""
    pages = _Pages(core)
    router = APIRouter(include_in_schema=False, dependencies=[Depends(printable_path)])
    apps_url = "/console/accounts/{account}/apps"

    # -- sign in and out ------------------------------------------------------------------------------
    @router.get("/console")
    @router.get("/console/")
    async def home(request: Request) -> Response:
        session = await pages.session(request)
        if session is None:
            return RedirectResponse("/console/login", 303)
        return RedirectResponse(apps_url.format(account=quote(session.account, safe="")), 303)

    def login_page(request: Request, error: str = "", status: int = 200) -> Response:
        token = csrf.login_token()
        response = pages.render(
            request,
            "login.html",
            None,
            status,
            login_csrf=token,
            error=error,
            next=_local(request.query_params.get("next"), ""),
        )
        set_cookie(response, request, csrf.LOGIN_COOKIE, token, 3600)
        return response

    @router.get("/console/login")
    async def login_form(request: Request) -> Response:
        return login_page(request)

    @router.post("/console/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        if not csrf.matches(_field(form, "csrf"), request.cookies.get(csrf.LOGIN_COOKIE)):
            return pages.forbidden(request, None)
        try:
            principal, secret = await pages.call(sign_in, core, _field(form, "token"))
        except SignInRefused as exc:
            return login_page(request, str(exc), 401)
        default = apps_url.format(account=quote(principal.account, safe=""))
        response = RedirectResponse(_local(_field(form, "next"), default), 303)
        set_cookie(response, request, COOKIE, secret, SESSION_SECONDS)
        clear_cookie(response, request, csrf.LOGIN_COOKIE)
        return response

    @router.post("/console/logout")
    async def logout(request: Request) -> Response:
        got = await pages.act(request, None)
        if isinstance(got, Response):
            return got
        session, _ = got
        await pages.call(sign_out, core, session)
        response = RedirectResponse("/console/login", 303)
        clear_cookie(response, request, COOKIE)
        return response

    # -- My Apps ---------------------------------------------------------------------------------------
    def apps_rows(account: str) -> list[dict[str, Any]]:
        installs = {i["product"]: i for i in core.listings.installs(account, limit=1000).items}
        contracts = {v.contract.product: v for v in core.contracts.list(account)}
        plans = core.purchases.plans_in_force(account)
        rows = []
        for product in sorted(core.products()):
            inst = installs.get(product)
            view = contracts.get(product)
            rows.append(
                {
                    "product": product,
                    "installed": inst is not None and inst.get("uninstalled_at") is None,
                    "enabled": bool(inst and inst["enabled"]),
                    "uninstall_effective": inst.get("uninstall_effective") if inst else None,
                    "contract": view.as_dict() if view else None,
                    "plan": plans.get(product),
                }
            )
        return rows

    @router.get("/console/accounts/{account}/apps")
    async def apps(request: Request, account: str) -> Response:
        got = await pages.page(request, account)
        if isinstance(got, Response):
            return got
        return pages.render(
            request, "apps.html", got, rows=await pages.call(apps_rows, account), message=""
        )

    def plans_of(product: str) -> list[Any]:
        today = core.now().date()
        return [p for p in core.catalog().plans_at(today, product) if not p.addon]

    @router.get("/console/accounts/{account}/apps/{product}/install")
    async def install_form(request: Request, account: str, product: str) -> Response:
        got = await pages.page(request, account)
        if isinstance(got, Response):
            return got
        if product not in core.products():
            return pages.not_found(request, got)
        contract = next(
            (
                v.as_dict()
                for v in await pages.call(core.contracts.list, account)
                if v.contract.product == product
            ),
            None,
        )
        return pages.render(
            request,
            "install.html",
            got,
            product=product,
            plans=await pages.call(plans_of, product),
            contract=contract,
            form={"plan": "", "users": "", "settings": "{}"},
            summary=None,
            error="",
        )

    @router.post("/console/accounts/{account}/apps/{product}/install")
    async def install(request: Request, account: str, product: str) -> Response:
        got = await pages.act(request, account)
        if isinstance(got, Response):
            return got
        session, form = got
        if product not in core.products():
            return pages.not_found(request, session)
        contracts = await pages.call(core.contracts.list, account)
        contract = next((v.as_dict() for v in contracts if v.contract.product == product), None)
        values = {k: _field(form, k) for k in ("plan", "users", "settings")}
        confirm = _field(form, "step") == "confirm"
        summary: Mapping[str, Any] | None = None
        try:
            settings = _settings(values["settings"])
            if contract is None:
                # Seed 002 self-serve: the plan and the users chosen make the purchase summary;
                # the install use case shows it without confirm and buys with it.
                users = _count(values["users"], "users")
                result = await pages.call(
                    core.installs.install,
                    account,
                    product,
                    settings,
                    session.actor,
                    plan=values["plan"],
                    users=users,
                    confirm=confirm,
                    env_scope=EnvScope.ACCOUNT,
                )
                summary = result.purchase
            elif not confirm:
                # Seed 002: under a contract "your existing contract applies" — no purchase
                # summary; its terms are shown and the install confirmed.
                summary = {"contract": contract}
                result = None
            else:
                result = await pages.call(
                    core.installs.install,
                    account,
                    product,
                    settings,
                    session.actor,
                    env_scope=EnvScope.ACCOUNT,
                )
        except SeatgateError as exc:
            return pages.render(
                request,
                "install.html",
                session,
                400,
                product=product,
                plans=await pages.call(plans_of, product),
                contract=contract,
                form={**values, "settings": _echo(core, product, values["settings"])},
                summary=None,
                error=_error_line(exc),
            )
        if result is not None and result.committed:
            return pages.render(
                request,
                "apps.html",
                session,
                rows=await pages.call(apps_rows, account),
                message=f"{product} is installed; the purchase commitment is recorded as "
                f"{session.actor}.",
            )
        return pages.render(
            request,
            "install.html",
            session,
            product=product,
            plans=await pages.call(plans_of, product),
            contract=contract,
            form={**values, "settings": _echo(core, product, values["settings"])},
            summary=summary,
            error="",
        )

    @router.post("/console/accounts/{account}/apps/{product}/enable")
    @router.post("/console/accounts/{account}/apps/{product}/disable")
    async def enable(request: Request, account: str, product: str) -> Response:
        toggle = request.url.path.rsplit("/", 1)[-1]
        got = await pages.act(request, account)
        if isinstance(got, Response):
            return got
        session, _ = got
        try:
            changed = await pages.call(
                core.installs.set_enabled, account, product, toggle == "enable", session.actor
            )
            word = "enabled" if toggle == "enable" else "disabled"
            message = f"{product} is {word}." if changed else f"{product} was {word} already."
            status = 200
        except SeatgateError as exc:
            message, status = _error_line(exc), 400
        return pages.render(
            request,
            "apps.html",
            session,
            status,
            rows=await pages.call(apps_rows, account),
            message=message,
        )

    # -- plan change -----------------------------------------------------------------------------------
    async def plan_page(
        request: Request,
        session: Any,
        status: int,
        product: str,
        plan: str,
        *,
        summary: Any = None,
        error: str = "",
        done: Any = None,
    ) -> Response:
        """The plan page: the plans to choose from, the price of the one chosen (``summary``)
        or what the change did (``done``), and a refusal's line."""
        return pages.render(
            request,
            "plan.html",
            session,
            status,
            product=product,
            plans=await pages.call(plans_of, product),
            chosen=plan,
            summary=summary,
            error=error,
            done=done,
        )

    @router.get("/console/accounts/{account}/apps/{product}/plan")
    async def plan_form(request: Request, account: str, product: str) -> Response:
        got = await pages.page(request, account)
        if isinstance(got, Response):
            return got
        plan = request.query_params.get("plan", "")
        summary, error, status = None, "", 200
        if plan:
            try:
                summary = await pages.call(
                    core.purchases.plan_change_summary, account, product, plan
                )
            except SeatgateError as exc:
                error, status = _error_line(exc), 400
        return await plan_page(request, got, status, product, plan, summary=summary, error=error)

    @router.post("/console/accounts/{account}/apps/{product}/plan")
    async def plan_change(request: Request, account: str, product: str) -> Response:
        got = await pages.act(request, account)
        if isinstance(got, Response):
            return got
        session, form = got
        plan = _field(form, "plan")
        try:
            done = await pages.call(
                core.purchases.change_plan, account, product, plan, session.actor
            )
            error, status = "", 200
        except SeatgateError as exc:
            done, error, status = None, _error_line(exc), 400
        return await plan_page(request, session, status, product, plan, error=error, done=done)

    # -- uninstall -------------------------------------------------------------------------------------
    @router.get("/console/accounts/{account}/apps/{product}/uninstall")
    async def uninstall_form(request: Request, account: str, product: str) -> Response:
        got = await pages.page(request, account)
        if isinstance(got, Response):
            return got
        try:
            summary = await pages.call(core.purchases.uninstall_summary, account, product)
            error, status = "", 200
        except SeatgateError as exc:
            summary, error, status = None, _error_line(exc), 400
        return pages.render(
            request,
            "uninstall.html",
            got,
            status,
            product=product,
            summary=summary,
            done=None,
            error=error,
        )

    @router.post("/console/accounts/{account}/apps/{product}/uninstall")
    async def uninstall(request: Request, account: str, product: str) -> Response:
        got = await pages.act(request, account)
        if isinstance(got, Response):
            return got
        session, _ = got
        try:
            done = await pages.call(core.purchases.uninstall, account, product, session.actor)
            error, status = "", 200
        except SeatgateError as exc:
            done, error, status = None, _error_line(exc), 400
        return pages.render(
            request,
            "uninstall.html",
            session,
            status,
            product=product,
            summary=None,
            done=done,
            error=error,
        )

    # -- Manage Seats ----------------------------------------------------------------------------------
    def seats_context(
        account: str, product: str, search: str, cursor: str | None
    ) -> dict[str, Any]:
        counts = core.listings.seats(account, product=product, limit=1).extra["products"]
        users = core.listings.users(account, search=search or None, cursor=cursor, limit=PAGE_SIZE)
        contract = next(
            (v.as_dict() for v in core.contracts.list(account) if v.contract.product == product),
            None,
        )
        return {
            "product": product,
            "count": counts[0] if counts else None,
            "contract": contract,
            "phase": core.accounts.phase(account).as_dict(),
            "users": users.items,
            "next_cursor": users.next_cursor,
            "cursor": cursor or "",
            "search": search,
        }

    async def seats_page(
        request: Request,
        session: Session,
        account: str,
        product: str,
        *,
        search: str,
        cursor: str | None,
        refusals: Mapping[str, str] | None = None,
        message: str = "",
        error: str = "",
        status: int = 200,
    ) -> Response:
        try:
            context = await pages.call(seats_context, account, product, search, cursor)
        except SeatgateError as exc:
            return pages.render(
                request,
                "error.html",
                session,
                400,
                title="Manage Seats",
                message=_error_line(exc),
            )
        return pages.render(
            request,
            "seats.html",
            session,
            status,
            refusals=refusals or {},
            message=message,
            error=error,
            **context,
        )

    seats_url = "/console/accounts/{account}/products/{product}/seats"

    @router.get(seats_url)
    async def seats(request: Request, account: str, product: str) -> Response:
        got = await pages.page(request, account)
        if isinstance(got, Response):
            return got
        if product not in core.products():
            return pages.not_found(request, got)
        q = request.query_params
        return await seats_page(
            request, got, account, product, search=q.get("q", ""), cursor=q.get("cursor") or None
        )

    @router.post(seats_url)
    async def seat_toggle(request: Request, account: str, product: str) -> Response:
        got = await pages.act(request, account)
        if isinstance(got, Response):
            return got
        session, form = got
        if product not in core.products():
            return pages.not_found(request, session)
        email, action = _field(form, "email"), _field(form, "action")
        search, cursor = _field(form, "q"), _field(form, "cursor") or None
        refusals: dict[str, str] = {}
        message = error = ""
        try:
            if action == "assign":
                result = await pages.call(
                    core.seats.assign, account, product, [email], session.actor
                )
            elif action == "unassign":
                result = await pages.call(
                    core.seats.unassign, account, product, [email], session.actor
                )
            else:
                raise BadInput("action", action[:20], "assign or unassign")
        except SeatsRefused as exc:
            result = exc.result
        except SeatgateError as exc:
            error = _error_line(exc)
            result = None
        if result is not None:
            refusals = {r["email"]: r["reason"] for r in result.refused}
            if result.assigned and action == "assign" and not refusals:
                message = f"Seat assigned to {email}."
            elif result.unassigned:
                message = f"Seat taken back from {email}."
        return await seats_page(
            request,
            session,
            account,
            product,
            search=search,
            cursor=cursor,
            refusals=refusals,
            message=message,
            error=error,
            status=200 if not error else 400,
        )

    # -- buying seats ----------------------------------------------------------------------------------
    buy_url = "/console/accounts/{account}/products/{product}/seats/buy"

    @router.get(buy_url)
    async def buy_form(request: Request, account: str, product: str) -> Response:
        got = await pages.page(request, account)
        if isinstance(got, Response):
            return got
        quantity = request.query_params.get("quantity", "")
        summary, error, status = None, "", 200
        if quantity:
            try:
                n = _count(quantity, "quantity")
                summary = await pages.call(
                    core.purchases.buy_seats, account, product, n, got.actor, confirm=False
                )
            except SeatgateError as exc:
                error, status = _error_line(exc), 400
        return pages.render(
            request,
            "buy.html",
            got,
            status,
            product=product,
            quantity=quantity,
            summary=summary,
            # A purchase retried (a double click, a reload) must not buy twice: the key is made
            # with the summary and sent back with the confirmation (idempotency key).
            key=uuid.uuid4().hex,
            done=None,
            error=error,
        )

    @router.post(buy_url)
    async def buy(request: Request, account: str, product: str) -> Response:
        got = await pages.act(request, account)
        if isinstance(got, Response):
            return got
        session, form = got
        quantity = _field(form, "quantity")
        try:
            n = _count(quantity, "quantity")
            done = await pages.call(
                core.purchases.buy_seats,
                account,
                product,
                n,
                session.actor,
                confirm=True,
                idempotency_key=_field(form, "key") or None,
            )
            error, status = "", 200
        except SeatgateError as exc:
            done, error, status = None, _error_line(exc), 400
        return pages.render(
            request,
            "buy.html",
            session,
            status,
            product=product,
            quantity=quantity,
            summary=None,
            key="",
            done=done,
            error=error,
        )

    # -- billing ----------------------------------------------------------------------------------------
    @router.get("/console/accounts/{account}/billing")
    async def billing(request: Request, account: str) -> Response:
        got = await pages.page(request, account)
        if isinstance(got, Response):
            return got
        period = request.query_params.get("period") or core.now().strftime("%Y-%m")
        preview, error, status = None, "", 200
        try:
            preview = await pages.call(core.billing.preview, account, None, period)
        except SeatgateError as exc:
            error, status = _error_line(exc), 400
        invoices = await pages.call(core.listings.invoices, account, limit=100)
        tickets = await pages.call(core.listings.tickets, account, limit=100)
        return pages.render(
            request,
            "billing.html",
            got,
            status,
            period=period,
            preview=preview,
            invoices=invoices.items,
            tickets=tickets.items,
            error=error,
        )

    # -- syncs -------------------------------------------------------------------------------------------
    @router.get("/console/accounts/{account}/syncs")
    async def syncs(request: Request, account: str) -> Response:
        got = await pages.page(request, account)
        if isinstance(got, Response):
            return got
        q = request.query_params
        product = q.get("product") or None
        try:
            runs = await pages.call(
                core.listings.runs,
                account,
                product=product,
                cursor=q.get("cursor") or None,
                limit=RUNS_PAGE,
            )
        except SeatgateError as exc:
            return pages.render(
                request, "error.html", got, 400, title="Syncs", message=_error_line(exc)
            )
        quarantined = None
        if product is not None:
            # What the connector's CRM has quarantined now, once each (not per run).
            quarantined = await pages.call(core.listings.quarantined, account, product, limit=100)
        return pages.render(
            request,
            "syncs.html",
            got,
            runs=runs.items,
            next_cursor=runs.next_cursor,
            product=product or "",
            products=sorted(core.products()),
            quarantined=quarantined.items if quarantined else None,
            more_quarantined=bool(quarantined and quarantined.next_cursor),
        )

    @router.get("/console/accounts/{account}/syncs/{run_id}")
    async def sync_run(request: Request, account: str, run_id: str) -> Response:
        got = await pages.page(request, account)
        if isinstance(got, Response):
            return got
        if not run_id.isdigit() or len(run_id) > 18:
            return pages.not_found(request, got)
        try:
            found = await pages.call(core.listings.run, account, int(run_id))
            quarantine = await pages.call(
                core.listings.quarantine,
                account,
                run_id=int(run_id),
                cursor=request.query_params.get("cursor") or None,
                limit=100,
            )
        except SeatgateError:
            return pages.not_found(request, got)
        return pages.render(
            request,
            "run.html",
            got,
            run=found,
            quarantine=quarantine.items,
            next_cursor=quarantine.next_cursor,
        )

    # -- install links (issue 18) ------------------------------------------------------------------------
    @router.get("/install/{token}")
    async def install_link(request: Request, token: str) -> Response:
        got = await pages.page(request, None)
        if isinstance(got, Response):
            return got
        try:
            link = await pages.call(core.install_links.inspect, token, got.account)
            error, status = "", 200
        except SeatgateError as exc:
            link, error, status = None, _error_line(exc), 400
        return pages.render(
            request,
            "install_link.html",
            got,
            status,
            link=link,
            settings="{}",
            done=None,
            error=error,
        )

    @router.post("/install/{token}")
    async def redeem(request: Request, token: str) -> Response:
        got = await pages.act(request, None)
        if isinstance(got, Response):
            return got
        session, form = got
        text = _field(form, "settings")
        link = None
        try:
            link = await pages.call(core.install_links.inspect, token, session.account)
            done = await pages.call(
                core.install_links.redeem,
                token,
                _settings(text),
                session.actor,
                account=session.account,
                env_scope=EnvScope.ACCOUNT,
            )
            error, status = "", 200
        except SeatgateError as exc:
            done, error, status = None, _error_line(exc), 400
        return pages.render(
            request,
            "install_link.html",
            session,
            status,
            link=done.link if done else link,
            settings=_echo(core, link.product if link else None, text),
            done=done,
            error=error,
        )

    return router


def unknown_pages_router(core: App) -> APIRouter:
    """Every other path under ``/console/`` and ``/install/``: the console's own "not found"
    page (HTML, with the signed-in person's navigation), not the API's JSON problem document.
    Mounted after the console's routes and its static files, so it only catches what they do
    not serve."""
    pages = _Pages(core)
    router = APIRouter(include_in_schema=False, dependencies=[Depends(printable_path)])

    @router.api_route("/console/{rest:path}", methods=["GET", "HEAD", "POST"])
    @router.api_route("/install/{rest:path}", methods=["GET", "HEAD", "POST"])
    async def unknown(request: Request, rest: str) -> Response:
        return pages.not_found(request, await pages.session(request))

    return router
