"""Serving the API with uvicorn: ``seatgate serve`` calls :func:`serve`; each worker process builds
its app with :func:`build_app` from the settings the parent put in ``SEATGATE_HTTP_SETTINGS``."""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import tempfile
from collections.abc import AsyncIterator

import uvicorn
from fastapi import FastAPI

from ...bootstrap import App
from ...clock import FixedClock, SystemClock, parse_instant
from ...plugins.manager import Plugins
from ...storage.limits import bound_waits
from .app import create_app
from .logs import LOG_CONFIG
from .settings import SWITCH_INTERVAL, Settings

__all__ = ["SETTINGS_ENV", "build_app", "build_core", "serve"]

SETTINGS_ENV = "SEATGATE_HTTP_SETTINGS"


def build_core(settings: Settings, plugins: Plugins | None = None) -> App:
    """The App a server runs on: buffered denied-check audit rows (flushed every
    ``settings.audit_flush`` seconds and at shutdown), and bounded database waits. ``plugins``: a
    plugin manager built in code (tests), else the installed adapters."""
    clock = (
        FixedClock(parse_instant(settings.as_of, "--as-of")) if settings.as_of else SystemClock()
    )
    core = App(
        settings.db_url,
        clock=clock,
        policy_file=settings.policy,
        entitlement_max_age=settings.max_age,
        entitlement_audit_batch=settings.audit_batch,
        plugins=plugins,
    )
    bound_waits(core.db, seconds=settings.db_timeout)
    return core


def build_app(settings: Settings | None = None) -> FastAPI:
    """A worker's app (uvicorn's factory): settings from the environment unless given. The app
    owns its App and closes it at shutdown."""
    if settings is None:
        settings = Settings.from_json(os.environ[SETTINGS_ENV])
    core = build_core(settings)
    app = create_app(core, settings)
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[None]:
        try:
            async with inner(application):
                # What the worker holds once started (modules, the app, SQLAlchemy's and
                # pydantic's structures: some 100,000 objects) lives as long as the worker: out of
                # the collector's reach, a full collection no longer walks it. Such a collection,
                # triggered by what a refresh allocates during a sync, had stopped every check of
                # the worker for 60-110 ms at a time (the p99 during a sync, docs/http.md).
                gc.collect()
                gc.freeze()
                sys.setswitchinterval(SWITCH_INTERVAL)
                yield
        finally:
            core.close()

    app.router.lifespan_context = lifespan
    return app


def serve(settings: Settings, *, host: str, port: int, workers: int) -> None:
    """Run uvicorn until interrupted. With several workers their metrics are gathered through a
    temporary ``PROMETHEUS_MULTIPROC_DIR``."""
    os.environ[SETTINGS_ENV] = settings.to_json()
    with contextlib.ExitStack() as stack:
        if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="seatgate-metrics-"))
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        uvicorn.run(
            "seatgate.core.entrypoints.http.server:build_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            access_log=False,
            log_config=LOG_CONFIG,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=int(settings.request_timeout),
            h11_max_incomplete_event_size=16_384,
        )
