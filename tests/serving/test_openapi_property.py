"""Property-based run of the server's own OpenAPI spec (schemathesis): no 5xx, no response off the schema, for
valid data and, where an operation takes input, for invalid data too (which must be refused with a documented 4xx).

Uses schemathesis' strategies with Hypothesis directly (its pytest fixture loader does not support pytest 9).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from mlpipeline.serving.app import create_app
from mlpipeline.settings import EnvSettings
from tests.serving.conftest import Registry


def test_every_operation_conforms_to_the_spec(store: Registry, tmp_cwd) -> None:  # type: ignore[no-untyped-def]
    app = create_app(store.holder(), EnvSettings(serve_max_batch=20, serve_max_body_bytes=65_536, serve_poll_seconds=0))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {
        "POST /predict",
        "GET /health",
        "GET /ready",
        "GET /model",
        "POST /reload",
    }
    runs = [(op, GenerationMode.POSITIVE) for op in operations]
    runs += [(op, GenerationMode.NEGATIVE) for op in operations if op.body or op.query or op.headers]
    assert len(runs) >= len(operations) + 3  # /predict, /feedback and POST /ab take bodies
    for operation, mode in runs:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case) -> None:  # type: ignore[no-untyped-def]
            case.call_and_validate()

        try:
            check()
        except Exception as exc:
            pytest.fail(f"{operation.method.upper()} {operation.path} ({mode.value} data): {exc}")
