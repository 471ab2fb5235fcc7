"""The ASGI layer every request passes: a request id, the body cap, the request timeout, the
metrics, one JSON log line, and a 500 problem (never a traceback) for anything unforeseen.

Written as plain ASGI, not ``BaseHTTPMiddleware``: it adds microseconds to a check, not a task.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
import time
import uuid
from typing import Any

from sqlalchemy.exc import OperationalError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import Metrics
from .problems import problem

__all__ = ["RequestLimits", "request_log"]

request_log = logging.getLogger("seatgate.http.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# A random prefix per process and a counter: unique, and without a call for randomness per request
# (uuid4 reads the system's random source, measured at a third of a millisecond under load).
_PREFIX = uuid.uuid4().hex[:12]
_COUNTER = itertools.count(1)
# The access line's encoder (json.dumps builds one per call when given any option).
_LINE = json.JSONEncoder(separators=(",", ":"))


class RequestLimits:
    """Wraps the app. ``max_body`` in bytes, ``timeout`` in seconds."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        max_body: int,
        timeout: float,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = _header(scope, b"x-request-id")
        request_id = (
            given if given and _REQUEST_ID.match(given) else f"{_PREFIX}-{next(_COUNTER):x}"
        )
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        response_started = False
        too_large = False  # the body went over the cap: whatever the app answers becomes a 413

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if too_large and not response_started:
                response_started = True
                await self._too_large(request_id)(scope, receive, send_raw)
                return
            if too_large:
                return  # the app's own answer to a cut-off body is dropped
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        async def send_raw(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        async def reply(response: Any) -> None:
            if not response_started:
                await response(scope, receive, send_with_id)

        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await reply(self._too_large(request_id))
            self._observe(scope, request_id, status, started)
            return
        received = 0

        async def capped_receive() -> Message:
            # Over the cap the app is told the client went away: it stops reading and acts on
            # nothing (an exception here would be taken for a malformed body).
            nonlocal received, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        try:
            if scope["method"] == "POST" and scope["path"].endswith("/sync-runs"):
                # The sync trigger bounds its own wait and answers 202 when it is over.
                await self.app(scope, capped_receive, send_with_id)
            else:
                async with asyncio.timeout(self.timeout):
                    await self.app(scope, capped_receive, send_with_id)
        except TimeoutError:
            await reply(
                problem(
                    503,
                    "timeout",
                    f"the request took longer than {self.timeout:g} s; an act may still complete: "
                    "read its result before repeating it",
                    request_id=request_id,
                )
            )
        except OperationalError:
            # A statement, lock or connection wait ran out (storage.limits): the database is
            # busy or away, not the request wrong.
            await reply(
                problem(
                    503,
                    "unavailable",
                    "the database did not answer in time; retry shortly",
                    request_id=request_id,
                    headers={"Retry-After": "1"},
                )
            )
        except Exception as exc:
            # The type only: an exception's text may hold SQL, parameters or a CRM's answer.
            request_log.error(json.dumps({"request_id": request_id, "error": type(exc).__name__}))
            await reply(problem(500, "internal", "internal error", request_id=request_id))
        self._observe(scope, request_id, status, started)

    def _too_large(self, request_id: str) -> Any:
        return problem(
            413,
            "too_large",
            f"request body over {self.max_body} bytes",
            request_id=request_id,
            field="body",
        )

    def _observe(self, scope: Scope, request_id: str, status: int, started: float) -> None:
        seconds = time.perf_counter() - started
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        self.metrics.observe(scope["method"], template, status, seconds)
        state = scope.get("state", {})
        if not request_log.isEnabledFor(logging.INFO):
            return
        line = {
            "ts": time.time(),
            "request_id": request_id,
            "method": scope["method"],
            "route": template,
            "status": status,
            "ms": round(seconds * 1000, 3),
            "account": scope.get("path_params", {}).get("account"),
            "token": state.get("token_id"),
        }
        request_log.info(_LINE.encode(line))


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None
