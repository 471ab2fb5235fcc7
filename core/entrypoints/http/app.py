"""The ASGI app: one FastAPI route per operation, each one service call; the rules, refusals and
audit records are the services' (the same the CLI calls).

:func:`create_app` wires an :class:`~seatgate.core.bootstrap.App` (see :func:`.server.build_core`)
into routes, the gate (:mod:`.auth`), the request limits (:mod:`.middleware`) and, on PostgreSQL,
the change feed that keeps this process's caches fresh.

No ``from __future__ import annotations`` here: FastAPI reads the routes' annotations, which name
aliases local to :func:`create_app`, at run time.
"""

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from ...bootstrap import App
from ...domain.bounds import text
from ...domain.env_refs import EnvScope
from ...errors import BadInput, SeatgateError
from ...services.paging import DEFAULT_LIMIT
from ...services.seats import SeatResult, SeatsRefused
from ...services.tokens import Principal, Scope
from ...storage.fence import VersionFence
from ...storage.health import missing_migrations
from ...storage.notifications import ChangeFeed
from .auth import AccessDenied, Gate
from .console import mount_console
from .documents import json_response
from .metrics import CONTENT_TYPE_LATEST, Metrics
from .middleware import RequestLimits
from .orders import orders_router
from .params import (
    IdempotencyKey,
    Label,
    Limit,
    Period,
    Quantity,
    QuarantineRun,
    RecordId,
    printable_path,
)
from .problems import problem, problem_of
from .refresh import SnapshotRefresher
from .sender import WebhookSender
from .settings import Freshness, Settings
from .shortcut import FrontDoor, Shortcut, endpoint_app

__all__ = ["CHECK_PATH", "create_app"]

logger = logging.getLogger("seatgate.http")

CHECK_PATH = "/v1/accounts/{account}/products/{product}/users/{email}/entitlements/{feature}"
ACCOUNT = "/v1/accounts/{account}"
PRODUCT = "/v1/accounts/{account}/products/{product}"
_bearer = HTTPBearer(auto_error=False, description="A token made by `seatgate token create`.")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Emails(_Body):
    emails: list[str] = Field(min_length=1, max_length=10_000, description="Integration users.")


class InstallBody(_Body):
    config: dict[str, Any] = Field(
        description="The adapter's settings and the core's keys; secrets as ${ENV_VAR} references."
    )


class PlanBody(_Body):
    plan: str = Field(max_length=60, description="The base plan to select.")


class PurchaseBody(_Body):
    quantity: Quantity = Field(
        description="Seats to add (1 to 1,000,000), co-termed with the contract."
    )


class TicketBody(_Body):
    kind: str = Field(description="billing_cancellation or renewal_adjustment.")


class SyncBody(_Body):
    full: bool = Field(default=False, description="Pull every user.")
    dry_run: bool = Field(default=False, description="Do everything, then roll it all back.")
    force: bool = Field(default=False, description="Proceed past the deletion guard.")


_json = json_response  # (the routes of this module name it so)


def _request_id(request: Request) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return None if value is None else str(value)


def create_app(core: App, settings: Settings) -> FastAPI:
    """The HTTP API over ``core``. The caller owns ``core`` (and closes it)."""
    freshness = settings.freshness
    if freshness == Freshness.AUTO:
        freshness = Freshness.VERSION if core.db.is_sqlite else Freshness.FENCE
    if freshness != Freshness.VERSION and core.db.is_sqlite:
        raise BadInput(
            "freshness", freshness, "version on SQLite (fence and notify need PostgreSQL)"
        )
    max_age = 0.0 if freshness == Freshness.VERSION else settings.max_age
    core.entitlements.max_age = max_age
    metrics = Metrics()
    gate = Gate(core.tokens, rate_limit=settings.rate_limit, max_age=max_age)
    feed = (
        None
        if freshness == Freshness.VERSION
        else ChangeFeed(
            core.db,
            on_entitlements=core.entitlements.invalidate,
            on_tokens=gate.forget,
            on_lagged=core.entitlements.lagged,
        )
    )
    fence = (
        VersionFence(core.db, timeout=settings.db_timeout) if freshness == Freshness.FENCE else None
    )
    refresher = SnapshotRefresher(
        core.entitlements, core.now, sync_lag=settings.sync_lag, on_refresh=metrics.refresh
    )
    sync_pool = concurrent.futures.ThreadPoolExecutor(
        settings.sync_concurrency, thread_name_prefix="seatgate-sync"
    )
    sender = (
        WebhookSender(
            core.webhooks,
            interval=settings.webhook_interval,
            drain=settings.webhook_drain,
            on_run=lambda run: metrics.webhooks_sent(run.delivered, run.retrying, run.given_up),
        )
        if settings.webhook_interval > 0
        else None
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        flusher = threading.Thread(
            target=_flush_audit, args=(core, stop, settings.audit_flush), daemon=True
        )
        flusher.start()
        if feed is not None:
            feed.start()
            await asyncio.to_thread(feed.connected.wait, settings.db_timeout)
        if sender is not None:
            sender.start()
        try:
            yield
        finally:
            if sender is not None:
                await asyncio.to_thread(sender.stop)  # its last pass, then it ends
            stop.set()
            if feed is not None:
                feed.stop()
            sync_pool.shutdown(wait=False, cancel_futures=True)
            if fence is not None:
                await fence.close()
            flusher.join(settings.db_timeout)
            core.entitlements.flush()

    app = FrontDoor(
        title="seatgate",
        version="1",
        summary="Entitlement checks and the administration of seats, installations, billing and "
        "syncs, per account.",
        lifespan=lifespan,
    )
    app.state.core = core
    app.state.gate = gate
    app.state.metrics = metrics
    app.state.feed = feed
    app.state.fence = fence
    app.state.settings = settings
    app.state.webhook_sender = sender

    @app.exception_handler(SeatgateError)
    async def _service_error(request: Request, exc: SeatgateError) -> Response:
        return problem_of(exc, _request_id(request))

    @app.exception_handler(AccessDenied)
    async def _denied(request: Request, exc: AccessDenied) -> Response:
        return problem(
            exc.status, exc.code, exc.detail, request_id=_request_id(request), headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        field = "body" if first.get("type") == "json_invalid" else ".".join(where) or "body"
        message = str(first.get("msg", "invalid")).replace("\n", " ")
        return problem(
            400,
            "bad_input",
            f"bad {field}: {message}",
            request_id=_request_id(request),
            field=field,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return problem(
            exc.status_code,
            code,
            str(exc.detail),
            request_id=_request_id(request),
            headers=dict(exc.headers or {}),
        )

    async def authenticate(request: Request, scope: str | tuple[str, ...]) -> Principal:
        return gate.admit(request, await gate.principal(gate.secret_of(request)), scope)

    def requires(*scopes: str) -> Callable[..., Awaitable[Principal]]:
        """A dependency admitting a token with any of ``scopes``."""

        async def principal(request: Request, _: Any = Depends(_bearer)) -> Principal:
            return await authenticate(request, scopes)

        return principal

    admin_token = Annotated[Principal, Depends(requires(Scope.ADMIN))]
    billing_token = Annotated[Principal, Depends(requires(Scope.BILLING))]
    # Every parameter reads through the CLI's bounds (.params): out of range is a 400 naming it.
    limit_q = Annotated[Limit, Query(description="Items per page (1 to 1000).")]
    cursor_q = Annotated[str | None, Query(description="next_cursor of the previous page.")]
    product_q = Annotated[Label | None, Query(description="Only this product.")]

    api = APIRouter(dependencies=[Depends(printable_path)])

    # -- the check ----------------------------------------------------------------------------------
    @api.get(
        CHECK_PATH,
        tags=["check"],
        summary="May this user use this feature now?",
        # The hot path reads its path parameters and token itself: FastAPI's parameter and
        # dependency solving was most of a check's time. The document still names them.
        openapi_extra={
            "security": [{"HTTPBearer": []}],
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in ("account", "product", "email", "feature")
            ],
        },
    )
    async def check(request: Request) -> Response:
        """The same document as ``seatgate --json check``: allowed, reason, phase, policy
        revision, assigned, contracted, access_ends. 200 for allowed and denied alike."""
        request.scope["route"] = fast_check  # the template for the metrics and the log line
        params = request.path_params
        account, product = params["account"], params["product"]
        email, feature = params["email"], params["feature"]
        await authenticate(request, Scope.CHECK)
        if not (account + product + email + feature).isprintable():
            # A control character (a NUL) PostgreSQL cannot even compare: named, never a 500.
            for what, value in (
                ("account", account),
                ("product", product),
                ("email", email),
                ("feature", feature),
            ):
                text(value, what, maximum=len(value) + 1)
        # With a fence, the versions as of now (a read that started after this request arrived,
        # shared with the checks waiting beside it): the cached snapshot answers only if it is
        # of them or newer (or behind a sync's writes alone, by less than the sync lag); if not,
        # one thread refreshes it from what changed since and the checks that arrived meanwhile
        # await that refresh (never answering from the older one).
        core.entitlements.validate(product, feature)  # before a snapshot is read for them
        versions = None if fence is None else await fence.version(account, product)
        if await refresher.fresh(account, product, versions):
            # (No await since it said so: nothing on this loop can make it stale meanwhile.)
            decision = core.check(account, product, email, feature)  # from memory: no I/O
        else:
            decision = await run_in_threadpool(core.check, account, product, email, feature)
        metrics.decision(decision.reason)
        return _json(decision.as_dict(), headers={"Cache-Control": "no-store"})

    # -- users and seats ----------------------------------------------------------------------------
    @api.get(f"{ACCOUNT}/users", tags=["seats"], summary="Integration users, paged")
    def users(
        account: str,
        _: admin_token,
        product: product_q = None,
        status: Annotated[Label | None, Query(description="active or inactive")] = None,
        cursor: cursor_q = None,
        limit: limit_q = DEFAULT_LIMIT,
    ) -> Response:
        listing = core.listings.users(
            account, product=product, status=status, cursor=cursor, limit=limit
        )
        return _json(listing.as_dict("users"))

    @api.get(f"{ACCOUNT}/seats", tags=["seats"], summary="Seat holders and counts, paged")
    def seats(
        account: str,
        _: admin_token,
        product: product_q = None,
        cursor: cursor_q = None,
        limit: limit_q = DEFAULT_LIMIT,
    ) -> Response:
        return _json(
            core.listings.seats(account, product=product, cursor=cursor, limit=limit).as_dict(
                "seats"
            )
        )

    def _seats_result(request: Request, kind: str, run: Callable[[], SeatResult]) -> Response:
        try:
            result = run()
        except SeatsRefused as exc:
            # The whole command was refused; the document it would have given rides along.
            return problem_of(exc, _request_id(request), result=exc.result.as_dict(kind))
        return _json(result.as_dict(kind))

    @api.post(f"{PRODUCT}/seats/assign", tags=["seats"], summary="Assign seats")
    def assign(
        request: Request, account: str, product: str, body: Emails, who: admin_token
    ) -> Response:
        """Refused beyond the hard cap or while in overage (``refused``, with reasons); the
        token's actor needs Install or Manage (403 ``not_authorized`` otherwise)."""
        return _seats_result(
            request, "assign", lambda: core.seats.assign(account, product, body.emails, who.actor)
        )

    @api.post(f"{PRODUCT}/seats/unassign", tags=["seats"], summary="Take seats back")
    def unassign(
        request: Request, account: str, product: str, body: Emails, who: admin_token
    ) -> Response:
        return _seats_result(
            request,
            "unassign",
            lambda: core.seats.unassign(account, product, body.emails, who.actor),
        )

    # -- installations ------------------------------------------------------------------------------
    @api.get(f"{ACCOUNT}/installs", tags=["installs"], summary="Installations, paged")
    def installs(
        account: str, _: admin_token, cursor: cursor_q = None, limit: limit_q = DEFAULT_LIMIT
    ) -> Response:
        return _json(
            core.listings.installs(account, cursor=cursor, limit=limit).as_dict("installs")
        )

    @api.put(f"{PRODUCT}/install", tags=["installs"], summary="Install (a purchase commitment)")
    def install(account: str, product: str, body: InstallBody, who: admin_token) -> Response:
        """The config's ``${NAME}`` references may name only the account's own variables,
        ``SEATGATE_ACCOUNT_<ACCOUNT>__<NAME>`` (docs/http.md): a tenant never makes the server
        read another account's secret or the server's settings."""
        return _json(
            core.installs.install(
                account, product, body.config, who.actor, env_scope=EnvScope.ACCOUNT
            ).as_dict()
        )

    def _toggle(account: str, product: str, enabled: bool, who: Principal) -> Response:
        changed = core.installs.set_enabled(account, product, enabled, who.actor)
        return _json(
            {"account": account, "product": product, "enabled": enabled, "changed": changed}
        )

    @api.post(f"{PRODUCT}/enable", tags=["installs"], summary="Resume syncs and checks")
    def enable(account: str, product: str, who: admin_token) -> Response:
        return _toggle(account, product, True, who)

    @api.post(f"{PRODUCT}/disable", tags=["installs"], summary="Pause (adapter_disabled)")
    def disable(account: str, product: str, who: admin_token) -> Response:
        return _toggle(account, product, False, who)

    @api.post(f"{PRODUCT}/uninstall", tags=["installs"], summary="Uninstall at the term's end")
    def uninstall(account: str, product: str, who: admin_token) -> Response:
        return _json(core.purchases.uninstall(account, product, who.actor))

    # -- purchases and billing ----------------------------------------------------------------------
    @api.post(f"{PRODUCT}/plan", tags=["billing"], summary="Select another base plan")
    def change_plan(account: str, product: str, body: PlanBody, who: billing_token) -> Response:
        return _json(core.purchases.change_plan(account, product, body.plan, who.actor))

    @api.get(
        f"{PRODUCT}/seats/purchase-summary",
        tags=["billing"],
        summary="What buying seats would cost (nothing is bought)",
    )
    def purchase_summary(
        account: str,
        product: str,
        who: billing_token,
        quantity: Annotated[Quantity, Query(description="Seats to add (1 to 1,000,000).")],
    ) -> Response:
        return _json(core.purchases.buy_seats(account, product, quantity, who.actor, confirm=False))

    @api.post(
        f"{PRODUCT}/seats/purchases",
        tags=["billing"],
        summary="Buy seats (idempotent on the Idempotency-Key header)",
        status_code=201,
    )
    def purchase(
        account: str,
        product: str,
        body: PurchaseBody,
        who: billing_token,
        idempotency_key: Annotated[
            IdempotencyKey | None,
            Header(
                alias="Idempotency-Key",
                description="Makes a retry return the first purchase instead of buying again.",
            ),
        ] = None,
    ) -> Response:
        if idempotency_key is None:
            # A purchase over the network is retried by clients; without a key a retry buys twice.
            raise BadInput(
                "Idempotency-Key", "none", "an Idempotency-Key header (1 to 100 characters)"
            )
        data = core.purchases.buy_seats(
            account,
            product,
            body.quantity,
            who.actor,
            confirm=True,
            idempotency_key=idempotency_key,
        )
        return _json(data, status=200 if data.get("replayed") else 201)

    @api.get(f"{ACCOUNT}/tickets", tags=["billing"], summary="Billing tickets, paged")
    def tickets(
        account: str, _: billing_token, cursor: cursor_q = None, limit: limit_q = DEFAULT_LIMIT
    ) -> Response:
        return _json(core.listings.tickets(account, cursor=cursor, limit=limit).as_dict("tickets"))

    @api.post(
        f"{PRODUCT}/tickets", tags=["billing"], summary="Open a billing ticket", status_code=201
    )
    def open_ticket(account: str, product: str, body: TicketBody, who: billing_token) -> Response:
        return _json(core.purchases.open_ticket(account, product, body.kind, who.actor), 201)

    @api.get(f"{ACCOUNT}/billing/preview", tags=["billing"], summary="A month's invoice as of now")
    def preview(
        account: str,
        _: billing_token,
        period: Annotated[Period, Query(description="The month, YYYY-MM, 2000-01 to 2099-12.")],
        product: product_q = None,
    ) -> Response:
        return _json(core.billing.preview(account, product, period))

    @api.get(f"{ACCOUNT}/billing/invoices", tags=["billing"], summary="Issued invoices, paged")
    def invoices(
        account: str, _: billing_token, cursor: cursor_q = None, limit: limit_q = DEFAULT_LIMIT
    ) -> Response:
        return _json(
            core.listings.invoices(account, cursor=cursor, limit=limit).as_dict("invoices")
        )

    # -- syncs ----------------------------------------------------------------------------------------
    @api.post(f"{PRODUCT}/sync-runs", tags=["sync"], summary="Run a sync")
    async def trigger_sync(
        account: str,
        product: str,
        _: admin_token,
        body: Annotated[SyncBody | None, Body()] = None,
        wait: Annotated[
            float, Query(description="Seconds to wait for the run's end before a 202.")
        ] = 30.0,
    ) -> Response:
        """Runs the sync in a worker thread and answers its result (200, the ``sync --json``
        document with ``run_id``) if it ends within ``wait`` seconds; otherwise 202, and the run
        goes on (see the run list)."""
        if not 0 <= wait <= settings.sync_wait_max:
            raise BadInput("wait", wait, f"seconds from 0 to {settings.sync_wait_max:g}")
        opts = body or SyncBody()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(
            sync_pool,
            lambda: core.sync.sync(
                account, product, full=opts.full, dry_run=opts.dry_run, force=opts.force
            ),
        )
        future.add_done_callback(lambda f: _count_run(metrics, f))
        try:
            result = await asyncio.wait_for(asyncio.shield(future), wait)
        except TimeoutError:
            return _json(
                {"account": account, "product": product, "status": "running"},
                status=202,
                headers={"Location": f"/v1/accounts/{account}/sync-runs?product={product}"},
            )
        data = {**result.as_dict(), "run_id": result.run_id, "dry_run": result.dry_run}
        if result.outcome != "succeeded" and result.summary.message:
            data["error"] = {"message": result.summary.message, "remedy": result.remedy}
        return _json(data)

    @api.get(f"{ACCOUNT}/sync-runs", tags=["sync"], summary="Sync runs, newest first, paged")
    def runs(
        account: str,
        _: admin_token,
        product: product_q = None,
        cursor: cursor_q = None,
        limit: limit_q = DEFAULT_LIMIT,
    ) -> Response:
        return _json(
            core.listings.runs(account, product=product, cursor=cursor, limit=limit).as_dict("runs")
        )

    @api.get(f"{ACCOUNT}/sync-runs/{{run_id}}", tags=["sync"], summary="One sync run")
    def run(account: str, run_id: RecordId, _: admin_token) -> Response:
        return _json(core.listings.run(account, run_id))

    @api.get(f"{ACCOUNT}/quarantine", tags=["sync"], summary="Quarantined records, paged")
    def quarantine(
        account: str,
        _: admin_token,
        product: product_q = None,
        run_id: Annotated[
            QuarantineRun | None, Query(alias="run", description="Only this run's.")
        ] = None,
        cursor: cursor_q = None,
        limit: limit_q = DEFAULT_LIMIT,
    ) -> Response:
        return _json(
            core.listings.quarantine(
                account, product=product, run_id=run_id, cursor=cursor, limit=limit
            ).as_dict("quarantine")
        )

    # -- operations ---------------------------------------------------------------------------------
    @api.get("/healthz", tags=["operations"], summary="The process is up")
    async def healthz() -> Response:
        return _json({"status": "ok"})

    @api.get("/readyz", tags=["operations"], summary="Database reachable, schema current")
    async def readyz(request: Request) -> Response:
        problems: list[str] = []
        try:
            missing = await asyncio.wait_for(
                asyncio.to_thread(missing_migrations, core.db), settings.db_timeout
            )
            if missing:
                problems.append(f"schema not current ({', '.join(missing)} not applied)")
        except Exception as exc:  # unreachable, timed out: the type only, never the URL
            problems.append(f"database unreachable ({type(exc).__name__})")
        if feed is not None and not feed.connected.is_set():
            problems.append("change feed not listening")
        if problems:
            return problem(503, "not_ready", "; ".join(problems), request_id=_request_id(request))
        return _json({"status": "ready"})

    @api.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    async def metrics_endpoint() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(api)
    app.include_router(orders_router(core, requires))
    mount_console(app, core)
    # The check is served by a plain Starlette route ahead of FastAPI's: the same function,
    # without FastAPI's per-request machinery (measured: most of a check's time). FastAPI's route
    # stays behind it for the OpenAPI document and the docs.
    fast_check = Route(CHECK_PATH, check, methods=["GET"], name="check")
    app.router.routes.insert(0, fast_check)

    def limited(inner: ASGIApp) -> ASGIApp:
        return RequestLimits(
            inner,
            metrics=metrics,
            max_body=settings.max_body,
            timeout=settings.request_timeout,
        )

    app.add_middleware(limited)
    # And a GET of it goes past FastAPI's layers and the router (.shortcut), behind request
    # limits of its own (the same metrics, log line and problems).
    app.shortcut_to(Shortcut(fast_check), limited(endpoint_app(check, app.exception_handlers)))
    return app


def _count_run(metrics: Metrics, future: asyncio.Future[Any]) -> None:
    if future.cancelled():
        return
    exc = future.exception()
    if exc is not None:
        metrics.sync_runs.labels("error").inc()
        if not isinstance(exc, SeatgateError):
            logger.error("sync raised %s", type(exc).__name__)
        return
    metrics.sync_runs.labels(future.result().outcome).inc()


def _flush_audit(core: App, stop: threading.Event, every: float) -> None:
    """Write buffered denied-check audit rows every ``every`` seconds."""
    while not stop.wait(every):
        try:
            core.entitlements.flush()
        except Exception as exc:  # kept pending for the next flush
            logger.warning("audit flush failed (%s); retrying", type(exc).__name__)
