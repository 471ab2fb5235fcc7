"""Prometheus metrics of a server: requests by route and status, their latency, check decisions
by reason, sync runs by outcome, webhook attempts of the background sender by outcome. With several worker processes (``PROMETHEUS_MULTIPROC_DIR`` set
by ``seatgate serve``), every worker writes its values to that directory and ``/metrics`` adds
them up."""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prom_multiprocess

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

# Seconds: a check answered from the cache takes well under a millisecond, an admin act tens of.
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        # One registry per app (tests build several in one process); in multiprocess mode the
        # values go to files and a fresh collector reads them all on each scrape.
        self.registry = None if self.multiprocess else CollectorRegistry()
        self.requests = Counter(
            "seatgate_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "seatgate_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and status (seconds).",
            ["route", "status"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.decisions = Counter(
            "seatgate_check_decisions",
            "Entitlement check decisions, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.sync_runs = Counter(
            "seatgate_sync_runs",
            "Sync runs triggered through this server, by outcome (error: the run did not start).",
            ["outcome"],
            registry=self.registry,
        )

        self.webhook_attempts = Counter(
            "seatgate_webhook_attempts",
            "Webhook delivery attempts made by this server's background sender, by outcome "
            "(delivered, retrying, given_up).",
            ["outcome"],
            registry=self.registry,
        )

        self.refreshes = Counter(
            "seatgate_snapshot_refreshes",
            "Refreshes of a cached entitlement snapshot started by checks: awaited (a check "
            "waited for it) or background (behind a sync's writes, within the sync lag).",
            ["kind"],
            registry=self.registry,
        )

        # Labelled children, by their labels: ``labels()`` takes a lock and builds a key per call.
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._decision_children: dict[str, Any] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._request_children.get(key)
        if children is None:
            code = str(status)
            children = (
                self.requests.labels(method, route, code),
                self.latency.labels(route, code),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def decision(self, reason: str) -> None:
        child = self._decision_children.get(reason)
        if child is None:
            child = self._decision_children[reason] = self.decisions.labels(reason)
        child.inc()

    def refresh(self, kind: str) -> None:
        self.refreshes.labels(kind).inc()

    def webhooks_sent(self, delivered: int, retrying: int, given_up: int) -> None:
        """Count one run of the webhook sender."""
        for outcome, n in (
            ("delivered", delivered),
            ("retrying", retrying),
            ("given_up", given_up),
        ):
            if n:
                self.webhook_attempts.labels(outcome).inc(n)

    def exposition(self) -> bytes:
        if self.registry is not None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        prom_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
