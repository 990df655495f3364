"""Drift scores in the server's ``/metrics``: the newest ``mlpipeline monitor`` summary, read at scrape time.

The monitor is a batch job (cron, Airflow, CI); the server is where Prometheus already looks. So the server
exposes the summary the monitor last wrote (``MLPIPELINE_DRIFT_SUMMARY``, by default
``reports/drift/summary.json``), re-read only when the file changes:

- ``mlpipeline_drift_score{column, test, version}``: each column's p-value (``ks``, ``chisquare``) or distance
  (``wasserstein``, ``psi``); the prediction is the column ``__prediction__``;
- ``mlpipeline_drift_column_drifted{column, version}``: 1 when the column drifted;
- ``mlpipeline_drift_detected{version}``: 1 when the check said drift; ``mlpipeline_drift_drifted_share``;
- ``mlpipeline_drift_checked_timestamp_seconds{version}``: when the check ran (alert when it gets old).

No file, no drift series. A file that cannot be read is reported once in the server's log and leaves the
series out; it never fails a scrape.
"""

from __future__ import annotations

import json
import logging
import math
from calendar import timegm
from collections.abc import Iterator
from pathlib import Path
from time import strptime
from typing import Any

from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger(__name__)


class DriftCollector:
    """A Prometheus collector over one drift summary file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int] | None = None
        self._summary: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any] | None:
        try:
            stat = self.path.stat()
        except OSError:
            self._seen, self._summary = None, None
            return None
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._seen:
            self._seen = stamp
            try:
                self._summary = json.loads(self.path.read_text(encoding="utf-8"))
                _ = self._summary["version"], self._summary["columns"]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                logger.warning(
                    "drift summary %s unreadable, no drift metrics until it is rewritten: %s", self.path, exc
                )
                self._summary = None
        return self._summary

    def collect(self) -> Iterator[GaugeMetricFamily]:
        summary = self._load()
        if summary is None:
            return
        version = str(summary["version"])
        score = GaugeMetricFamily(
            "mlpipeline_drift_score",
            "Drift test result per column of the last monitor check: p-value (ks, chisquare) or distance",
            labels=["column", "test", "version"],
        )
        drifted = GaugeMetricFamily(
            "mlpipeline_drift_column_drifted",
            "1 when the column drifted in the last check",
            labels=["column", "version"],
        )
        for column in summary["columns"]:
            value = column.get("score")
            number = float(value) if isinstance(value, (int, float)) else math.nan
            score.add_metric([str(column["column"]), str(column["test"]), version], number)
            drifted.add_metric([str(column["column"]), version], float(bool(column.get("drifted"))))
        yield score
        yield drifted
        detected = GaugeMetricFamily(
            "mlpipeline_drift_detected", "1 when the last monitor check found drift", labels=["version"]
        )
        detected.add_metric([version], float(bool(summary.get("drifted"))))
        yield detected
        share = GaugeMetricFamily(
            "mlpipeline_drift_drifted_share", "Share of columns drifted in the last check", labels=["version"]
        )
        share.add_metric([version], float(summary.get("drifted_share", 0.0)))
        yield share
        try:
            checked = float(timegm(strptime(str(summary.get("checked_at")), "%Y-%m-%dT%H:%M:%SZ")))
        except ValueError:
            return
        when = GaugeMetricFamily(
            "mlpipeline_drift_checked_timestamp_seconds", "When the last monitor check ran", labels=["version"]
        )
        when.add_metric([version], checked)
        yield when

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # series come and go with the file: nothing to check at registration
