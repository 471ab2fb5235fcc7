"""The shared throttle (:mod:`.throttle`) on the transports of vendor client libraries.

The Salesforce, ServiceNow and HubSpot adapters keep their vendors' libraries (simple-salesforce,
pysnow, hubspot-api-client); each of those sends its requests through a transport it lets us
give it, and that transport applies the run's :class:`~.throttle.InstanceThrottle` to every
request, logins and token requests included:

- :class:`ThrottledHTTPAdapter` -- a ``requests`` transport adapter, mounted on the library's
  ``requests.Session`` (:func:`throttle_session`): simple-salesforce takes the session as a
  parameter, pysnow builds its sessions and the adapter mounts on each;
- :class:`ThrottledPool` -- wraps a urllib3 pool manager, the transport of hubspot-api-client's
  ``rest_client`` (:func:`throttle_pool`).

A request the throttle holds back raises :class:`~.throttle.HeldRateLimited` or
:class:`~.throttle.HeldQuota` from inside the library, which lets it through unchanged (neither
is a ``requests`` nor a urllib3 error), so the run's retry policy sees it as it sees a 429.
"""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter

from .throttle import InstanceThrottle

__all__ = ["ThrottledHTTPAdapter", "ThrottledPool", "throttle_pool", "throttle_session"]


class ThrottledHTTPAdapter(HTTPAdapter):
    """requests' ``HTTPAdapter`` (no retries of its own: ``max_retries`` stays 0) that consults
    ``throttle`` before each request and reports each answer to it."""

    def __init__(self, throttle: InstanceThrottle) -> None:
        super().__init__()
        self.throttle = throttle

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        url = request.url or ""
        self.throttle.before(url)
        response = super().send(request, *args, **kwargs)
        # A throttled answer is small; a success is never read here (the rule is not asked).
        self.throttle.after(url, response.status_code, response.headers, lambda: response.content)
        return response


def throttle_session(session: requests.Session, throttle: InstanceThrottle) -> requests.Session:
    """Mount ``throttle`` on ``session`` for http and https; returns the session."""
    adapter = ThrottledHTTPAdapter(throttle)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class ThrottledPool:
    """A urllib3 ``PoolManager`` (or ``ProxyManager``) whose ``request`` consults ``throttle``
    before sending and reports the answer; everything else is the wrapped manager's."""

    def __init__(self, pool: Any, throttle: InstanceThrottle) -> None:
        self.pool = pool
        self.throttle = throttle

    def __repr__(self) -> str:
        return f"ThrottledPool({self.throttle!r})"

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        self.throttle.before(url)
        response = self.pool.request(method, url, *args, **kwargs)
        # .data reads an unread body and keeps it, so the caller still gets it.
        self.throttle.after(url, response.status, response.headers, lambda: response.data)
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pool, name)


def throttle_pool(rest_client: Any, throttle: InstanceThrottle) -> None:
    """Put ``throttle`` on the pool manager of a generated API client's ``rest_client`` (the
    urllib3 ``pool_manager`` every request of that client goes through)."""
    pool = rest_client.pool_manager
    if isinstance(pool, ThrottledPool):
        pool.throttle = throttle
    else:
        rest_client.pool_manager = ThrottledPool(pool, throttle)
