"""The admin console (issue 16): server-rendered pages under ``/console/`` on the ``seatgate
serve`` app — sign-in with an admin token, My Apps, Manage Seats, Billing, Syncs — and the install
link page ``/install/{token}`` (issue 18). Jinja2 templates and a stylesheet ship as package data;
no JavaScript is needed for any flow.

Modules: :mod:`.session` (signing in and out, the cookie), :mod:`.csrf` (form tokens),
:mod:`.views` (the pages, each over the services the CLI and the HTTP API use).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from ....bootstrap import App
from .views import console_router, unknown_pages_router

__all__ = ["mount_console"]

STATIC = Path(__file__).parent / "static"


def mount_console(app: FastAPI, core: App) -> None:
    """Add the console's pages and its static files to ``app``."""
    app.include_router(console_router(core))
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
    app.include_router(unknown_pages_router(core))  # last: only what nothing above serves
