"""Prometheus metrics of the model server, for ``GET /metrics`` (the standard client library's text format).

- ``mlpipeline_requests_total{route, method, status, version}``: every HTTP request, errors included (4xx, 5xx,
  413 from the body limit), by the model version that was being served when it was answered;
- ``mlpipeline_request_duration_seconds{route, version}``: latency histogram, from the first byte in to the last
  out, as the server sees it;
- ``mlpipeline_predicted_rows_total{version}``: rows predicted (a request may carry many);
- ``mlpipeline_prediction_log_total{outcome}``: what became of each offered record: rows ``written`` or
  ``failed`` (disk), requests ``dropped`` (queue full) or ``sampled_out``.

Routes are the server's own paths; anything else is counted as ``other``, so a scan of random URLs cannot grow
the number of series. Each server (and each test's app) has its own registry.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

ROUTES = frozenset({"/predict", "/health", "/ready", "/model", "/reload", "/metrics", "/docs", "/openapi.json"})
# Predictions take ~0.3 ms here (see benchmarks/serving.py): fine buckets at the low end.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# The text format every Prometheus version reads (the names and labels here need nothing newer).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


class ServerMetrics:
    """The server's counters and histogram, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "mlpipeline_requests",
            "HTTP requests answered, by route, method, status code and the model version served",
            ["route", "method", "status", "version"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mlpipeline_request_duration_seconds",
            "Time to answer a request, by route and the model version served",
            ["route", "version"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rows = Counter(
            "mlpipeline_predicted_rows", "Rows predicted, by model version", ["version"], registry=self.registry
        )

    def watch_log(self, stats: Any) -> None:
        """Report a prediction log's counts (``monitoring.predictions.LogStats``) at every scrape."""
        self.registry.register(_LogCollector(stats))

    def exposition(self) -> bytes:
        """Everything, in Prometheus' text format."""
        return generate_latest(self.registry)


class _LogCollector:
    def __init__(self, stats: Any) -> None:
        self.stats = stats

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Any:
        family = CounterMetricFamily(
            "mlpipeline_prediction_log", "Prediction log records by outcome", labels=["outcome"]
        )
        for outcome in ("written", "failed", "dropped", "sampled_out"):
            family.add_metric([outcome], getattr(self.stats, outcome))
        yield family


class MetricsMiddleware:
    """ASGI middleware that counts and times every HTTP request, whatever answers it (route, error handler, or
    a middleware inside this one such as the body limit)."""

    def __init__(self, app: Any, metrics: ServerMetrics, version: Callable[[], str]) -> None:
        self.app, self.metrics, self.version = app, metrics, version

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # an exception that escapes every handler is answered 500 by the server

        async def sending(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            path = scope.get("path", "")
            route = path if path in ROUTES else "other"
            version = self.version()
            self.metrics.latency.labels(route, version).observe(time.perf_counter() - start)
            self.metrics.requests.labels(route, scope.get("method", ""), str(status), version).inc()
