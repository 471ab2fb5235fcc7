"""A sync run pauses Python's cyclic garbage collector while it goes on, and leaves it as it
found it: collections walking the run's live records had taken a third of a large sync."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator

import pytest

from seatgate.core.bootstrap import App

from .conftest import ACCOUNT

P = "memory"


@pytest.fixture
def collector_restored() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


@pytest.mark.parametrize("enabled_before", [True, False])
def test_the_collector_is_paused_during_a_run_and_left_as_it_was(
    installed: Callable[..., App], collector_restored: None, enabled_before: bool
) -> None:
    app = installed()
    if enabled_before:
        gc.enable()
    else:
        gc.disable()
    during: list[bool] = []
    result = app.sync.sync(ACCOUNT, P, on_page=lambda _: during.append(gc.isenabled()))
    assert result.outcome == "succeeded" and during and not any(during)
    assert gc.isenabled() is enabled_before


def test_a_failed_run_gives_the_collector_back(
    installed: Callable[..., App], collector_restored: None
) -> None:
    app = installed()
    gc.enable()

    def fail(_: int) -> None:
        raise RuntimeError("the page callback fails")

    result = app.sync.sync(ACCOUNT, P, on_page=fail)
    assert result.outcome == "failed"
    assert gc.isenabled()
