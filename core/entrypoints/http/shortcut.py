"""The entitlement check's way past the router: a GET of its path goes straight to its handler.

The check is the hot path (the CTI asks it at every login, issue 15: 2,000 checks/s on two
cores). Through the router, each check paid for FastAPI's exception middleware, its exit stack,
Starlette's walk over every route of the API and the console and ``request_response``'s wrapping:
measured at about 19 of the 150 us a check cost in process, and 238 -> 208 us of server CPU per
check under ``bench/http_check.py``'s saturated run (2 workers). :class:`Shortcut` sits
inside :class:`~.middleware.RequestLimits` (the request id, the limits, the metrics and the log
line stay the same) and hands a GET whose path the route's own pattern matches to the handler,
with the scope the router would have set for it. Anything else — a HEAD, another method's 405, a
path under a root path — goes through the router, where the same route still serves it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from starlette.convertors import StringConvertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["Shortcut", "endpoint_app"]


class Shortcut:
    """ASGI middleware: a GET of ``route``'s path to ``endpoint`` (an ASGI app, see
    :func:`endpoint_app`), everything else to ``app``."""

    def __init__(self, app: ASGIApp, *, route: Route, endpoint: ASGIApp) -> None:
        self.app = app
        self.route = route
        self.endpoint = endpoint
        # The route's own compiled pattern: the same parameters (text without a slash) as the
        # router would match; its convertors are all ``str``, which return the text unchanged.
        if not all(isinstance(c, StringConvertor) for c in route.param_convertors.values()):
            raise ValueError(f"{route.path}: only text parameters take the shortcut")
        self._match = route.path_regex.match

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("root_path"):
            found = self._match(scope["path"])
            if found is not None:
                scope["endpoint"] = self.route.endpoint
                scope["path_params"] = found.groupdict()
                scope["route"] = self.route
                await self.endpoint(scope, receive, send)
                return
        await self.app(scope, receive, send)


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
