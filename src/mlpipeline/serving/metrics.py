"""Prometheus metrics of the model server, for ``GET /metrics`` (the standard client library's text format).

- ``mlpipeline_requests_total{route, method, status, version}``: every HTTP request, errors included (4xx, 5xx,
  413 from the body limit), by the model version that was being served when it was answered;
- ``mlpipeline_request_duration_seconds{route, version}``: latency histogram, from the first byte in to the last
  out, as the server sees it;
- ``mlpipeline_predicted_rows_total{version}``: rows predicted (a request may carry many);
- ``mlpipeline_prediction_log_total{outcome}``: what became of each offered record: rows ``written`` or
  ``failed`` (disk), requests ``dropped`` (queue full) or ``sampled_out``.

A/B and shadow serving (only while a mode other than ``off`` is set, so the default costs nothing more):

- ``mlpipeline_ab_prediction_seconds{role, version}``: the model's time per request by role (``champion``,
  ``challenger``, ``shadow``) and version; its ``_count`` is the requests each took;
- ``mlpipeline_shadow_requests_total{outcome}``: shadow requests ``scored``, ``dropped`` (queue full), ``failed``;
- ``mlpipeline_shadow_rows_total{version, agrees}``: rows the challenger scored in shadow, and whether its label
  agrees with the champion's (``true``/``false``; ``n/a`` for regression).

Feedback (``POST /feedback``), whatever the mode:

- ``mlpipeline_feedback_rows_total{role, version, outcome}``: labelled rows, ``correct`` or ``wrong``
  (classification: accuracy is correct / (correct + wrong)) or ``labelled`` (regression);
- ``mlpipeline_feedback_abs_error_total{role, version}``: regression: the sum of absolute errors (MAE is this
  divided by the labelled rows).

Routes are the server's own paths; anything else is counted as ``other``, so a scan of random URLs cannot grow
the number of series. Each server (and each test's app) has its own registry.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

ROUTES = frozenset(
    {"/predict", "/feedback", "/ab", "/health", "/ready", "/model", "/reload", "/metrics", "/docs", "/openapi.json"}
)
# Where a route puts the version that answered when it is not the champion's (the challenger in an A/B test).
ANSWERED_BY = "mlpipeline.version"
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
        self.model_latency = Histogram(
            "mlpipeline_ab_prediction_seconds",
            "A/B and shadow: the model's time per request, by role (champion, challenger, shadow) and version",
            ["role", "version"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.shadow_rows = Counter(
            "mlpipeline_shadow_rows",
            "Rows scored in shadow, by challenger version and agreement with the champion's label",
            ["version", "agrees"],
            registry=self.registry,
        )
        self.feedback = Counter(
            "mlpipeline_feedback_rows",
            "Labelled rows by role, version and outcome (correct, wrong; labelled for regression)",
            ["role", "version", "outcome"],
            registry=self.registry,
        )
        self.abs_error = Counter(
            "mlpipeline_feedback_abs_error",
            "Regression: sum of absolute errors of labelled rows, by role and version",
            ["role", "version"],
            registry=self.registry,
        )

    def count_shadow(self, version: str, champion: list[dict[str, Any]], challenger: list[dict[str, Any]]) -> None:
        """Rows the challenger scored in shadow, by whether its label agrees with the champion's."""
        if champion and "label" not in champion[0]:
            self.shadow_rows.labels(version, "n/a").inc(len(challenger))
            return
        agree = sum(c["label"] == s["label"] for c, s in zip(champion, challenger, strict=True))
        self.shadow_rows.labels(version, "true").inc(agree)
        self.shadow_rows.labels(version, "false").inc(len(challenger) - agree)

    def count_feedback(self, answers: list[tuple[str, bytes]], row: int, truth: str | float) -> None:
        """Score one labelled row against every answer given for it (the answer sent and a shadow's)."""
        for role, answer in answers:
            parsed = json.loads(answer)
            predicted = parsed["predictions"][row]
            version = parsed["version"]
            if "label" in predicted:
                self.feedback.labels(role, version, "correct" if predicted["label"] == truth else "wrong").inc()
            else:
                self.feedback.labels(role, version, "labelled").inc()
                self.abs_error.labels(role, version).inc(abs(float(truth) - predicted["value"]))

    def watch_log(self, stats: Any) -> None:
        """Report a prediction log's counts (``monitoring.predictions.LogStats``) at every scrape."""
        outcomes = ("written", "failed", "dropped", "sampled_out")
        doc = "Prediction log records by outcome"
        self.registry.register(_StatsCollector("mlpipeline_prediction_log", doc, stats, outcomes))

    def watch_shadow(self, stats: Any) -> None:
        """Report the shadow scorer's counts (``serving.routing.ShadowStats``) at every scrape."""
        doc = "Shadow requests by outcome (scored, dropped: queue full, failed)"
        self.registry.register(
            _StatsCollector("mlpipeline_shadow_requests", doc, stats, ("scored", "dropped", "failed"))
        )

    def exposition(self) -> bytes:
        """Everything, in Prometheus' text format."""
        return generate_latest(self.registry)


class _StatsCollector:
    """A counter family read at scrape time from an object's attributes, one per ``outcome`` label."""

    def __init__(self, name: str, documentation: str, stats: Any, outcomes: tuple[str, ...]) -> None:
        self.name, self.documentation, self.stats, self.outcomes = name, documentation, stats, outcomes

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Any:
        family = CounterMetricFamily(self.name, self.documentation, labels=["outcome"])
        for outcome in self.outcomes:
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
            version = scope.get(ANSWERED_BY) or self.version()
            self.metrics.latency.labels(route, version).observe(time.perf_counter() - start)
            self.metrics.requests.labels(route, scope.get("method", ""), str(status), version).inc()
