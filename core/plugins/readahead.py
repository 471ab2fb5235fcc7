"""Read one page ahead: while the caller (the sync engine) stores page k, a worker thread already
fetches page k+1, so the CRM's latency overlaps the engine's work and a pull takes about the longer
of the two, not their sum.

Only one fetch is ever running: the next one starts when the previous one has returned its cursor,
so a request context, a session or a client library that is not thread-safe is still used by one
thread at a time. Cursor-paged APIs (HubSpot's ``after``, ServiceNow's ``sys_id>``) can go no
further ahead than that anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

C = TypeVar("C")
R = TypeVar("R")


def read_ahead(
    fetch: Callable[[C], tuple[R, C | None]], first: C, name: str
) -> Generator[R, None, None]:
    """Yield ``fetch(cursor)``'s results, from ``first`` until a fetch returns no next cursor.

    ``fetch`` runs in a worker thread named ``name``; its exceptions are raised here, in the
    caller's thread, at the page they happened. Closing the generator early cancels the fetch not
    yet started, or waits for the one running, so no request outlives the pull.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=name) as pool:
        future = pool.submit(fetch, first)
        try:
            while True:
                result, cursor = future.result()
                if cursor is not None:
                    future = pool.submit(fetch, cursor)
                yield result
                if cursor is None:
                    return
        finally:
            future.cancel()
