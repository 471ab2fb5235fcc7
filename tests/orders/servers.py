"""Real servers for the order tests: a local SMTP server (aiosmtpd) that keeps what it receives,
and a local threaded HTTP receiver that verifies webhook signatures the way a customer's would,
de-duplicates on the event id, and can be told to fail."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from seatgate.core.domain.webhooks import ID_HEADER, verify


def _free_port() -> int:
    # aiosmtpd checks that its server answers on the port it was given, so it needs a real one.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Keep:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


class SmtpServer:
    """aiosmtpd on 127.0.0.1, a free port; ``messages`` are the mails received."""

    def __init__(self) -> None:
        self._handler = _Keep()
        self.port = _free_port()
        self._controller = Controller(self._handler, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}?from=orders@seatgate.example"

    @property
    def messages(self) -> list[Message]:
        return self._handler.messages


class Receiver:
    """A customer's webhook endpoint: verifies the signature and the timestamp against ``now``
    (the test clock's instant), refuses what fails (401), answers ``fail_with`` while set, and
    keeps each event once (de-duplicated on its id, counting duplicates)."""

    def __init__(self) -> None:
        self.secret = ""
        self.now = dt.datetime.now(dt.UTC)
        self.fail_with: int | None = None
        self.events: dict[str, dict[str, Any]] = {}
        self.duplicates = 0
        self.rejected = 0
        self.requests = 0
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = outer._receive(dict(self.headers.items()), body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _receive(self, headers: dict[str, str], body: bytes) -> int:
        with self._lock:
            self.requests += 1
            if self.fail_with is not None:
                return self.fail_with
            if not verify(self.secret, headers, body, self.now):
                self.rejected += 1
                return 401
            event = json.loads(body)
            if event["id"] != headers.get(ID_HEADER):
                self.rejected += 1
                return 400
            if event["id"] in self.events:
                self.duplicates += 1
            else:
                self.events[event["id"]] = event
            return 204

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks"
