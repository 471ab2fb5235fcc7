"""Which exception is the stop (``core/services/stopping.py``): one linked to the exception a
signal's handler raised through its cause/context chain, whatever the chain's shape; none once
that exception was swallowed, and the next signal is a new stop."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seatgate.core.services import stopping


@pytest.fixture(autouse=True)
def forgotten() -> Iterator[None]:
    stopping.reset()
    yield
    stopping.reset()


KINDS: tuple[type[BaseException], ...] = (
    SystemExit,
    KeyboardInterrupt,
    RuntimeError,
    ConnectionError,
    AssertionError,
)


@st.composite
def chains(draw: st.DrawFn) -> tuple[list[BaseException], int | None, int]:
    """Up to eight exceptions, each with a cause and a context drawn among them or none (cycles
    included), another program's exits among them; which one, if any, the handler raised for the
    stop, and which one comes out."""
    n = draw(st.integers(1, 8))
    excs = [draw(st.sampled_from(KINDS))() for _ in range(n)]
    for exc in excs:
        exc.__cause__ = draw(st.none() | st.sampled_from(excs))
        exc.__context__ = draw(st.none() | st.sampled_from(excs))
    return excs, draw(st.none() | st.integers(0, n - 1)), draw(st.integers(0, n - 1))


def reaches(start: BaseException, target: BaseException) -> bool:
    seen: list[BaseException] = []

    def visit(exc: BaseException | None) -> bool:
        if exc is None or any(exc is s for s in seen):
            return False
        seen.append(exc)
        return exc is target or visit(exc.__cause__) or visit(exc.__context__)

    return visit(start)


@given(chains())
def test_an_exception_is_the_stop_exactly_when_its_chain_reaches_the_handlers_exception(
    chain: tuple[list[BaseException], int | None, int],
) -> None:
    excs, stop_at, out_at = chain
    raised = excs[stop_at] if stop_at is not None else SystemExit(143)
    assert stopping.request(143, raised)
    out = excs[out_at]
    linked = reaches(out, raised)
    stop = stopping.claim(out)
    assert (stop is not None) == linked and (stop is None or stop.code == 143)
    try:
        raise out
    except BaseException:
        # While it is handled, a second signal does nothing exactly when it is the stop.
        assert stopping.in_progress() == linked
    assert not stopping.in_progress()  # handled: nothing of the stop unwinds
    stopping.reset()
    assert stopping.claim(out) is None  # no stop requested: nothing is the stop


def test_a_swallowed_stop_leaves_later_errors_errors_and_the_next_signal_is_a_new_stop() -> None:
    first = SystemExit(143)
    assert stopping.request(143, first)
    try:
        raise first
    except SystemExit:
        # Unwinding: the driver's error raised now is the stop; a second signal does nothing.
        try:
            raise ConnectionError("can't change 'autocommit' now")
        except ConnectionError as broken:
            stop = stopping.claim(broken)
            assert stop is not None and stop.code == 143
            assert not stopping.request(143, SystemExit(143))
    # Swallowed there (a library's ``except BaseException``): what comes later is no stop.
    assert stopping.claim(RuntimeError("a later failure")) is None
    with pytest.raises(RuntimeError), stopping.claiming():
        raise RuntimeError("a later failure")
    again = SystemExit(143)
    assert stopping.request(143, again)  # a new stop, not ignored
    assert stopping.claim(again) is not None


def test_a_stop_swallowed_by_a_finalizer_is_over() -> None:
    raised = KeyboardInterrupt()
    stopping.request(130, raised)
    assert not stopping.swallowed(RuntimeError("another finalizer's"))
    assert stopping.requested()
    try:
        raise raised
    except KeyboardInterrupt:
        try:
            raise OSError("closing the socket")
        except OSError as during:
            seen = during
    assert stopping.swallowed(seen)  # linked to the stop: swallowed with it
    assert not stopping.requested() and stopping.exit_status() is None


def test_a_finalizer_failing_while_the_stop_unwinds_leaves_the_stop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A finalizer run while the stop's exception is handled (the run's record being written, a
    # connection closed in a ``finally``): Python chains its own failure to the stop, which the
    # code handling it has not swallowed. The stop goes on: a later driver's error of that
    # unwinding is the stop (exit 143, not a failure), and no signal is sent again to cut the
    # record short.
    class Fails:
        def __del__(self) -> None:
            raise ValueError("the finalizer's own failure")

    said: list[bool] = []
    monkeypatch.setattr(
        "sys.unraisablehook", lambda u: said.append(stopping.swallowed(u.exc_value))
    )
    stop = SystemExit(143)
    assert stopping.request(143, stop)
    try:
        raise stop
    except SystemExit:
        Fails()  # dropped at once: its finalizer fails while the stop unwinds
        assert said == [False]
        assert stopping.requested() and stopping.in_progress()
        try:
            raise ConnectionError("can't change 'autocommit' now")
        except ConnectionError as broken:
            assert stopping.claim(broken) is not None
