"""read_ahead: pages in order, the next fetch started before the current page is used, errors
raised at their page, and nothing left running when the reader stops early."""

from __future__ import annotations

import contextlib
import threading

import pytest

from seatgate.core.plugins import read_ahead


def test_pages_come_in_order_and_the_next_is_fetched_ahead() -> None:
    fetched: list[int] = []
    asked = threading.Event()

    def fetch(n: int) -> tuple[str, int | None]:
        fetched.append(n)
        if n == 2:
            asked.set()
        return f"page {n}", n + 1 if n < 3 else None

    pages = read_ahead(fetch, 1, "test-pull")
    assert next(pages) == "page 1"
    assert asked.wait(5)  # page 2 is fetched while page 1 is still being used
    assert list(pages) == ["page 2", "page 3"]
    assert fetched == [1, 2, 3]


def test_the_next_fetch_has_begun_when_a_page_is_handed_over() -> None:
    # The caller's work on a page holds the interpreter: a worker only woken by then would send
    # its request after that work (or a switch interval), not during it.
    begun: list[int] = []

    def fetch(n: int) -> tuple[int, int | None]:
        begun.append(n)
        return n, n + 1 if n < 50 else None

    with contextlib.closing(read_ahead(fetch, 1, "test-pull")) as pages:
        for page in pages:
            assert begun[-1] == min(page + 1, 50)  # no waiting: checked as the page arrives


def test_an_error_is_raised_at_its_page_in_the_callers_thread() -> None:
    def fetch(n: int) -> tuple[int, int | None]:
        if n == 2:
            raise ValueError("page 2 is broken")
        return n, n + 1

    pages = read_ahead(fetch, 1, "test-pull")
    assert next(pages) == 1
    with pytest.raises(ValueError, match="page 2 is broken"):
        next(pages)


def test_closing_early_leaves_no_fetch_running() -> None:
    started = threading.Event()
    release = threading.Event()
    finished: list[int] = []

    def fetch(n: int) -> tuple[int, int | None]:
        if n == 2:
            started.set()
            release.wait(5)
        finished.append(n)
        return n, n + 1

    pages = read_ahead(fetch, 1, "test-pull")
    assert next(pages) == 1
    assert started.wait(5)
    threading.Thread(target=release.set).start()
    pages.close()  # waits for the running fetch; starts no other
    assert finished == [1, 2]
    assert not [t for t in threading.enumerate() if t.name.startswith("test-pull")]
