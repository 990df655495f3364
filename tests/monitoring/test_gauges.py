"""Drift scores in /metrics: the monitor's summary file as Prometheus series, parsed by the standard parser."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mlpipeline.monitoring.drift import compare
from mlpipeline.monitoring.gauges import DriftCollector
from mlpipeline.settings import MonitorParams
from tests.monitoring.test_drift import KINDS, iris_like


def scrape(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def write_summary(path: Path, shift: float, version: str = "3") -> dict[str, object]:
    rng = np.random.default_rng(0)
    summary = compare(iris_like(rng, 120), iris_like(rng, 300, shift), KINDS, MonitorParams())
    # Checked now, as `mlpipeline monitor` would have: a fixed date ages into the stale-check alert.
    checked = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    summary.context = {"version": version, "checked_at": checked}
    data = summary.to_json()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return data


def test_the_last_summary_is_served_and_a_new_one_replaces_it(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    registry = CollectorRegistry()
    registry.register(DriftCollector(path))
    assert not any(name.startswith("mlpipeline_drift") for name, _ in scrape(registry))  # no check yet: no series

    data = write_summary(path, 0.0)
    samples = scrape(registry)
    assert samples[("mlpipeline_drift_detected", (("version", "3"),))] == 0.0
    for column in data["columns"]:  # type: ignore[attr-defined]
        labels = (("column", column["column"]), ("test", column["test"]), ("version", "3"))
        assert samples[("mlpipeline_drift_score", labels)] == column["score"]
    checked = datetime.strptime(str(data["checked_at"]), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    assert samples[("mlpipeline_drift_checked_timestamp_seconds", (("version", "3"),))] == checked

    data = write_summary(path, 1.0, version="4")
    os.utime(path, ns=(1, 1))  # a rewrite within the same clock tick is still seen (size and mtime both differ)
    samples = scrape(registry)
    assert samples[("mlpipeline_drift_detected", (("version", "4"),))] == 1.0
    assert samples[("mlpipeline_drift_drifted_share", (("version", "4"),))] == data["drifted_share"]
    assert ("mlpipeline_drift_detected", (("version", "3"),)) not in samples


def test_an_unreadable_summary_leaves_the_series_out_and_never_fails_a_scrape(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    registry = CollectorRegistry()
    registry.register(DriftCollector(path))
    for broken in ("{not json", json.dumps({"columns": []}), json.dumps([1, 2])):
        path.write_text(broken)
        assert not any(name.startswith("mlpipeline_drift") for name, _ in scrape(registry))
    write_summary(path, 0.0)
    data = json.loads(path.read_text())
    data["checked_at"] = "yesterday"
    path.write_text(json.dumps(data))
    samples = scrape(registry)
    assert ("mlpipeline_drift_detected", (("version", "3"),)) in samples
    assert not any(name == "mlpipeline_drift_checked_timestamp_seconds" for name, _ in samples)
