"""The gate's token reads: one read answers the requests that ask for a token while it runs,
never across a token's change (forget), and with ``max_age`` 0 each request reads its own."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from seatgate.core.entrypoints.http.auth import Gate
from seatgate.core.services.tokens import Principal

WHO = Principal("tok_1", "acme", "check", None)


class Tokens:
    """A token store whose reads wait for ``release`` (set from the test), counted."""

    def __init__(self) -> None:
        self.reads = 0
        self.release = threading.Event()

    def authenticate(self, secret: str) -> Principal | None:
        self.reads += 1
        self.release.wait(10)
        return WHO if secret == "good" else None


def gate(tokens: Tokens, max_age: float) -> Gate:
    return Gate(tokens, rate_limit="1000/second", max_age=max_age)  # type: ignore[arg-type]


async def _asking(g: Gate, secret: str, n: int) -> list[asyncio.Task[Any]]:
    asking = [asyncio.ensure_future(g.principal(secret)) for _ in range(n)]
    await asyncio.sleep(0.05)  # all of them waiting on the read
    return asking


def test_requests_asking_while_a_token_is_read_await_that_read() -> None:
    async def run() -> None:
        tokens = Tokens()
        g = gate(tokens, 5.0)
        asking = await _asking(g, "good", 30)
        tokens.release.set()
        assert await asyncio.gather(*asking) == [WHO] * 30
        assert tokens.reads == 1
        assert await g.principal("good") == WHO and tokens.reads == 1  # cached now
        assert await g.principal("bad") is None and tokens.reads == 2

    asyncio.run(run())


def test_a_read_started_before_a_change_answers_no_one_after_it() -> None:
    async def run() -> None:
        tokens = Tokens()
        g = gate(tokens, 5.0)
        before = await _asking(g, "good", 5)
        g.forget()  # a token was made or revoked: the running read may not have seen it
        after = await _asking(g, "good", 5)
        assert tokens.reads == 2
        tokens.release.set()
        assert await asyncio.gather(*before, *after) == [WHO] * 10
        assert tokens.reads == 2

    asyncio.run(run())


def test_without_a_cache_each_request_reads_its_token() -> None:
    async def run() -> None:
        tokens = Tokens()
        tokens.release.set()
        g = gate(tokens, 0.0)
        assert await asyncio.gather(*(g.principal("good") for _ in range(5))) == [WHO] * 5
        assert tokens.reads == 5

    asyncio.run(run())


def test_a_request_that_gives_up_leaves_the_read_to_the_others() -> None:
    async def run() -> None:
        tokens = Tokens()
        g = gate(tokens, 5.0)
        first, second = await _asking(g, "good", 2)
        first.cancel()
        tokens.release.set()
        assert await second == WHO and tokens.reads == 1
        assert first.cancelled()

    asyncio.run(run())
