"""The entitlement check's way past the router: a GET of its path goes straight to its handler.

The check is the hot path (the CTI asks it at every login, issue 15: 2,000 checks/s on two
cores). Through the router, each check paid for FastAPI's exception middleware, its exit stack,
Starlette's walk over every route of the API and the console and ``request_response``'s wrapping:
measured at about 19 of the 150 us a check cost in process, and 238 -> 208 us of server CPU per
check under ``bench/http_check.py``'s saturated run (2 workers). And ahead of the router, each
paid for FastAPI's own outer layers (its telemetry switch, its server-error, exception-telemetry
and body-limit middleware, and their wrapped ``send``): :class:`FrontDoor` is the app uvicorn
calls; it hands a GET whose path the route's own pattern matches (:meth:`Shortcut.takes`, with
the scope the router would have set for it) to the handler behind a
:class:`~.middleware.RequestLimits` of its own (the request id, the limits, the metrics, the log
line and the 500 problem stay the same). Anything else — a HEAD, another method's 405, a path
under a root path — goes through FastAPI and the router, where the same route still serves it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI
from starlette.convertors import StringConvertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["FrontDoor", "Shortcut", "endpoint_app"]


class Shortcut:
    """Which requests go straight to ``route``'s handler: a GET of its path."""

    def __init__(self, route: Route) -> None:
        self.route = route
        # The route's own compiled pattern: the same parameters (text without a slash) as the
        # router would match; its convertors are all ``str``, which return the text unchanged.
        if not all(isinstance(c, StringConvertor) for c in route.param_convertors.values()):
            raise ValueError(f"{route.path}: only text parameters take the shortcut")
        self._match = route.path_regex.match

    def takes(self, scope: Scope) -> bool:
        """True for a GET of the route's path (no root path): ``scope`` then holds what the
        router would have set (the endpoint, the path parameters, the route)."""
        if scope["type"] != "http" or scope["method"] != "GET" or scope.get("root_path"):
            return False
        found = self._match(scope["path"])
        if found is None:
            return False
        scope["endpoint"] = self.route.endpoint
        scope["path_params"] = found.groupdict()
        scope["route"] = self.route
        return True


class FrontDoor(FastAPI):
    """A FastAPI app with a front door: once :meth:`shortcut_to` has named them, what the
    :class:`Shortcut` takes goes to ``fast`` (the handler behind its own request limits) before
    any of FastAPI's layers; everything else — lifespan included — through FastAPI as usual."""

    _shortcut: Shortcut | None = None
    _fast: ASGIApp | None = None

    def shortcut_to(self, shortcut: Shortcut, fast: ASGIApp) -> None:
        self._shortcut, self._fast = shortcut, fast

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        shortcut, fast = self._shortcut, self._fast
        if (
            fast is not None
            and shortcut is not None
            and not self.root_path
            and shortcut.takes(scope)
        ):
            scope["app"] = self  # as Starlette sets it: the handler reads request.app.state
            await fast(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def endpoint_app(
    endpoint: Callable[[Request], Any],
    handlers: Mapping[Any, Callable[[Request, Exception], Any]],
) -> ASGIApp:
    """``endpoint`` (an async function of a request, answering a response) as an ASGI app that
    answers an exception with the app's handler for its class (``handlers``: the app's
    ``exception_handlers``, async functions, looked up along the exception's classes as
    Starlette's ``request_response`` does), or raises it on to the middleware. A handler of
    ``Exception`` itself is left out, as Starlette leaves it to its outermost middleware."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        try:
            response: Response = await endpoint(request)
        except Exception as exc:
            handler = next(
                (handlers[c] for c in type(exc).__mro__ if c in handlers and c is not Exception),
                None,
            )
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)

    return app
